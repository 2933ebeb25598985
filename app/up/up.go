// Package up is `ziti-bootstrap up`: deploy the stacks SPIRE → Keycloak → OpenZiti to Docker Swarm, each once the
// previous one is healthy, pin the controller's CA, run the bootstrap job, and, when a stateful server's image
// changes, upgrade it (snapshot, deploy, checks, rollback); or the same as a compose project (--compose).
package up

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"runtime/debug"
	"slices"

	"github.com/ziti-bootstrap/ziti-bootstrap/app"
	"github.com/ziti-bootstrap/ziti-bootstrap/app/capin"
	"github.com/ziti-bootstrap/ziti-bootstrap/app/command"
	"github.com/ziti-bootstrap/ziti-bootstrap/app/deploy"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/lock"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/preflight"
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

// Run is up: the configuration, the stacks loaded and checked (everything before the first write), then the
// deploy, as an upgrade when a stateful server's image changes.
func Run(ctx context.Context, c *command.CLI, opts *Options) error {
	if opts.Compose.Enabled {
		return Compose(ctx, c, &opts.StackOptions, &opts.Dev, &opts.Compose)
	}
	defer c.LiveView("up")() // from the start: on a terminal, the view replaces the info logs
	if os.Getenv("GOGC") == "" {
		// up is short and allocates most while it loads the stack files: collecting a fifth as often saves
		// about a fifth of a no-op run's CPU time, for about 15 MB more at the peak
		defer debug.SetGCPercent(debug.SetGCPercent(400))
	}
	r := &run{c: c, opts: opts, o: &opts.StackOptions, without: slices.Clone(opts.Without), parsed: stacks.NewParseCache()}
	if err := r.configure(); err != nil {
		return err
	}
	// preflight reads the engine while the stack files load (reads only; a bad file still fails before any write)
	pre, err := deploy.StartPreflight(ctx, r.sc, r.facts().NodeCA)
	if err != nil {
		return err
	}
	if err := r.loadStacks(ctx, pre); err != nil {
		pre.Stop()
		return err
	}
	if err := pre.Check(ctx, c, r.sc, r.loaded); err != nil {
		return err
	}
	r.seen = pre.Observed()
	err = r.deploy(ctx)
	if err == nil && !r.o.DryRun && c.Output == "text" && slices.Contains(r.names, stacks.OpenZiti) {
		deploy.WriteSummary(c.Stdout, r.sc.Vars, r.sc.Docker.Host, deploy.SummaryStateDir(&opts.Dev))
	}
	return err
}

// run is one up: what its steps (configure, loadStacks, deploy) find out and share.
type run struct {
	c       *command.CLI
	opts    *Options
	o       *deploy.StackOptions
	names   []string      // the stacks, in deployment order
	sc      *config.Stack // the configuration
	without []string      // services left out
	parsed  *stacks.ParseCache
	digests *deploy.DevDigests // --dev: the digits of secrets' names kept in the state directory
	loaded  []*stacks.Stack    // the stacks of names, loaded with sc.Vars
	seen    preflight.Observed // the engine's Swarm state and services as the preflight read them
	again   []string           // job services run again although unchanged
}

// configure reads the configuration (with --dev's defaults) and decides which services are left out.
func (r *run) configure() error {
	var err error
	if r.names, err = r.o.Selected(); err != nil {
		return err
	}
	var defaults map[string]string
	if r.opts.Dev.Enabled {
		if defaults, err = r.opts.Dev.Defaults(r.c); err != nil {
			return err
		}
		if r.digests, err = deploy.OpenDevDigests(r.opts.Dev.Dir(), defaults); err != nil {
			return exitcode.With(exitcode.InvalidConfig, err)
		}
		models, err := deploy.OpenDevModels(r.opts.Dev.Dir())
		if err != nil {
			return exitcode.With(exitcode.InvalidConfig, err)
		}
		r.parsed.KeepModels(models) // the stack files' parses start from those kept by the previous run
	}
	if r.sc, err = deploy.LoadStack(r.c, r.o, defaults); err != nil {
		return err
	}
	if slices.Contains(r.without, stacks.BootstrapService) {
		r.without = append(r.without, stacks.BootstrapDockerService) // its Docker proxy serves nothing else
	}
	if r.sc.Vars["BACKUP_SCHEDULE"] == "" {
		r.without = append(r.without, stacks.BackupService, stacks.BackupDockerService)
	} else if err := deploy.CheckBackupService(r.c, r.sc, r.o.ExternalKeycloak); err != nil {
		return err
	}
	if u, local := deploy.LocalPublicURL(r.sc); local && !r.opts.Dev.Enabled && !r.o.ExternalKeycloak {
		r.c.Log.Warn("Keycloak's public URL is on this machine: its pages and the issuer of its tokens name it, so users on other machines cannot log in; set KEYCLOAK_PUBLIC_URL to the URL they reach", "KEYCLOAK_PUBLIC_URL", u)
	}
	if r.opts.Rerun {
		r.again = []string{stacks.BootstrapService}
	}
	return nil
}

