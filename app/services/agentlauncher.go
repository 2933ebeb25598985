package services

import (
	"context"
	"errors"
	"os"

	"github.com/ziti-bootstrap/ziti-bootstrap/app/command"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/agentlauncher"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
)

// WithAgentLauncher reads the settings, makes the engine's client and runs fn with the launcher.
func WithAgentLauncher(c *command.CLI, fn func(*agentlauncher.Launcher) error) error {
	s, err := agentlauncher.FromEnv(os.LookupEnv)
	if err != nil {
		return err
	}
	d, err := docker.New(s.DockerHost, nil)
	if err != nil {
		return &config.Error{Problems: []config.Problem{{Var: agentlauncher.EnvDockerHost, Msg: err.Error()}}}
	}
	defer d.Close()
	return fn(agentlauncher.New(d, s, c.Log))
}

// AgentLauncher keeps this node's SPIRE agent container running until ctx ends (internal/agentlauncher).
func AgentLauncher(ctx context.Context, c *command.CLI, l *agentlauncher.Launcher) error {
	s := l.Settings
	c.Log.Info("agent launcher starting", "container", s.Container, "image", s.Image, "network", s.Network,
		"namespace", s.Namespace, "files", s.FilesDir, "docker", s.DockerHost)
	if s.ToolsDir != "" {
		// The agent matters more than the routers' copy of the tool: a failure here is logged, not fatal.
		exe, err := os.Executable()
		var changed bool
		if err == nil {
			changed, err = agentlauncher.InstallTool(exe, s.ToolsDir)
		}
		switch {
		case err != nil:
			c.Log.Error("could not install ziti-bootstrap for the node's routers", "dir", s.ToolsDir, "err", err)
		case changed:
			c.Log.Info("installed ziti-bootstrap for the node's routers", "dir", s.ToolsDir)
		}
	}
	err := l.Serve(ctx)
	if err == nil || errors.Is(err, context.Canceled) {
		c.Log.Info("agent launcher stopped; the agent container keeps running", "container", s.Container)
		return nil
	}
	return err
}
