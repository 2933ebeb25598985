package status

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/robfig/cron/v3"

	"github.com/ziti-bootstrap/ziti-bootstrap/backup"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spire"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

// New returns a document of time now with the systems and drift of rep, a plan of every step: the reachable
// steps are the systems, the others the drift.
func New(now time.Time, rep *steps.Report) *Doc {
	d := &Doc{Schema: Schema, Time: now.UTC(), Systems: []Check{}, Drift: Drift{Converged: true, Steps: []Check{}}}
	up := true
	for _, r := range rep.Steps {
		c := Check{Name: r.Name, Status: r.Status, Error: r.Error}
		if strings.HasSuffix(r.Name, "/reachable") {
			c.Detail = strings.Join(r.Notes, "; ")
			d.Systems = append(d.Systems, c)
			up = up && r.Status == steps.Unchanged
			continue
		}
		c.Changes = r.Changes
		d.Drift.Steps = append(d.Drift.Steps, c)
		d.Drift.Changes += len(r.Changes)
		d.Drift.Converged = d.Drift.Converged && r.Status == steps.Unchanged
	}
	d.Converged = up && d.Drift.Converged
	return d
}

// Convergence asks the converge service at base (its ZB_CONVERGE_URL) for its state.
func GetConvergence(ctx context.Context, hc *http.Client, base string) *Convergence {
	c := &Convergence{URL: base}
	err := func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/status", nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /status: %s", resp.Status)
		}
		return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&c.State)
	}()
	if err != nil {
		c.Error = fmt.Sprintf("converge service at %s: %v (ZB_CONVERGE_URL)", base, err)
	}
	return c
}

// NewBackups sums up the sets as listed at now (listErr: the listing failed); schedule is BACKUP_SCHEDULE.
func NewBackups(now time.Time, prefix, schedule string, sets []backup.SetInfo, listErr error) *Backups {
	b := &Backups{Prefix: prefix, Sets: len(sets), Schedule: schedule}
	if listErr != nil {
		b.Error = listErr.Error()
	}
	view := func(s backup.SetInfo) *BackupSet {
		return &BackupSet{ID: s.ID, Started: s.Started, AgeSeconds: int64(now.Sub(s.Started).Seconds()), SizeBytes: s.Size,
			State: string(s.State), Authenticated: s.Authenticated, Verified: s.State.Valid() && s.Authenticated}
	}
	if len(sets) > 0 {
		b.Last = view(sets[len(sets)-1]) // oldest first
	}
	if s, ok := backup.NewestComplete(sets); ok {
		b.LastValid = view(s)
	}
	if schedule != "" {
		if sched, err := cron.ParseStandard(schedule); err == nil {
			b.NextScheduled = sched.Next(now).UTC()
		}
	}
	return b
}

// Engine is what GetSwarm reads from a Swarm manager; *docker.Client implements it.
type Engine interface {
	Nodes(ctx context.Context) ([]docker.Node, error)
	Services(ctx context.Context, namespace string) ([]swarm.Service, error)
	Tasks(ctx context.Context, serviceIDs ...string) ([]swarm.Task, error)
}

// GetSwarm lists, per node, the current tasks of the stacks' services (namespaces) and the SPIRE agents whose ID
// names the node (agents, or agentsErr when they could not be listed).
func GetSwarm(ctx context.Context, e Engine, namespaces []string, agents []spire.Agent, agentsErr error) *Swarm {
	s := &Swarm{Nodes: []Node{}}
	var errs []string
	if agentsErr != nil {
		errs = append(errs, "SPIRE agents: "+agentsErr.Error())
	}
	nodes, err := e.Nodes(ctx)
	if err != nil {
		s.Error = err.Error()
		return s
	}
	byID := map[string]*Node{}
	for _, n := range nodes {
		s.Nodes = append(s.Nodes, Node{ID: n.ID, Hostname: n.Hostname, Role: n.Role, State: n.State, Tasks: []Task{}, SpireAgents: []spire.Agent{}})
	}
	for i := range s.Nodes {
		byID[s.Nodes[i].ID] = &s.Nodes[i]
	}
	for _, a := range agents {
		i := strings.LastIndex(a.ID, "/")
		if n := byID[a.ID[i+1:]]; n != nil {
			n.SpireAgents = append(n.SpireAgents, a)
		} else {
			s.SpireAgentsWithoutNode = append(s.SpireAgentsWithoutNode, a)
		}
	}
	for _, ns := range namespaces {
		svcs, err := e.Services(ctx, ns)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		byService, err := docker.TasksByService(ctx, e, svcs)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		for _, svc := range svcs {
			for _, t := range current(svc, byService[svc.ID]) {
				if n := byID[t.NodeID]; n != nil {
					n.Tasks = append(n.Tasks, Task{Stack: ns, Service: svc.Spec.Name, State: string(t.Status.State), Since: t.Status.Timestamp, Error: t.Status.Err})
				}
			}
		}
	}
	for i := range s.Nodes {
		sort.Slice(s.Nodes[i].Tasks, func(a, b int) bool { return s.Nodes[i].Tasks[a].Service < s.Nodes[i].Tasks[b].Service })
	}
	s.Error = strings.Join(errs, "; ")
	return s
}

// current returns a service's current tasks: those meant to run; for a job, the tasks of its current run.
func current(svc swarm.Service, tasks []swarm.Task) []swarm.Task {
	job := svc.Spec.Mode.ReplicatedJob != nil || svc.Spec.Mode.GlobalJob != nil
	var out []swarm.Task
	for _, t := range tasks {
		switch {
		case job && svc.JobStatus != nil && t.JobIteration != nil:
			if t.JobIteration.Index == svc.JobStatus.JobIteration.Index && t.DesiredState != swarm.TaskStateShutdown {
				out = append(out, t)
			}
		case t.DesiredState == swarm.TaskStateRunning:
			out = append(out, t)
		}
	}
	return out
}

// Namespaces returns the stack namespaces of prefix.
func Namespaces(prefix string) []string {
	var out []string
	for _, s := range stacks.All {
		out = append(out, stacks.DefaultNames(prefix)[s])
	}
	return slices.Clip(out)
}
