package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ziti-bootstrap/ziti-bootstrap/app"
	"github.com/ziti-bootstrap/ziti-bootstrap/backup"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/agentlauncher"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/sockproxy"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
)

func newSocketProxyCommand(g *globals) *cobra.Command {
	var policy, listen string
	var describe, health bool
	cmd := &cobra.Command{
		Use:   "socket-proxy",
		Short: "Serve a filtering proxy of the Docker Engine's socket: only the calls of one service's policy go through",
		Long: `Listens on the unix socket --listen and forwards to the Docker Engine (DOCKER_HOST, a unix socket; default
unix:///var/run/docker.sock) only the Engine API calls of the policy --policy; any other call is answered with
HTTP 403 and a message naming the policy and the call, and never reaches the Engine. The stacks run it as the only
service that mounts the Engine's socket for a service that needs a few calls (the bootstrap job: the apply lock).
The policy agent-launcher reads the agent container it allows from the launcher's variables (ZB_AGENT_IMAGE,
ZB_AGENT_CONTAINER, ZB_AGENT_NAMESPACE, ZB_AGENT_NETWORK, ZB_AGENT_*_VOLUME, ZB_AGENT_BINDS).
--describe prints what the policy allows; --healthcheck (the service's Docker healthcheck) pings the Engine through
the proxy at --listen and exits 0 when it answers. Exit codes: 0 stopped by a signal, 2 invalid settings, 1 otherwise.
Policies: ` + strings.Join(sockproxy.Names(), ", "),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, ok := sockproxy.Policies(restoreServers(), restoreLabels)[policy]
			if policy == sockproxy.AgentLauncherPolicy {
				// the agent container it may make: from the launcher's own settings (the same variables)
				s, err := agentlauncher.AgentFromEnv(os.LookupEnv)
				if err != nil {
					return err
				}
				p, ok = agentlauncher.ProxyPolicy(s), true
			}
			if !ok {
				return &exitError{exitcode.InvalidConfig, fmt.Errorf("--policy %q: use one of %s", policy, strings.Join(sockproxy.Names(), ", "))}
			}
			if describe {
				_, err := fmt.Fprint(g.stdout, p.Describe())
				return err
			}
			if health {
				ctx, cancel := context.WithTimeout(cmd.Context(), healthcheckTimeout)
				defer cancel()
				return sockproxy.Ping(ctx, listen)
			}
			upstream := "unix:///var/run/docker.sock"
			if v := os.Getenv("DOCKER_HOST"); v != "" {
				upstream = v
			}
			sock, ok := strings.CutPrefix(upstream, "unix://")
			if !ok || listen == "" {
				return &exitError{exitcode.InvalidConfig, fmt.Errorf("DOCKER_HOST %q and --listen %q: both must be unix sockets (unix:///path, /path)", upstream, listen)}
			}
			g.log.Info("socket proxy", "policy", p.Name, "listen", listen, "engine", upstream)
			return sockproxy.Serve(cmd.Context(), listen, sockproxy.Handler(p, sock, g.log))
		},
	}
	cmd.Flags().StringVar(&policy, "policy", "", "the service's policy: "+strings.Join(sockproxy.Names(), ", "))
	cmd.Flags().StringVar(&listen, "listen", "", "the unix socket to serve (a stale one is replaced)")
	cmd.Flags().BoolVar(&describe, "describe", false, "print what the policy allows and exit")
	cmd.Flags().BoolVar(&health, "healthcheck", false, "ping the Engine through the proxy at --listen and exit")
	return cmd
}

// restoreServers are the Swarm services a restore inside the backup service stops: those of app.SwarmServices in
// the stacks named by ZB_STACK_* (as the backup service's environment has them).
func restoreServers() []string {
	var out []string
	for _, sk := range app.SwarmServices {
		stack := stacks.DefaultNames("")[sk[0]]
		if v := os.Getenv("ZB_STACK_" + strings.ToUpper(sk[0])); v != "" {
			stack = v
		}
		out = append(out, stack+"_"+sk[1])
	}
	sort.Strings(out)
	return out
}

// restoreLabels is the prefix of the labels a restore journals in the servers' services (backup.LabelReplicas, …).
var restoreLabels = strings.TrimSuffix(backup.LabelReplicas, "replicas")
