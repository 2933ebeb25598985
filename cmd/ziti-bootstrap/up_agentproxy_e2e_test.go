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
}

// agentDockerOnlyThroughProxy checks the SPIRE agent container agentName on c's node: it mounts no socket of the
// Engine's, only the volume vol where its proxy of policy spire-agent serves (the launcher in the Swarm, the
// service spire-agent-docker in a compose project), and that proxy, called as the agent calls it (its socket in
// the volume, on the node), inspects containers but refuses anything else before it reaches the Engine (a
// container named evil, which it must not create, among them).
func agentDockerOnlyThroughProxy(t testing.TB, c *docker.Client, agentName, vol, evil string) {
	t.Helper()
	ctx := testutil.Context(t, 2*time.Minute)
	agent, err := c.InspectContainer(ctx, agentName)
	testutil.Must(t, err)
	var viaProxy bool
	for _, m := range agent.Mounts {
		if !m.Volume && (strings.Contains(m.Source, "docker.sock") || slices.Contains([]string{"/", "/run", "/var/run"}, m.Source)) {
			t.Errorf("the agent container %s mounts the Engine's socket: %s at %s", agent.Name, m.Source, m.Target)
		}
		viaProxy = viaProxy || m.Volume && m.Source == vol && m.Target == agentlauncher.DockerDir && m.ReadOnly
	}
	if !viaProxy {
		t.Errorf("the agent container's mounts %+v: no read-only volume %s at %s", agent.Mounts, vol, agentlauncher.DockerDir)
	}

	v, err := c.InspectVolume(ctx, vol)
	testutil.Must(t, err)
	via, err := docker.New("unix://"+path.Join(v.Mountpoint, agentlauncher.ProxySocketName), nil)
	testutil.Must(t, err)
	defer via.Close()
	if _, err := via.InspectContainer(ctx, agent.ID); err != nil {
		t.Errorf("inspect a container through the agent's proxy (what its attestor does): %v", err)
	}
	refused := func(what string, err error, method string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), "socket proxy (policy spire-agent) refuses "+method+" ") {
			t.Errorf("%s through the agent's proxy: %v; want the proxy's refusal", what, err)
		}
	}
	_, err = via.CreateContainer(ctx, docker.ContainerSpec{Name: evil, Image: agent.Image, HostPID: true,
		Mounts: []docker.Mount{{Source: "/", Target: "/host"}}})
	refused("create a container", err, "POST")
	if _, err := c.InspectContainer(ctx, evil); !docker.IsNotFound(err) {
		t.Errorf("the refused container reached the Engine: %v", err)
		_ = c.ForceRemoveContainer(context.WithoutCancel(ctx), evil)
	}
	_, err = via.Secrets(ctx, "")
	refused("list secrets", err, "GET")
	refused("stop the agent", via.StopContainer(ctx, agent.ID, time.Second), "POST")
	t.Logf("the agent %s mounts %s at %s, no Engine socket; its proxy inspects containers and refuses create, secrets and stop", agent.Name, vol, agentlauncher.DockerDir)
}
