package docker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
)

// NodeJobLabel marks the global jobs RunOnEveryNode creates (value: what the job is for). They are removed when
// they end; one left by a crash may be removed by hand: docker service rm $(docker service ls -q --filter
// label=org.ziti-bootstrap.node-job).
const NodeJobLabel = "org.ziti-bootstrap.node-job"

// Socket is where the Docker Engine's API socket is on a node, and where a node job finds it.
const Socket = "/var/run/docker.sock"

// NodeResult is what one node's task of a global job did.
type NodeResult struct {
	Node   string // hostname
	State  string // the task's final state (complete, failed, rejected, …)
	Err    string // the task's error, when it failed
	Output string // its standard output and standard error
}

// Failed reports whether the node's task did not complete.
func (r NodeResult) Failed() bool { return r.State != string(swarm.TaskStateComplete) }

// NodeJob is a command run once on every ready node of the Swarm.
type NodeJob struct {
	Name    string // the service's name
	Purpose string // NodeJobLabel's value
	Image   string // run with its entrypoint; it must be on every node (no registry is asked)
	Args    []string
	Timeout time.Duration // for every task to end
}

// RunOnEveryNode runs job as a Swarm global job (one task on every ready node; API 1.41, Engine 20.10+) as root
// with the node's Docker socket mounted at Socket, waits until each node's first task has ended, reads its
// output, and removes the job. Swarm 20.10 starts a failed global-job task again whatever the restart policy
// (measured), so job.Args should exit 0 and report failures in their output. The results are in node order; an error means the
// job could not be run or did not end in time, not that a node's command failed (see NodeResult.Failed).
func (c *Client) RunOnEveryNode(ctx context.Context, job NodeJob) ([]NodeResult, error) {
	nodes, err := c.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	labels := map[string]string{NodeJobLabel: job.Purpose}
	spec := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: job.Name, Labels: labels},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: job.Image, Args: job.Args, User: "0:0", Labels: labels,
				Mounts: []mount.Mount{{Type: mount.TypeBind, Source: Socket, Target: Socket}}},
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionNone},
		},
		Mode: swarm.ServiceMode{GlobalJob: &swarm.GlobalJob{}},
	}
	id, _, err := c.CreateService(ctx, spec)
	if err != nil {
		return nil, err
	}
	defer func() {
		// removing the job removes its tasks' containers on every node
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		_ = c.RemoveService(rctx, id)
	}()
	ready := map[string]string{} // node ID → hostname
	for _, n := range nodes {
		if n.Ready {
			ready[n.ID] = n.Hostname
		}
	}
	var tasks []swarm.Task
	err = wait.For(ctx, wait.Target{What: "global job " + job.Name, Where: "every ready Swarm node", Deadline: job.Timeout,
		Initial: 250 * time.Millisecond, Max: 2 * time.Second}, func(ctx context.Context) error {
		all, err := c.Tasks(ctx, id)
		if err != nil {
			return err
		}
		tasks = tasks[:0]
		var waiting []string
		for nid, host := range ready {
			// the node's first task: Swarm (20.10) runs a failed global-job task again whatever the restart
			// policy, so the command run must exit 0 and report its failures in its output
			var first *swarm.Task
			for i, t := range all {
				if t.NodeID == nid && (first == nil || t.Meta.CreatedAt.Before(first.Meta.CreatedAt)) {
					first = &all[i]
				}
			}
			if first == nil || !ended(first.Status.State) {
				waiting = append(waiting, host)
				continue
			}
			tasks = append(tasks, *first)
		}
		if len(waiting) > 0 {
			slices.Sort(waiting)
			return fmt.Errorf("not ended yet on %s", strings.Join(waiting, ", "))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []NodeResult
	var errs []error
	for _, t := range tasks {
		stdout, stderr, err := c.TaskLogs(ctx, t.ID, 0)
		if err != nil {
			errs = append(errs, err)
		}
		out = append(out, NodeResult{Node: ready[t.NodeID], State: string(t.Status.State), Err: t.Status.Err,
			Output: strings.TrimSpace(stdout + stderr)})
	}
	slices.SortFunc(out, func(a, b NodeResult) int { return strings.Compare(a.Node, b.Node) })
	return out, errors.Join(errs...)
}

// Swarm keeps the containers of a job's tasks even once the job is removed (moby/moby#44312), and a container
// cannot remove itself. A node job therefore ends by starting a reaper on its node (StartReaper): a plain,
// auto-removed container of the same image that waits until the job's container has exited, leaves the manager
// ReaperGrace to read its output, and removes it (RemoveWhenExited).

// ReaperGrace is how long a reaper leaves an exited node job's container for the manager to read its output.
const ReaperGrace = 30 * time.Second

// StartReaper starts, on this engine's node, a plain auto-removed container of the image of container self
// (this node's job task) with args, as root with the node's Docker socket, labelled NodeJobLabel.
func (c *Client) StartReaper(ctx context.Context, self string, args []string) error {
	in, err := c.api.ContainerInspect(ctx, self)
	if err != nil {
		return fmt.Errorf("inspect own container %s: %w", self, err)
	}
	labels := map[string]string{NodeJobLabel: "reaper"}
	created, err := c.api.ContainerCreate(ctx, &container.Config{Image: in.Image, Cmd: args, User: "0:0", Labels: labels,
		Entrypoint: in.Config.Entrypoint},
		&container.HostConfig{AutoRemove: true, Binds: []string{Socket + ":" + Socket}}, nil, nil, "")
	if err != nil {
		return fmt.Errorf("create reaper of container %s: %w", ShortID(in.ID), err)
	}
	if err := c.api.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		return fmt.Errorf("start reaper of container %s: %w", ShortID(in.ID), err)
	}
	return nil
}

// RemoveWhenExited waits until container id has stopped running, then grace, then removes it.
func (c *Client) RemoveWhenExited(ctx context.Context, id string, grace time.Duration) error {
	waitC, errC := c.api.ContainerWait(ctx, id, container.WaitConditionNotRunning)
	select {
	case <-waitC:
	case err := <-errC:
		if IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("wait for container %s: %w", ShortID(id), err)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(grace):
	}
	if err := c.api.ContainerRemove(ctx, id, container.RemoveOptions{Force: true}); err != nil && !IsNotFound(err) {
		return fmt.Errorf("remove container %s: %w", ShortID(id), err)
	}
	return nil
}
