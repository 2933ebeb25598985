package sockproxy_test

import (
	"context"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/lock"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/sockproxy"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
)

// The backup service's policy, against the real Engine: the apply lock, and a restore's scaling of a server's
// service to 0 and back, go through; reading or scaling another service, changing more than the replica count,
// listing other tasks or containers, and making secrets are refused before they reach the Engine.
func TestBackupPolicy(t *testing.T) {
	sfx := testutil.RandHex(t, 4)
	lockName, server, other := "zbtest-sockproxy-lock-"+sfx, "zbtest-sockproxy-server-"+sfx, "zbtest-sockproxy-other-"+sfx
	const journal = "ziti-bootstrap.restore."
	via, direct, _ := proxy(t, sockproxy.Backup(lockName, []string{server}, journal))
	ctx := testutil.Context(t, 5*time.Minute)
	ids := map[string]string{}
	for _, name := range []string{server, other} {
		zero := uint64(0)
		id, _, err := direct.CreateService(ctx, swarm.ServiceSpec{Annotations: swarm.Annotations{Name: name, Labels: map[string]string{"zbtest": "sockproxy"}},
			TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "zb-local/debian:bookworm", Command: []string{"sleep", "infinity"}}},
			Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &zero}}})
		testutil.Must(t, err)
		ids[name] = id
		t.Cleanup(func() { _ = direct.RemoveService(context.Background(), id) })
	}

	// what the service does: the lock, and a restore's stop and start of the server
	_, err := via.RequireManager(ctx)
	testutil.Must(t, err)
	store := lock.NewSwarm(via, lockName, "the proxy")
	me := lock.Self()
	me.TTL, me.Expires = time.Minute, time.Now().Add(time.Minute)
	if _, err := store.TryAcquire(ctx, me); err != nil {
		t.Fatalf("take the lock through the proxy: %v", err)
	}
	t.Cleanup(func() {
		if c, err := direct.InspectConfig(context.Background(), lockName); err == nil {
			_ = direct.RemoveConfig(context.Background(), c.ID)
		}
	})
	testutil.Must(t, store.Release(ctx, me))
	if n, err := via.Replicas(ctx, server); err != nil || n != 0 {
		t.Fatalf("replicas of %s through the proxy: %d, %v", server, n, err)
	}
	testutil.Must(t, via.SetServiceLabels(ctx, server, map[string]string{journal + "replicas": "0", journal + "stage": "recorded"}))
	if got, err := via.ServicesLabelled(ctx, journal+"replicas"); err != nil || len(got) != 1 || got[0] != server {
		t.Errorf("services labelled %sreplicas through the proxy: %v, %v", journal, got, err)
	}
	testutil.Must(t, via.Scale(ctx, server, 1))
	testutil.Must(t, via.Scale(ctx, server, 0))
	testutil.Must(t, via.SetServiceLabels(ctx, server, map[string]string{journal + "replicas": "", journal + "stage": ""}))

	// what it does not
	_, err = via.Replicas(ctx, other)
	refusedBy(t, "backup", "read another service", err, "GET /v")
	refusedBy(t, "backup", "scale another service", via.Scale(ctx, other, 1), "GET /v")
	s, err := direct.Services(ctx, "")
	testutil.Must(t, err)
	for _, svc := range s {
		if svc.ID != ids[server] {
			continue
		}
		spec := svc.Spec
		spec.TaskTemplate.ContainerSpec.Image = "zb-local/ziti-bootstrap:evil"
		_, err := via.UpdateService(ctx, svc.ID, svc.Version.Index, spec)
		refusedBy(t, "backup", "change the server's image", err, "POST /v")
	}
	refusedBy(t, "backup", "set another label", via.SetServiceLabels(ctx, server, map[string]string{"com.docker.stack.namespace": "x"}), "POST /v")
	_, err = via.ServicesLabelled(ctx, "com.docker.stack.namespace")
	refusedBy(t, "backup", "list services by another label", err, "GET /v")
	_, err = via.Tasks(ctx, ids[other])
	refusedBy(t, "backup", "list another service's tasks", err, "GET /v")
	_, err = via.NamespaceTasks(ctx, "zbtest")
	refusedBy(t, "backup", "list a stack's tasks", err, "GET /v")
	_, err = via.Services(ctx, "")
	refusedBy(t, "backup", "list services", err, "GET /v")
	_, err = via.Containers(ctx, "")
	refusedBy(t, "backup", "list containers", err, "GET /v")
	_, err = via.CreateSecret(ctx, lockName+"-secret", []byte("x"), nil)
	refusedBy(t, "backup", "create a secret", err, "POST /v")
	if n, err := direct.Replicas(ctx, other); err != nil || n != 0 {
		t.Errorf("the other service: %d replicas, %v; want 0, untouched", n, err)
	}
}

// The SPIRE agent's policy, against the real Engine: a container and its image can be inspected (what the docker
// workload attestor does); listing, creating, executing in or removing containers is refused.
func TestSpireAgentPolicy(t *testing.T) {
	via, direct, _ := proxy(t, sockproxy.SpireAgent())
	ctx := testutil.Context(t, 2*time.Minute)
	// a container of the test's own: the Engine may run no other at this moment
	name := "zbtest-sockproxy-" + testutil.RandHex(t, 4)
	own, err := direct.CreateContainer(ctx, docker.ContainerSpec{Name: name, Image: testbed.SleepImage, Cmd: []string{"sleep", "infinity"}, Network: "none"})
	testutil.Must(t, err)
	t.Cleanup(func() { direct.ForceRemoveContainer(context.Background(), own) })
	c, err := via.InspectContainer(ctx, own)
	testutil.Must(t, err)
	if c.ID != own || c.Name != name || c.Image != testbed.SleepImage {
		t.Errorf("inspected %s %q (image %s) through the proxy; want %s %q (%s)", c.ID, c.Name, c.Image, own, name, testbed.SleepImage)
	}
	if _, err := via.ImageID(ctx, c.Image); err != nil {
		t.Errorf("inspect image %s through the proxy: %v", c.Image, err)
	}
	_, err = via.Containers(ctx, "")
	refusedBy(t, "spire-agent", "list containers", err, "GET /v")
	_, err = via.Exec(ctx, c.ID, []string{"true"})
	refusedBy(t, "spire-agent", "exec in a container", err, "POST /v")
	refusedBy(t, "spire-agent", "remove a container", via.ForceRemoveContainer(ctx, c.ID), "DELETE /v")
	_, err = via.CreateContainer(ctx, docker.ContainerSpec{Name: name + "-2", Image: c.Image})
	refusedBy(t, "spire-agent", "create a container", err, "POST /v")
}
