package testbed

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
)

// TestServiceLabel marks the Swarm services tests create (SleepService); a leftover one may be removed by hand:
// docker service rm $(docker service ls -q --filter label=org.ziti-bootstrap.test-service)
const TestServiceLabel = "org.ziti-bootstrap.test-service"

// SleepImage is the local image test services run (scripts/images.sh builds it).
const SleepImage = "zb-local/debian:bookworm"

// SleepSpec is a replicated service named name with replicas tasks that run `sleep infinity` in SleepImage,
// labelled TestServiceLabel.
func SleepSpec(t testing.TB, name string, replicas uint64) swarm.ServiceSpec {
	labels := map[string]string{TestServiceLabel: t.Name()}
	return swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: name, Labels: labels},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: SleepImage, Command: []string{"sleep", "infinity"}, Labels: labels,
				StopGracePeriod: new(time.Second)},
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny},
		},
		Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
	}
}

// SleepService creates SleepSpec in the test bed's Swarm (see CreateService).
func SleepService(t testing.TB, c *docker.Client, name string, replicas uint64) {
	t.Helper()
	CreateService(t, c, SleepSpec(t, name, replicas))
}

// CreateService creates a replicated service, waits until its tasks run, and removes it when the test ends. The
// caller holds LockSwarmApply (tests that deploy to the Swarm serialise on it).
func CreateService(t testing.TB, c *docker.Client, spec swarm.ServiceSpec) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	id, _, err := c.CreateService(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.RemoveService(ctx, id); err != nil && !docker.IsNotFound(err) {
			t.Errorf("remove test service %s: %v", spec.Name, err)
		}
	})
	if err := c.Scale(ctx, spec.Name, *spec.Mode.Replicated.Replicas); err != nil {
		t.Fatal(fmt.Errorf("test service %s did not start: %w", spec.Name, err))
	}
}
