package main

import (
	"context"
	"errors"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ziti-bootstrap/ziti-bootstrap/app"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/policies"
)

// applyOptions are the apply command's flags.
type applyOptions struct {
	policies string // reconcile only this policy file
}

func newApplyCommand(g *globals) *cobra.Command {
	var o applyOptions
	cmd := &cobra.Command{
		Use:   "apply",
		Short: "Converge every system to the configuration; a converged system sees no writes",
		Long: `Converge every system to the configuration; a converged system sees no writes.

With --policies FILE only the OpenZiti policy file is reconciled (and the controller checked first): the quick
path to tighten a segment after a security event. Only the objects that differ are written.

Two applies never write at the same time: apply first takes the apply lock, a Swarm config named
ziti-bootstrap.lock (ZB_DOCKER=true; it holds across the Swarm's nodes) or a flock on ZB_LOCK_FILE (this host
only). While another run holds it, apply waits up to ZB_LOCK_WAIT, then exits with code 5 naming the holder
(ZB_LOCK_WAIT=0: at once). A lock left by a run that died expires after ZB_LOCK_TTL, or at once when that run
was on this host.

A dependency that goes away while a step uses it is waited for like at start (ZB_WAIT_TIMEOUT): when it comes
back the step is planned and applied again; when it does not, apply exits with code 3 naming it and its last
error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runApply(cmd.Context(), g, o) },
	}
	cmd.Flags().StringVar(&o.policies, "policies", "", "reconcile only this OpenZiti policy file (see examples/policies)")
	return cmd
}

// runApply loads the configuration, takes the apply lock, runs the steps under it, and releases it.
func runApply(ctx context.Context, g *globals, o applyOptions) error {
	var only func(string) bool
	if o.policies != "" {
		g.set = append(g.set, "POLICIES_FILE="+o.policies)
		only = func(name string) bool { return name == app.ZitiReachable || name == policies.Name }
	}
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	return withLock(ctx, g, cfg, func(ctx context.Context) error { return applySteps(ctx, g, cfg, only) })
}

// withLock runs fn while holding the tool's lock (app.WithLock) configured by --set and --env-file.
func withLock(ctx context.Context, g *globals, cfg *config.Config, fn func(ctx context.Context) error) error {
	lcfg, err := config.LoadLock(config.Sources{Flags: g.setFlags(), EnvFile: g.envFile})
	if err != nil {
		return err
	}
	return commandError(app.WithLock(ctx, g.log, cfg, lcfg, fn))
}

// commandError gives an error of the application layer that carries an exit code (*exitcode.Error) the
// commands' form (*exitError); other errors are returned as they are.
func commandError(err error) error {
	var ce *exitcode.Error
	if errors.As(err, &ce) {
		return &exitError{ce.Code, err}
	}
	return err
}

// setFlags returns the --set values (already validated by loadConfig) by name.
func (g *globals) setFlags() map[string]string {
	m := map[string]string{}
	for _, kv := range g.set {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// applySteps runs the steps (those only selects; all when nil) in Apply mode through execSteps, each guarded
// against dependencies that go away mid-run (app.GuardedSteps).
func applySteps(ctx context.Context, g *globals, cfg *config.Config, only func(string) bool) error {
	return execSteps(ctx, g, steps.Apply, applyBuilder(g, cfg, only))
}

// applyBuilder makes the steps of an apply: those only selects (all when nil), each guarded (app.GuardedSteps).
func applyBuilder(g *globals, cfg *config.Config, only func(string) bool) stepBuilder {
	return func(counter *calls.Counter, progress wait.Progress) ([]steps.Step, func(), error) {
		return app.GuardedSteps(cfg, counter, progress, g.log, func(all []steps.Step) []steps.Step { return selectSteps(all, only) })
	}
}