// loadStacks loads every stack file first, so that bad input fails before any call; then SPIRE_NODE_CA, unless
// given, and SPIRE_DATASTORE_SUFFIX are read from the Swarm (from what the preflight reads, and the Swarm's root
// CA), and the stacks loaded again with them (each file is parsed once: the second load only converts again).
func (r *run) loadStacks(ctx context.Context, pre *deploy.Preflight) error {
	facts := r.facts()
	if facts.NodeCA {
		r.sc.Vars["SPIRE_NODE_CA"] = "(read from the Swarm)"
	}
	defer r.saveDigests()
	if !facts.NodeCA && !facts.Datastore {
		return r.load(ctx)
	}
	// The Swarm is read while the files load (reads only; a bad file fails before any write, and stops the reads).
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		found deploy.FoundFacts
		ferr  error
		read  = make(chan struct{})
	)
	go func() {
		defer close(read)
		found, ferr = pre.Facts(fctx, facts, stacks.DefaultNames(r.o.Prefix)[stacks.Spire])
	}()
	if err := r.load(ctx); err != nil {
		cancel()
		<-read
		return err
	}
	pre.ReadImages(r.loaded) // what the Swarm tells changes no image
	if <-read; ferr != nil {
		return ferr
	}
	if err := found.Apply(r.c.Log, r.sc); err != nil {
		return err
	}
	return r.load(ctx)
}

// facts are what up reads from the Swarm before it loads the stacks again: the node CA unless SPIRE_NODE_CA is
// given, and the SPIRE datastore's suffix unless given.
func (r *run) facts() deploy.SwarmFacts {
	return deploy.SwarmFacts{NodeCA: r.sc.Vars["SPIRE_NODE_CA"] == "", Datastore: r.sc.Vars["SPIRE_DATASTORE_SUFFIX"] == "" && slices.Contains(r.names, stacks.Spire)}
}

// saveDigests keeps the digits of secrets' names computed by this run for the next (--dev); they are a cache:
// a failure costs the next run their computing, nothing else.
func (r *run) saveDigests() {
	if r.digests == nil {
		return
	}
	if err := r.digests.Save(); err != nil {
		r.c.Log.Warn("dev: the digits of the secrets' names are not kept for the next run", "err", err.Error())
	}
}

// stackOptions are the options every stack is loaded with.
func (r *run) stackOptions() stacks.Options {
	o := stacks.Options{Names: stacks.DefaultNames(r.o.Prefix), Vars: r.sc.Vars, Without: r.without, ExternalKeycloak: r.o.ExternalKeycloak, Parsed: r.parsed}
	if r.digests != nil {
		o.Digests = r.digests
	}
	return o
}

// load loads the stacks with the configuration as it is now, with the files the bootstrap job reads.
func (r *run) load(ctx context.Context) error {
	loaded, err := stacks.LoadStacks(ctx, r.names, r.stackOptions())
	errs := []error{err}
	for _, st := range loaded {
		errs = append(errs, deploy.AddJobFiles(st, r.sc.Vars), deploy.AddRealmSeed(st, r.sc.Vars))
	}
	if err := errors.Join(errs...); err != nil {
		return exitcode.With(exitcode.InvalidConfig, err)
	}
	r.loaded = loaded
	return nil
}

// mode is how the steps run: --dry-run only plans.
func (r *run) mode() steps.Mode {
	if r.o.DryRun {
		return steps.PlanOnly
	}
	return steps.Apply
}

