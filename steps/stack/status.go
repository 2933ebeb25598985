package stack

import (
	"context"
	"fmt"
	"sort"

	"github.com/docker/docker/api/types/swarm"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

// StatusEngine is what the status step reads.
type StatusEngine interface {
	Services(ctx context.Context, namespace string) ([]swarm.Service, error)
	Tasks(ctx context.Context, serviceIDs ...string) ([]swarm.Task, error)
}

// ServiceStatus is one service of a stack as `status --stacks` shows it.
type ServiceStatus struct {
	Service string
	Mode    string // replicated, global, replicated-job
	Running uint64 // tasks running (healthy, where the service has a health check: Swarm holds unhealthy ones in "starting")
	Desired uint64
	Image   string
	Problem string // the newest task error, if any
	// PerNode is, for a global service (e.g. the SPIRE agent launcher: one agent per node), the newest task on
	// each node, by node ID.
	PerNode []NodeTask
}

// NodeTask is the newest task of a global service on one node.
type NodeTask struct {
	Node  string // node ID
	State string
	Error string
}

func (s ServiceStatus) String() string {
	out := fmt.Sprintf("%-32s %-15s %d/%d  %s", s.Service, s.Mode, s.Running, s.Desired, s.Image)
	if s.Problem != "" {
		out += "  last error: " + s.Problem
	}
	return out
}

// newestPerNode returns the newest task of each node, sorted by node ID.
func newestPerNode(tasks []swarm.Task) []NodeTask {
	newest := map[string]swarm.Task{}
	for _, t := range tasks {
		if t.NodeID == "" {
			continue
		}
		if n, ok := newest[t.NodeID]; !ok || t.Meta.CreatedAt.After(n.Meta.CreatedAt) {
			newest[t.NodeID] = t
		}
	}
	out := make([]NodeTask, 0, len(newest))
	for id, t := range newest {
		out = append(out, NodeTask{Node: id, State: string(t.Status.State), Error: t.Status.Err})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}

// Status lists the services of the stack namespace with their running and desired tasks and images.
func Status(ctx context.Context, e StatusEngine, namespace string) ([]ServiceStatus, error) {
	svcs, err := e.Services(ctx, namespace)
	if err != nil {
		return nil, fmt.Errorf("list services of stack %s: %w", namespace, err)
	}
	byService, err := docker.TasksByService(ctx, e, svcs)
	if err != nil {
		return nil, fmt.Errorf("list tasks of stack %s: %w", namespace, err)
	}
	out := make([]ServiceStatus, 0, len(svcs))
	for _, svc := range svcs {
		tasks := byService[svc.ID]
		st := ServiceStatus{Service: svc.Spec.Name, Mode: modeKind(svc.Spec.Mode), Desired: desiredTasks(svc), Problem: latestError(tasks)}
		if cs := svc.Spec.TaskTemplate.ContainerSpec; cs != nil {
			st.Image = cs.Image
		}
		for _, t := range tasks {
			if t.Status.State == swarm.TaskStateRunning || (st.Mode == "replicated-job" && t.Status.State == swarm.TaskStateComplete) {
				st.Running++
			}
		}
		if st.Running >= st.Desired {
			st.Problem = "" // converged: an old task's error is history
		}
		if st.Mode == "global" {
			st.PerNode = newestPerNode(tasks)
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Service < out[j].Service })
	return out, nil
}

// StatusStep is the read-only step "stacks/status": after docker/reachable, it notes every service of the
// stacks (namespaces) with its tasks and image, and fails when a stack has no service at all.
func StatusStep(engine func() StatusEngine, reachable string, namespaces ...string) steps.Step {
	return &statusStep{engine: engine, dep: reachable, namespaces: namespaces}
}

type statusStep struct {
	engine     func() StatusEngine
	dep        string
	namespaces []string
}

func (s *statusStep) Name() string        { return "stacks/status" }
func (s *statusStep) DependsOn() []string { return []string{s.dep} }

func (s *statusStep) Plan(ctx context.Context) (*steps.Plan, error) {
	e := s.engine()
	if e == nil {
		return nil, fmt.Errorf("no Docker client: %s must run first", s.dep)
	}
	p := steps.NewPlan(nil, nil)
	var missing []string
	for _, ns := range s.namespaces {
		svcs, err := Status(ctx, e, ns)
		if err != nil {
			return nil, err
		}
		if len(svcs) == 0 {
			missing = append(missing, ns)
			p.Note("stack %s: not deployed", ns)
			continue
		}
		for _, st := range svcs {
			p.Note("%s", st)
			for _, n := range st.PerNode {
				line := fmt.Sprintf("  %s on node %s: %s", st.Service, n.Node, n.State)
				if n.Error != "" {
					line += ": " + n.Error
				}
				p.Note("%s", line)
			}
		}
	}
	if len(missing) == len(s.namespaces) {
		return p, fmt.Errorf("no stack deployed (looked for %v): run `ziti-bootstrap up`", s.namespaces)
	}
	return p, nil
}
