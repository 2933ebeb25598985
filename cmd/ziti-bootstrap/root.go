package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/ziti-bootstrap/ziti-bootstrap/app/command"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/liveview"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/redact"
)

// globals are the flags every command takes.
type globals struct {
	envFile  string
	output   string
	logLevel string
	set      []string
	stdout   io.Writer
	stderr   io.Writer
	log      *slog.Logger
	live     *liveview.View // the live view on a terminal (startLiveView); nil: logs only
}

// exitError carries a chosen exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }
func (e *exitError) ExitCode() int { return e.code }

// cli is the environment of a command (app/command) from the global flags and streams; its live view, once started,
// is g's (startLiveView).
func (g *globals) cli() *command.CLI {
	c := &command.CLI{EnvFile: g.envFile, Output: g.output, Set: g.set, Stdout: g.stdout, Stderr: g.stderr, Log: g.log, Live: g.live}
	c.StartLive = func(title string) func() {
		stop := startLiveView(g, title)
		c.Live, c.Log = g.live, g.log
		return stop
	}
	return c
}

func newRootCommand(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:           "ziti-bootstrap",
		Short:         "Bring up and converge an OpenZiti + SPIRE + Keycloak zero-trust network on Docker Swarm",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if g.output != "text" && g.output != "json" {
				return &exitError{exitcode.InvalidConfig, fmt.Errorf("--output %q: use text or json", g.output)}
			}
			var err error
			g.log, err = command.NewLogger(g.stderr, g.logLevel)
			return err
		},
	}
	f := root.PersistentFlags()
	f.StringVar(&g.envFile, "env-file", "", "read configuration variables from this .env file (see .env.example)")
	f.StringVarP(&g.output, "output", "o", "text", "output format: text or json")
	f.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.StringArrayVar(&g.set, "set", nil, "set a configuration variable, NAME=VALUE (repeatable; overrides env and --env-file)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{exitcode.InvalidConfig, err} })
	root.AddCommand(newPlanCommand(g), newApplyCommand(g), newStatusCommand(g), newVersionCommand(g),
		newUpCommand(g), newDownCommand(g), newBackupCommand(g), newRestoreCommand(g), newRenderCommand(g))
	root.AddCommand(newAgentLauncherCommand(g), newWorkloadCommand(g), newRouterEnrolServerCommand(g), newRouterEnrolCommand(g))
	root.AddCommand(newSocketProxyCommand(g))
	root.AddCommand(newConvergeCommand(g), newCASignerCommand(g))
	return root
}

// execute runs the CLI and returns the process exit code.
func execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	// no credentials of a URL in any output: configuration refuses them, this catches those from elsewhere
	stdout, stderr = redact.Writer(stdout), redact.Writer(stderr)
	g := &globals{stdout: stdout, stderr: stderr, log: slog.New(slog.DiscardHandler)}
	root := newRootCommand(g)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err != nil && !errors.Is(err, command.ErrPending) { // plan --detailed-exitcode: not an error
		fmt.Fprintln(stderr, "error:", err)
	}
	return command.ExitCode(args, err)
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool { return command.IsTerminal(w) }
