package docker_test

import (
	"context"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
)

// A stack's healthy server runs its health check every second: each run is three container events (exec_create,
// exec_start, exec_die), which change no task. StackEvents does not wake its reader for them, only for what can
// change a task, here the container's death when the service is scaled to 0.
func TestStackEventsIgnoreHealthCheckRuns(t *testing.T) {
	c := swarmClient(t)
	ns := serviceName(t)
	spec := testbed.SleepSpec(t, ns+"_server", 1)
	spec.TaskTemplate.ContainerSpec.Healthcheck = &container.HealthConfig{
		Test: []string{"CMD", "true"}, Interval: time.Second, Timeout: 5 * time.Second, Retries: 3,
	}
	testbed.CreateService(t, c, spec) // returns once the task runs, that is once healthy

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wake := c.StackEvents(ctx, ns)
	quiet := 5 * time.Second // at least 4 health checks, 12 exec events
	n := 0
	for deadline := time.After(quiet); n >= 0; {
		select {
		case <-wake:
			n++
		case <-deadline:
			if n > 0 {
				t.Errorf("StackEvents woke %d time(s) in %s while the stack's only task ran its health check and changed nothing", n, quiet)
			}
			n = -1
		}
	}

	if err := c.Scale(ctx, spec.Name, 0); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wake:
	case <-time.After(30 * time.Second):
		t.Fatal("StackEvents did not wake when the stack's task was stopped")
	}
}
