package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"

	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
)

// The services that call the Engine reach it through their socket proxy only (a volume they share with it, never
// the Engine's socket), and each proxy serves its service's policy: the bootstrap job and the converge service
// through bootstrap-docker (policy bootstrap), the backup service through backup-docker (policy backup). Of the
// OpenZiti stack, only the proxies mount the Engine's socket.
func TestServicesReachDockerThroughTheirProxy(t *testing.T) {
	st := openZitiStack(t)
	specs := map[string]*swarm.ContainerSpec{}
	for _, s := range st.Services {
		specs[strings.TrimPrefix(s.Spec.Name, st.Namespace+"_")] = s.Spec.TaskTemplate.ContainerSpec
	}
	engine := func(m mount.Mount) bool { return m.Source == "/var/run/docker.sock" }
	shared := func(ms []mount.Mount) string {
		for _, m := range ms {
			if m.Target == "/run/zb-docker" && m.Type == mount.TypeVolume {
				return m.Source
			}
		}
		return ""
	}
	for _, tc := range []struct{ client, proxy, policy string }{
		{stacks.BootstrapService, stacks.BootstrapDockerService, "bootstrap"}, {"converge", stacks.BootstrapDockerService, "bootstrap"}, {stacks.BackupService, stacks.BackupDockerService, "backup"},
	} {
		c, p := specs[tc.client], specs[tc.proxy]
		if c == nil || p == nil {
			t.Errorf("%s or %s missing from the stack", tc.client, tc.proxy)
			continue
		}
		if !slices.Contains(c.Env, "DOCKER_HOST=unix:///run/zb-docker/docker.sock") {
			t.Errorf("%s: DOCKER_HOST is not its proxy's: %v", tc.client, c.Env)
		}
		if v := shared(c.Mounts); v == "" || v != shared(p.Mounts) {
			t.Errorf("%s (%q) and its proxy %s (%q) do not share the proxy's socket volume", tc.client, v, tc.proxy, shared(p.Mounts))
		}
		if want := "socket-proxy --policy " + tc.policy + " --listen /run/zb-docker/docker.sock"; strings.Join(p.Args, " ") != want {
			t.Errorf("%s: %v, want %s", tc.proxy, p.Args, want)
		}
	}
	for name, cs := range specs {
		if slices.ContainsFunc(cs.Mounts, engine) != (name == stacks.BootstrapDockerService || name == stacks.BackupDockerService) {
			t.Errorf("%s mounts the Docker Engine's socket: %v", name, slices.ContainsFunc(cs.Mounts, engine))
		}
	}
}

// The launcher's proxy takes the agent container it allows from the launcher's variables: without them it exits 2
// naming them; with them, it describes the agent container's calls.
func TestSocketProxyAgentLauncherPolicyReadsTheLaunchersSettings(t *testing.T) {
	for _, k := range []string{"ZB_AGENT_IMAGE", "ZB_AGENT_CONTAINER", "ZB_AGENT_NAMESPACE", "ZB_AGENT_NETWORK", "ZB_AGENT_SOCKET_VOLUME",
		"ZB_AGENT_DATA_VOLUME", "ZB_AGENT_PROXY_VOLUME", "ZB_AGENT_BINDS", "DOCKER_HOST"} {
		t.Setenv(k, "")
	}
	code, _, errs := cli(t, "socket-proxy", "--policy", "agent-launcher", "--describe")
	mustExitSaying(t, code, 2, errs, "ZB_AGENT_IMAGE", "ZB_AGENT_CONTAINER", "ZB_AGENT_PROXY_VOLUME")

	for k, v := range map[string]string{"ZB_AGENT_IMAGE": "ghcr.io/spiffe/spire-agent:1.15.3", "ZB_AGENT_CONTAINER": "spire_spire-agent",
		"ZB_AGENT_NAMESPACE": "spire", "ZB_AGENT_NETWORK": "spire_spire", "ZB_AGENT_SOCKET_VOLUME": "spire_spire-agent-socket",
		"ZB_AGENT_DATA_VOLUME": "spire_spire-agent-data", "ZB_AGENT_PROXY_VOLUME": "spire_spire-agent-docker"} {
		t.Setenv(k, v)
	}
	t.Setenv("ZB_AGENT_BINDS", "/var/run/docker.sock:/var/run/docker.sock")
	code, _, errs = cli(t, "socket-proxy", "--policy", "agent-launcher", "--describe")
	mustExitSaying(t, code, 2, errs, "ZB_AGENT_BINDS", "the Docker Engine's socket")

	t.Setenv("ZB_AGENT_BINDS", "/var/lib/docker/swarm/certificates:/var/lib/docker/swarm/certificates")
	code, out, errs := cli(t, "socket-proxy", "--policy", "agent-launcher", "--describe")
	if code != 0 || !strings.Contains(out, "create the agent container spire_spire-agent") || !strings.Contains(out, "pull the agent's image (ghcr.io/spiffe/spire-agent:1.15.3)") {
		t.Errorf("--describe: exit %d\n%s%s", code, out, errs)
	}
}
