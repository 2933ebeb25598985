package docker_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
)

// SwarmClient returns a client of the test bed's Docker Engine, holding the test bed's Swarm lock.
func swarmClient(t *testing.T) *docker.Client {
	t.Helper()
	in := testbed.Require(t, "docker")
	testbed.LockSwarmApply(t)
	c, err := docker.New(in.Docker.Host, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func serviceName(t *testing.T) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return "zb-scale-test-" + hex.EncodeToString(b)
}

// taskStates counts the service's tasks by state, as the engine reports them.
func taskStates(t *testing.T, c *docker.Client, service string) map[swarm.TaskState]int {
	t.Helper()
	tasks, err := c.Tasks(context.Background(), service)
	if err != nil {
		t.Fatal(err)
	}
	m := map[swarm.TaskState]int{}
	for _, k := range tasks {
		m[k.Status.State]++
	}
	return m
}

// Scale on a real Swarm service: to 0 returns once no task runs, back to 2 once two run.
func TestScaleRealService(t *testing.T) {
	c := swarmClient(t)
	ctx := context.Background()
	name := serviceName(t)
	testbed.SleepService(t, c, name, 2)
	if n, err := c.Replicas(ctx, name); err != nil || n != 2 {
		t.Fatalf("Replicas = %d, %v; want 2", n, err)
	}
	if got := taskStates(t, c, name); got[swarm.TaskStateRunning] != 2 {
		t.Fatalf("after create: %v, want 2 running", got)
	}

	start := time.Now()
	if err := c.Scale(ctx, name, 0); err != nil {
		t.Fatal(err)
	}
	t.Logf("scaled to 0 in %s", time.Since(start).Round(time.Millisecond))
	got := taskStates(t, c, name)
	if n, err := c.Replicas(ctx, name); err != nil || n != 0 {
		t.Fatalf("Replicas = %d, %v; want 0", n, err)
	}
	for state, n := range got {
		if state != swarm.TaskStateShutdown && state != swarm.TaskStateComplete {
			t.Errorf("after scaling to 0: %d task(s) %s (all: %v); want every task shut down", n, state, got)
		}
	}
	// the containers have stopped, not only the tasks' records
	conts, err := c.Containers(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range conts {
		if strings.HasPrefix(k.Name, name+".") && k.State == "running" {
			t.Errorf("container %s still running after scaling to 0", k.Name)
		}
	}

	start = time.Now()
	if err := c.Scale(ctx, name, 2); err != nil {
		t.Fatal(err)
	}
	t.Logf("scaled back to 2 in %s", time.Since(start).Round(time.Millisecond))
	if got := taskStates(t, c, name); got[swarm.TaskStateRunning] != 2 {
		t.Fatalf("after scaling to 2: %v, want 2 running", got)
	}
}

// A service that does not exist: a not-found error naming it, from both calls.
func TestScaleMissingService(t *testing.T) {
	c := swarmClient(t)
	name := serviceName(t)
	_, err := c.Replicas(context.Background(), name)
	if !docker.IsNotFound(err) || !strings.Contains(err.Error(), name) {
		t.Errorf("Replicas of a missing service: %v; want not found, naming it", err)
	}
	err = c.Scale(context.Background(), name, 0)
	if !docker.IsNotFound(err) || !strings.Contains(err.Error(), name) {
		t.Errorf("Scale of a missing service: %v; want not found, naming it", err)
	}
}

// A service whose tasks cannot start: Scale gives up at its deadline (here the context's), naming the service and
// its latest task's state and error.
func TestScaleNamesTheTaskError(t *testing.T) {
	c := swarmClient(t)
	name := serviceName(t)
	spec := testbed.SleepSpec(t, name, 0)
	spec.TaskTemplate.ContainerSpec.Image = "zb-local/no-such-image:none" // every task is rejected
	testbed.CreateService(t, c, spec)
	ctx := context.Background()
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	err := c.Scale(cctx, name, 1)
	if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "no-such-image") {
		t.Fatalf("Scale to 1 with an image that does not exist: %v; want an error naming the service and the task's error", err)
	}
	t.Logf("error: %v", err)
}
