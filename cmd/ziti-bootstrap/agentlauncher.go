package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/ziti-bootstrap/ziti-bootstrap/app/services"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/agentlauncher"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
)

// healthcheckTimeout bounds `agent-launcher healthcheck` (it reads the files and makes two reads of the engine).
const healthcheckTimeout = 20 * time.Second

func newAgentLauncherCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agent-launcher",
		Short: "Keep this node's SPIRE agent running as a container with the host PID namespace (run as a global service)",
		Long:  agentlauncher.Help,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := g.cli()
			return services.WithAgentLauncher(c, func(l *agentlauncher.Launcher) error { return services.AgentLauncher(cmd.Context(), c, l) })
		},
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 only when this node's agent container runs the current spec and is healthy; else say why",
		Long: `The launcher service's Docker healthcheck. Exit 0 when the agent container exists, runs the current spec and
Docker reports it healthy; otherwise exit 1 with one line that says why (2: invalid settings).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return services.WithAgentLauncher(g.cli(), func(l *agentlauncher.Launcher) error {
				ctx, cancel := context.WithTimeout(cmd.Context(), healthcheckTimeout)
				defer cancel()
				if err := l.Check(ctx); err != nil {
					return exitcode.With(exitcode.Internal, err) // Docker counts any non-zero exit as a failed probe
				}
				_, err := fmt.Fprintf(g.stdout, "agent container %s: healthy, current spec\n", l.Settings.Container)
				return err
			})
		},
	})
	return cmd
}
