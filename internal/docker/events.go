package docker

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
)

// ContainerEvent is one event of a container, as `docker events` shows it.
type ContainerEvent struct {
	Action string // die, destroy, "health_status: healthy", …
	ID     string
	Name   string
	Time   time.Time
	// ExitCode is set for die.
	ExitCode string
}

func (e ContainerEvent) String() string {
	s := fmt.Sprintf("%s of container %s (%s)", e.Action, e.Name, ShortID(e.ID))
	if e.ExitCode != "" {
		s += " exit code " + e.ExitCode
	}
	return s
}

// ContainerEvents streams the events of the container named name (any container that has, or will have, that
// name) whose action is one of actions (health_status matches every health_status: … action), from now until ctx
// ends or the stream breaks. The error channel then receives one error (ctx.Err() when ctx ended) and both
// channels close.
func (c *Client) ContainerEvents(ctx context.Context, name string, actions ...string) (<-chan ContainerEvent, <-chan error) {
	f := filters.NewArgs(filters.Arg("type", string(events.ContainerEventType)), filters.Arg("container", name))
	for _, a := range actions {
		f.Add("event", a)
	}
	msgs, errs := c.api.Events(ctx, events.ListOptions{Filters: f})
	out := make(chan ContainerEvent)
	outErr := make(chan error, 1)
	go func() {
		defer close(outErr)
		defer close(out)
		for {
			select {
			case m := <-msgs:
				ev := ContainerEvent{Action: string(m.Action), ID: m.Actor.ID, Name: m.Actor.Attributes["name"],
					ExitCode: m.Actor.Attributes["exitCode"], Time: time.Unix(0, m.TimeNano)}
				if ev.Name != name && ev.ID != name {
					continue // the engine's container filter also matches names that start with name
				}
				select {
				case out <- ev:
				case <-ctx.Done():
					outErr <- ctx.Err()
					return
				}
			case err := <-errs:
				if err == nil {
					err = fmt.Errorf("event stream closed")
				}
				outErr <- fmt.Errorf("events of container %s: %w", name, err)
				return
			}
		}
	}()
	return out, outErr
}

// StackEvents sends a value whenever a container or service of stack namespace has an event that can change a
// task's state (a task's container created, started, died, became healthy or unhealthy; a service updated), until
// ctx ends or the stream breaks (then the channel closes). A health check's own runs (exec_create, exec_start,
// exec_die: one set every few seconds per container) are not sent: they change nothing a waiter reads, and woke
// it several times a second. A reader that is busy misses nothing it needs: one pending value stands for any
// number of events. Only the containers of this engine's node are seen; callers poll too.
func (c *Client) StackEvents(ctx context.Context, namespace string) <-chan struct{} {
	f := filters.NewArgs(filters.Arg("type", string(events.ContainerEventType)), filters.Arg("type", string(events.ServiceEventType)))
	msgs, errs := c.api.Events(ctx, events.ListOptions{Filters: f})
	out := make(chan struct{}, 1)
	go func() {
		defer close(out)
		for {
			select {
			case m := <-msgs:
				a := m.Actor.Attributes
				if a[NamespaceLabel] != namespace && !strings.HasPrefix(a["name"], namespace+"_") || !changesTask(m) {
					continue
				}
				select {
				case out <- struct{}{}:
				default:
				}
			case <-errs:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// changesTask reports whether event m can change the state of a Swarm task: every service event, and the events
// of a container's life and health; not a health check's exec runs, an attach, a copy or a resize.
func changesTask(m events.Message) bool {
	if m.Type != events.ContainerEventType {
		return true
	}
	switch a := string(m.Action); a {
	case "create", "start", "restart", "die", "kill", "oom", "stop", "destroy", "pause", "unpause":
		return true
	default:
		return strings.HasPrefix(a, "health_status")
	}
}
