package agentlauncher

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/sockproxy"
)

// Serve is the launcher: it serves the agent's Docker proxy and runs the loop (Run) until ctx ends, then returns
// nil. The proxy (sockproxy.SpireAgent: the Engine's facts, container and image inspection) is the only Engine
// the agent has: its docker workload attestor calls it at DockerSocket, the socket ProxySocket in the volume
// ProxyVolume that both mount. When the proxy fails (it cannot listen) the loop is stopped and the error
// returned, so that the task ends and Swarm starts another, which serves the socket again in the same volume.
func (l *Launcher) Serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	proxy, loop := make(chan error, 1), make(chan error, 1)
	go func() { proxy <- l.serveProxy(ctx) }()
	go func() { loop <- l.Run(ctx) }()
	select {
	case err := <-proxy:
		stopped := ctx.Err() != nil
		cancel()
		<-loop
		if err == nil && !stopped {
			err = errors.New("stopped")
		}
		if err != nil {
			return fmt.Errorf("the agent's Docker proxy at %s: %w", l.Settings.ProxySocket(), err)
		}
		return nil
	case err := <-loop:
		cancel()
		if perr := <-proxy; perr != nil {
			err = errors.Join(err, fmt.Errorf("the agent's Docker proxy at %s: %w", l.Settings.ProxySocket(), perr))
		}
		return err
	}
}

// serveProxy serves the policy spire-agent on ProxySocket in front of the Engine's socket until ctx ends; a
// socket left there by an earlier launcher is replaced.
func (l *Launcher) serveProxy(ctx context.Context) error {
	engine, ok := strings.CutPrefix(l.Settings.DockerHost, "unix://")
	if !ok {
		return fmt.Errorf("%s %q is not a unix socket", EnvDockerHost, l.Settings.DockerHost)
	}
	l.Log.Info("serving the agent's Docker proxy", "socket", l.Settings.ProxySocket(), "policy", sockproxy.SpireAgent().Name, "engine", l.Settings.DockerHost)
	return sockproxy.Serve(ctx, l.Settings.ProxySocket(), sockproxy.Handler(sockproxy.SpireAgent(), engine, l.Log))
}

// checkProxy is the proxy's part of Check: the Engine answers a ping through it.
func (l *Launcher) checkProxy(ctx context.Context) error {
	if err := sockproxy.Ping(ctx, l.Settings.ProxySocket()); err != nil {
		return unhealthy("the agent's Docker proxy does not answer, so no workload can be attested: %v", err)
	}
	return nil
}
