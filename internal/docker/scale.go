package docker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
)

// ScaleTimeout is how long Scale waits for a service's tasks to reach the new count, unless the context ends
// sooner.
const ScaleTimeout = 3 * time.Minute

// ErrNotReplicated says a service runs in global mode: it cannot be scaled.
var ErrNotReplicated = errors.New("not replicated (mode global): it cannot be scaled")

// Replicas returns the replica count of a replicated service (by name or ID). A missing service satisfies
// IsNotFound; a global service, ErrNotReplicated.
func (c *Client) Replicas(ctx context.Context, service string) (uint64, error) {
	s, err := c.replicated(ctx, service)
	if err != nil {
		return 0, err
	}
	return *s.Spec.Mode.Replicated.Replicas, nil
}

func (c *Client) replicated(ctx context.Context, service string) (swarm.Service, error) {
	s, _, err := c.api.ServiceInspectWithRaw(ctx, service, swarm.ServiceInspectOptions{})
	if err != nil {
		return s, fmt.Errorf("inspect Swarm service %s: %w", service, err)
	}
	if s.Spec.Mode.Replicated == nil || s.Spec.Mode.Replicated.Replicas == nil {
		return s, fmt.Errorf("Swarm service %s is %w", service, ErrNotReplicated)
	}
	return s, nil
}

// Scale sets the replica count of a replicated service and returns once its tasks have reached it: for 0, when
// every task has ended (its container stopped, so its files are closed); for n, when n tasks run. It waits up to
// ScaleTimeout; the error then names the service and its latest task's state and error.
func (c *Client) Scale(ctx context.Context, service string, replicas uint64) error {
	var id string
	for attempt := 0; ; attempt++ {
		s, err := c.replicated(ctx, service)
		if err != nil {
			return err
		}
		id = s.ID
		if *s.Spec.Mode.Replicated.Replicas == replicas {
			break
		}
		spec := s.Spec
		spec.Mode.Replicated = &swarm.ReplicatedService{Replicas: &replicas}
		_, err = c.api.ServiceUpdate(ctx, s.ID, s.Version, spec, swarm.ServiceUpdateOptions{QueryRegistry: false})
		if err == nil {
			break
		}
		// "update out of sequence": the service changed since it was read; read it again (a few times)
		if attempt >= 3 || !strings.Contains(err.Error(), "out of sequence") {
			return fmt.Errorf("scale Swarm service %s to %d: %w", service, replicas, err)
		}
	}
	var last string
	err := wait.For(ctx, wait.Target{What: "Swarm service " + service, Where: "the Docker Engine at " + c.host, Deadline: ScaleTimeout,
		Initial: 250 * time.Millisecond, Max: 2 * time.Second}, func(ctx context.Context) error {
		tasks, err := c.Tasks(ctx, id)
		if err != nil {
			return err
		}
		running, live := 0, 0
		for _, t := range tasks {
			if !ended(t.Status.State) {
				live++
			}
			if t.Status.State == swarm.TaskStateRunning && t.DesiredState == swarm.TaskStateRunning {
				running++
			}
		}
		last = latestTask(tasks)
		if (replicas == 0 && live == 0) || (replicas > 0 && running == int(replicas) && live == running) {
			return nil
		}
		if replicas == 0 {
			return fmt.Errorf("%d task(s) not ended yet", live)
		}
		return fmt.Errorf("%d of %d task(s) running", running, replicas)
	})
	var ue *wait.UnreachableError
	if errors.As(err, &ue) {
		return fmt.Errorf("Swarm service %s did not reach %d running task(s) within %s (%v); its latest task: %s", service, replicas,
			ue.Waited.Round(time.Second), ue.Last, last)
	}
	return err
}

// ended reports whether a task in state s has no container running (it never started one, or it stopped).
func ended(s swarm.TaskState) bool {
	return slices.Contains([]swarm.TaskState{swarm.TaskStateComplete, swarm.TaskStateShutdown, swarm.TaskStateFailed,
		swarm.TaskStateRejected, swarm.TaskStateRemove, swarm.TaskStateOrphaned}, s)
}

// latestTask describes the most recently updated task: its state, desired state, and error or message.
func latestTask(tasks []swarm.Task) string {
	if len(tasks) == 0 {
		return "none"
	}
	t := slices.MaxFunc(tasks, func(a, b swarm.Task) int { return a.Status.Timestamp.Compare(b.Status.Timestamp) })
	s := fmt.Sprintf("%s %s (desired %s) since %s", t.ID, t.Status.State, t.DesiredState, t.Status.Timestamp.UTC().Format(time.RFC3339))
	if t.Status.Err != "" {
		s += ": " + t.Status.Err
	} else if t.Status.Message != "" {
		s += ": " + t.Status.Message
	}
	return s
}