// deploy deploys the stacks under the lock, as an upgrade (snapshot, deploy, checks, rollback: upgrade.go) when a
// stateful server's image changes.
func (r *run) deploy(ctx context.Context) error {
	controllerOnly, err := capin.ControllerOnlyStack(ctx, r.loaded, r.stackOptions())
	if err != nil {
		return err
	}
	return upOrUpgrade(ctx, r.c, r.sc, r.o, r.opts.WithoutSnapshot, r.loaded, r.seen, func(ctx context.Context, vars map[string]string, rerunJob bool) error {
		if maps.Copy(r.sc.Vars, vars); rerunJob {
			r.again = []string{stacks.BootstrapService}
		}
		if vars != nil { // the rollback's previous versions
			if err := r.load(ctx); err != nil {
				return err
			}
		}
		var seen *docker.SwarmInfo // docker/reachable reports the preflight's read, unless an upgrade came in between
		if vars == nil && !rerunJob {
			info := r.seen.Swarm()
			seen = &info
		}
		if vars == nil && !rerunJob && len(r.again) == 0 {
			if done, err := r.readOnly(ctx, controllerOnly, seen); done || err != nil {
				return err
			}
		}
		return deploy.UnderLock(ctx, r.c, r.sc, r.mode(), func(ctx context.Context) error { return r.deployOnce(ctx, controllerOnly, seen) })
	})
}

// readOnly runs the deploy as a read-only pass (deploy.ReadOnlyPass): on a converged system it finds nothing to
// change and makes no write, not even the lock's two. done reports that the pass stood; its report is then up's,
// err what the report says. A pass that does not stand (a write or a wait needed, or another run took the lock
// meanwhile) leaves nothing (no report, no logs); when its steps ran, the stacks are loaded again for the run under
// the lock: the steps gave them the controller's CA pin, which that run gives them again.
func (r *run) readOnly(ctx context.Context, controllerOnly *stacks.Stack, seen *docker.SwarmInfo) (done bool, err error) {
	held, replay := r.c.Held()
	var rep *steps.Report
	done = deploy.ReadOnlyPass(ctx, r.c, r.sc, r.mode(), func(ctx context.Context) string {
		if err := deploy.ResumeRestores(ctx, held, r.sc, stacks.DefaultNames(r.o.Prefix)); err != nil {
			return whyNot("a restore to resume", err)
		}
		var err error
		if rep, err = held.RunReport(ctx, steps.Apply, r.steps(held, controllerOnly, seen)); err != nil {
			return whyNot("the steps", err)
		}
		for _, s := range rep.Steps {
			if s.Status != steps.Unchanged {
				return whyNot(s.Name, s.Err())
			}
		}
		return ""
	})
	switch {
	case !done && rep == nil: // no step ran (the lock not free, a dry run, a restore to resume): nothing to undo
		return false, nil
	case !done:
		return false, r.load(ctx)
	}
	replay()
	return true, r.c.FinishReport(rep)
}

// whyNot says why a read-only pass does not stand, from what of it failed with err: it would write (the pass
// refused its first write), or did not find its state as wanted (a wait, cut to one check, an error).
func whyNot(what string, err error) string {
	if errors.Is(err, lock.ErrNeedsLock) {
		return what + " would write"
	}
	return fmt.Sprintf("%s would wait or failed (%v)", what, err)
}

// deployOnce runs the deploy steps once: the state node, the stacks in their order (the controller alone first
// on a new Swarm, its CA pinned), and the bootstrap job.
func (r *run) deployOnce(ctx context.Context, controllerOnly *stacks.Stack, seen *docker.SwarmInfo) error {
	if r.mode() == steps.Apply {
		// a restore killed half-way left services scaled to 0: bring them back before the deploy, which would
		// overwrite the labels that say how
		if err := deploy.ResumeRestores(ctx, r.c, r.sc, stacks.DefaultNames(r.o.Prefix)); err != nil {
			return err
		}
	}
	return r.c.Exec(ctx, r.mode(), r.steps(r.c, controllerOnly, seen))
}

// steps are the deploy steps, logged, and drawn in the live view, by c.
func (r *run) steps(c *command.CLI, controllerOnly *stacks.Stack, seen *docker.SwarmInfo) command.Builder {
	return deploy.Steps(r.sc, r.o, r.again, seen, func(cfg stack.Config) []steps.Step {
		cfg.AfterWrites = deploy.HandOverLock(c.Log)
		if c.Live != nil {
			cfg.Watch = c.Live.Stack
		}
		state := stack.NewStateNode(func() stack.NodeEngine { return deploy.StateEngine(cfg) }, config.StateLabel, app.DockerReachable)
		out := append([]steps.Step{state}, capin.Steps(cfg, capin.DockerEngine(cfg), controllerOnly, stack.StateNodeName, r.loaded...)...)
		for _, st := range r.loaded {
			if st.HasService(stacks.BootstrapService) && !r.o.DryRun {
				out = append(out, stack.NewJob(cfg, st, stacks.BootstrapService, r.loaded...))
			}
		}
		return out
	})
}
