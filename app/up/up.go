// Package up is `ziti-bootstrap up`: deploy the stacks SPIRE → Keycloak → OpenZiti to Docker Swarm, each once the
// previous one is healthy, pin the controller's CA, run the bootstrap job, and, when a stateful server's image
// changes, upgrade it (snapshot, deploy, checks, rollback); or the same as a compose project (--compose).
package up

import (
	"context"
	"errors"
	"maps"
	"slices"

	"github.com/ziti-bootstrap/ziti-bootstrap/app"
	"github.com/ziti-bootstrap/ziti-bootstrap/app/capin"
	"github.com/ziti-bootstrap/ziti-bootstrap/app/command"
	"github.com/ziti-bootstrap/ziti-bootstrap/app/deploy"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/stack"
)

// Options are up's flags.
type Options struct {
	deploy.StackOptions
	Dev             deploy.DevOptions
	Compose         deploy.ComposeOptions
	Without         []string // services left out
	Rerun           bool     // run the bootstrap job again
	WithoutSnapshot bool     // upgrade a stateful server without a snapshot first
}

// Run is up.
func Run(ctx context.Context, c *command.CLI, opts *Options) error {
	o, dev, comp, without, rerun := &opts.StackOptions, &opts.Dev, &opts.Compose, slices.Clone(opts.Without), opts.Rerun
	if comp.Enabled {
		return Compose(ctx, c, o, dev, comp)
	}
	defer c.LiveView("up")() // from the start: on a terminal, the view replaces the info logs
	names, err := o.Selected()
	if err != nil {
		return err
	}
	var defaults map[string]string
	if dev.Enabled {
		if defaults, err = dev.Defaults(c); err != nil {
			return err
		}
	}
	sc, err := deploy.LoadStack(c, o, defaults)
	if err != nil {
		return err
	}
	if slices.Contains(without, stacks.BootstrapService) {
		without = append(without, stacks.BootstrapDockerService) // its Docker proxy serves nothing else
	}
	if sc.Vars["BACKUP_SCHEDULE"] == "" {
		without = append(without, stacks.BackupService, stacks.BackupDockerService)
	} else if err := deploy.CheckBackupService(c, sc, o.ExternalKeycloak); err != nil {
		return err
	}
	if u, local := deploy.LocalPublicURL(sc); local && !dev.Enabled && !o.ExternalKeycloak {
		c.Log.Warn("Keycloak's public URL is on this machine: its pages and the issuer of its tokens name it, so users on other machines cannot log in; set KEYCLOAK_PUBLIC_URL to the URL they reach", "KEYCLOAK_PUBLIC_URL", u)
	}
	// all stack files first: bad input fails before any call. SPIRE_NODE_CA, unless given, is read from the
	// Swarm once everything else is known to be right.
	load := func() ([]*stacks.Stack, error) {
		var loaded []*stacks.Stack
		var errs []error
		for _, n := range names {
			st, err := stacks.Load(ctx, n, stacks.Options{Names: stacks.DefaultNames(o.Prefix), Vars: sc.Vars, Without: without, ExternalKeycloak: o.ExternalKeycloak})
			if err == nil {
				err = deploy.AddJobFiles(st, sc.Vars)
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			loaded = append(loaded, st)
		}
		if err := errors.Join(errs...); err != nil {
			return nil, exitcode.With(exitcode.InvalidConfig, err)
		}
		return loaded, nil
	}
	facts := deploy.SwarmFacts{NodeCA: sc.Vars["SPIRE_NODE_CA"] == "", Datastore: sc.Vars["SPIRE_DATASTORE_SUFFIX"] == "" && slices.Contains(names, stacks.Spire)}
	if facts.NodeCA {
		sc.Vars["SPIRE_NODE_CA"] = "(read from the Swarm)"
	}
	loaded, err := load()
	if err != nil {
		return err
	}
	if facts.NodeCA || facts.Datastore {
		if err := facts.Read(ctx, c.Log, sc, stacks.DefaultNames(o.Prefix)[stacks.Spire]); err != nil {
			return err
		}
		if loaded, err = load(); err != nil {
			return err
		}
	}
	if err := deploy.Preflight(ctx, c, sc, loaded); err != nil {
		return err
	}
	controllerOnly, err := capin.ControllerOnlyStack(ctx, loaded, stacks.Options{Names: stacks.DefaultNames(o.Prefix), Vars: sc.Vars, Without: without, ExternalKeycloak: o.ExternalKeycloak})
	if err != nil {
		return err
	}
	var again []string
	if rerun {
		again = []string{stacks.BootstrapService}
	}
	mode := steps.Apply
	if o.DryRun {
		mode = steps.PlanOnly
	}
	deployOnce := func(ctx context.Context) error {
		if mode == steps.Apply {
			// a restore killed half-way left services scaled to 0: bring them back before the deploy, which
			// would overwrite the labels that say how
			if err := deploy.ResumeRestores(ctx, c, sc); err != nil {
				return err
			}
		}
		return c.Exec(ctx, mode, deploy.Steps(sc, o, again, func(cfg stack.Config) []steps.Step {
			cfg.AfterWrites = deploy.HandOverLock(c.Log)
			if c.Live != nil {
				cfg.Watch = c.Live.Stack
			}
			state := stack.NewStateNode(func() stack.NodeEngine { return deploy.StateEngine(cfg) }, config.StateLabel, app.DockerReachable)
			out := append([]steps.Step{state}, capin.Steps(cfg, capin.DockerEngine(cfg), controllerOnly, stack.StateNodeName, loaded...)...)
			for _, st := range loaded {
				if st.HasService(stacks.BootstrapService) && !o.DryRun {
					out = append(out, stack.NewJob(cfg, st, stacks.BootstrapService, loaded...))
				}
			}
			return out
		}))
	}
	// a stateful server's new image is an upgrade: snapshot, deploy, checks, rollback (upgrade.go)
	err = upOrUpgrade(ctx, c, sc, o, opts.WithoutSnapshot, loaded, func(ctx context.Context, vars map[string]string, rerunJob bool) error {
		if maps.Copy(sc.Vars, vars); rerunJob {
			again = []string{stacks.BootstrapService}
		}
		if vars != nil { // the rollback's previous versions
			if loaded, err = load(); err != nil {
				return err
			}
		}
		return deploy.UnderLock(ctx, c, sc, mode, deployOnce)
	})
	if err == nil && !o.DryRun && c.Output == "text" && slices.Contains(names, stacks.OpenZiti) {
		deploy.WriteSummary(c.Stdout, sc.Vars, sc.Docker.Host, deploy.SummaryStateDir(dev))
	}
	return err
}
