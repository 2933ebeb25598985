package main

import (
	"context"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/agentlauncher"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
)

// agentReachesDockerOnlyThroughItsProxy checks the node's SPIRE agent (which workloadIdentity showed attests
// workloads by their containers' labels): see agentDockerOnlyThroughProxy.
func (d *devSystem) agentReachesDockerOnlyThroughItsProxy() {
	ns := d.names[stacks.Spire]
	agentDockerOnlyThroughProxy(d.tb, d.c, ns+"_spire-agent", ns+"_spire-agent-docker", d.prefix+"agent-escape")
	launcherDockerOnlyThroughProxy(d.tb, d.c, ns, d.prefix+"launcher-escape")
}

// launcherDockerOnlyThroughProxy checks the agent launcher's task on c's node (stack ns): it mounts no socket of
// the Engine's, only the volume spire-agent-launcher-docker where its proxy (policy agent-launcher) serves; that
// proxy refused none of the launcher's calls (it made the agent, which attests), inspects the agent, and refuses
// anything else (see onlyThroughProxy; a container named evil among them) before it reaches the Engine.
func launcherDockerOnlyThroughProxy(t testing.TB, c *docker.Client, ns, evil string) {
	t.Helper()
	ctx := testutil.Context(t, 2*time.Minute)
	vol := ns + "_spire-agent-launcher-docker"
	launcher := runningTask(t, c, ns, ns+"_spire-agent-launcher")
	noEngineSocket(t, launcher, vol, "/run/zb-docker")
	proxy := runningTask(t, c, ns, ns+"_spire-agent-launcher-docker")
	if o, e, err := c.ContainerLogs(ctx, proxy.ID); err != nil || strings.Contains(o+e, "socket proxy: refused") {
		t.Errorf("the launcher's proxy refused a call of the launcher's (%v):\n%s%s", err, o, e)
	}
	via := onlyThroughProxy(t, c, launcher, vol, "agent-launcher", evil, proxy.ID)
	if _, err := via.InspectContainer(ctx, ns+"_spire-agent"); err != nil {
		t.Errorf("inspect the agent through the launcher's proxy: %v", err)
	}
	if o, e, err := c.ContainerLogs(ctx, proxy.ID); err != nil || !strings.Contains(o+e, "socket proxy: refused") {
		t.Errorf("the launcher's proxy's log does not show the refusals (%v):\n%s%s", err, o, e)
	}
}

// runningTask is the running container of a task of service on c's node (stack ns).
func runningTask(t testing.TB, c *docker.Client, ns, service string) docker.ContainerInfo {
	t.Helper()
	ctx := testutil.Context(t, time.Minute)
	list, err := c.Containers(ctx, ns)
	testutil.Must(t, err)
	for _, k := range list {
		if strings.HasPrefix(k.Name, service+".") && k.State == "running" {
			info, err := c.InspectContainer(ctx, k.ID)
			testutil.Must(t, err)
			return info
		}
	}
	t.Fatalf("no running task of %s on this node: %+v", service, list)
	return docker.ContainerInfo{}
}

// agentDockerOnlyThroughProxy checks the SPIRE agent container agentName on c's node: it mounts no socket of the
// Engine's, only the volume vol where its proxy of policy spire-agent serves (the launcher in the Swarm, the
// service spire-agent-docker in a compose project), and that proxy inspects containers but refuses anything else
// (see onlyThroughProxy; a container named evil among them) before it reaches the Engine.
func agentDockerOnlyThroughProxy(t testing.TB, c *docker.Client, agentName, vol, evil string) {
	t.Helper()
	ctx := testutil.Context(t, 2*time.Minute)
	agent, err := c.InspectContainer(ctx, agentName)
	testutil.Must(t, err)
	noEngineSocket(t, agent, vol, agentlauncher.DockerDir)
	via := onlyThroughProxy(t, c, agent, vol, "spire-agent", evil, agent.ID)
	if _, err := via.InspectContainer(ctx, agent.ID); err != nil {
		t.Errorf("inspect a container through the agent's proxy (what its attestor does): %v", err)
	}
}

// noEngineSocket checks that container k binds no Engine socket, and has the volume vol read-only at dir.
func noEngineSocket(t testing.TB, k docker.ContainerInfo, vol, dir string) {
	t.Helper()
	var viaProxy bool
	for _, m := range k.Mounts {
		if !m.Volume && (strings.Contains(m.Source, "docker.sock") || slices.Contains([]string{"/", "/run", "/var/run"}, m.Source)) {
			t.Errorf("the container %s mounts the Engine's socket: %s at %s", k.Name, m.Source, m.Target)
		}
		viaProxy = viaProxy || m.Volume && m.Source == vol && m.Target == dir && m.ReadOnly
	}
	if !viaProxy {
		t.Errorf("the container %s's mounts %+v: no read-only volume %s at %s", k.Name, k.Mounts, vol, dir)
	}
}

// onlyThroughProxy checks that the proxy of policy serving in the volume vol, called as container k calls it (its
// socket in the volume, on c's node), refuses to create a container named evil (host PID namespace, the node's
// root bound), to list secrets and to stop the container stop, before they reach the Engine. It returns a client
// of the proxy.
func onlyThroughProxy(t testing.TB, c *docker.Client, k docker.ContainerInfo, vol, policy, evil, stop string) *docker.Client {
	t.Helper()
	ctx := testutil.Context(t, 2*time.Minute)
	v, err := c.InspectVolume(ctx, vol)
	testutil.Must(t, err)
	via, err := docker.New("unix://"+path.Join(v.Mountpoint, agentlauncher.ProxySocketName), nil)
	testutil.Must(t, err)
	t.Cleanup(func() { via.Close() })
	refused := func(what string, err error, method string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), "socket proxy (policy "+policy+") refuses "+method+" ") {
			t.Errorf("%s through the proxy of %s: %v; want the proxy's refusal", what, k.Name, err)
		}
	}
	_, err = via.CreateContainer(ctx, docker.ContainerSpec{Name: evil, Image: k.Image, HostPID: true,
		Mounts: []docker.Mount{{Source: "/", Target: "/host"}}})
	refused("create a container", err, "POST")
	if _, err := c.InspectContainer(ctx, evil); !docker.IsNotFound(err) {
		t.Errorf("the refused container reached the Engine: %v", err)
		_ = c.ForceRemoveContainer(context.WithoutCancel(ctx), evil)
	}
	_, err = via.Secrets(ctx, "")
	refused("list secrets", err, "GET")
	refused("stop "+stop, via.StopContainer(ctx, stop, time.Second), "POST")
	t.Logf("%s: no Engine socket, its proxy (policy %s, volume %s) refuses create, secrets and stop", k.Name, policy, vol)
	return via
}
