package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/ziti-bootstrap/ziti-bootstrap/app"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/lock"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/reach"
)

func newApplyCommand(g *globals) *cobra.Command {
	var policies string
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
		RunE: func(cmd *cobra.Command, _ []string) error {
			var only func(string) bool
			if policies != "" {
				g.set = append(g.set, "POLICIES_FILE="+policies)
				only = func(name string) bool { return name == "ziti/reachable" || name == "ziti/policies" }
			}
			return runApply(cmd.Context(), g, only)
		},
	}
	cmd.Flags().StringVar(&policies, "policies", "", "reconcile only this OpenZiti policy file (see examples/policies)")
	return cmd
}

// runApply loads the configuration, takes the apply lock, runs the steps under it, and releases it.
func runApply(ctx context.Context, g *globals, only func(string) bool) error {
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	return withLock(ctx, g, cfg, func(ctx context.Context) error { return applySteps(ctx, g, cfg, only) })
}

// withLock runs fn while holding the tool's lock, the "apply lock" (see the apply command's help); fn must use
// the context it is given, which ends when the lock is lost. apply, up, down, backup and restore run under it,
// so that none of them writes, or copies, a state another is changing.
func withLock(ctx context.Context, g *globals, cfg *config.Config, fn func(ctx context.Context) error) error {
	lcfg, err := config.LoadLock(config.Sources{Flags: g.setFlags(), EnvFile: g.envFile})
	if err != nil {
		return err
	}
	lease, closeStore, err := takeLock(ctx, g, cfg, lcfg)
	if err != nil {
		return err
	}
	defer closeStore()
	runErr := fn(lease.Context())
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if err := lease.Release(rctx); err != nil && !errors.Is(err, lock.ErrLost) {
		g.log.Warn("could not release the lock; it expires by itself", "lock", lcfg.String(), "error", err.Error())
	}
	if lost := lease.Lost(); lost != nil {
		return &exitError{exitcode.Locked, lost}
	}
	return runErr
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

// takeLock takes the tool's lock (the apply lock, which apply, up, down, backup and restore share): in the Swarm
// when Docker is used, else in the local lock file. closeStore releases the store's connections once the lease
// is released.
func takeLock(ctx context.Context, g *globals, cfg *config.Config, lcfg config.Lock) (lease *lock.Lease, closeStore func(), err error) {
	var (
		store lock.Store
		what  string
	)
	closeStore = func() {}
	if cfg.Docker.Enabled {
		c, err := docker.New(cfg.Docker.Host, nil) // lock calls are not configuration: not counted
		if err != nil {
			return nil, nil, &config.Error{Problems: []config.Problem{{Var: "DOCKER_HOST", Msg: err.Error()}}}
		}
		closeStore = func() { c.Close() }
		store, what = lock.NewSwarm(c, lock.Name, cfg.Docker.Host), "Docker Engine (ziti-bootstrap lock)"
	} else {
		store, what = lock.NewFile(lcfg.File), "ziti-bootstrap lock file"
	}
	lastLog := time.Time{}
	lease, err = lock.Acquire(ctx, store, lock.Options{Wait: lcfg.Wait, TTL: lcfg.TTL, What: what,
		Waiting: func(h *lock.Holder, waited time.Duration, err error) {
			if lcfg.Wait == 0 || time.Since(lastLog) < 5*time.Second {
				return
			}
			lastLog = time.Now()
			if h != nil {
				g.log.Info("waiting for the lock", "lock", store.Where(), "holder", h.String(), "waited", waited.Round(time.Second).String(), "maxWait", lcfg.Wait.String())
			} else {
				g.log.Info("waiting for the lock", "lock", store.Where(), "waited", waited.Round(time.Second).String(), "lastError", err.Error())
			}
		}})
	if err != nil {
		closeStore()
		var held *lock.HeldError
		switch {
		case errors.As(err, &held):
			err = &exitError{exitcode.Locked, err}
		case errors.As(err, new(*wait.UnreachableError)):
			err = &exitError{exitcode.Unreachable, err}
		case errors.Is(err, docker.ErrNotManager):
			err = &config.Error{Problems: []config.Problem{{Var: "DOCKER_HOST", Msg: err.Error()}}}
		case !config.IsInvalid(err):
			err = &exitError{exitcode.Internal, fmt.Errorf("ziti-bootstrap lock: %w", err)}
		}
		return nil, nil, err
	}
	g.log.Debug("lock taken", "lock", store.Where(), "holder", lease.Holder().String())
	return lease, closeStore, nil
}

// applySteps runs the steps (those only selects; all when nil) in Apply mode through execSteps, each guarded
// against dependencies that go away mid-run (see guarded).
func applySteps(ctx context.Context, g *globals, cfg *config.Config, only func(string) bool) error {
	return execSteps(ctx, g, steps.Apply, func(counter *calls.Counter, progress wait.Progress) ([]steps.Step, func(), error) {
		down := new(atomic.Int64) // failed attempts to reach a dependency, so far
		counting := func(what, where string, attempt int, elapsed time.Duration, err error) {
			down.Add(1)
			progress(what, where, attempt, elapsed, err)
		}
		sys, all, err := app.Steps(cfg, counter, counting)
		if err != nil {
			return nil, nil, err
		}
		return guard(selectSteps(all, only), down, g.log), sys.Close, nil
	})
}

// maxAttempts bounds how often a guarded step is planned and applied in one run.
const maxAttempts = 3

// guarded is a step that, when it fails, asks the systems it depends on whether they are still there: it runs
// their reachable steps again, which wait for them up to ZB_WAIT_TIMEOUT. A dependency that stays away turns
// the failure into "unreachable" (exit code 3), naming it and its last error. A dependency that was away and
// came back gets the step planned and applied again (steps are idempotent: the new plan holds what is left to
// do). When every dependency answers at once, the failure is the step's own and stands.
type guarded struct {
	steps.Step
	deps []steps.Step // the reachable steps it depends on, directly or not
	down *atomic.Int64
	gone *goneDeps
	log  *slog.Logger
}

// goneDeps remembers the dependencies found unreachable during this run, so that the steps failing after them
// do not wait for them again.
type goneDeps struct {
	mu  sync.Mutex
	err map[string]*wait.UnreachableError
}

func (g *goneDeps) get(name string) *wait.UnreachableError {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err[name]
}

func (g *goneDeps) set(name string, err *wait.UnreachableError) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.err[name] = err
}

// guard wraps every step but the reachable ones.
func guard(list []steps.Step, down *atomic.Int64, log *slog.Logger) []steps.Step {
	byName := map[string]steps.Step{}
	for _, s := range list {
		byName[s.Name()] = s
	}
	gone := &goneDeps{err: map[string]*wait.UnreachableError{}}
	out := make([]steps.Step, len(list))
	for i, s := range list {
		if _, ok := s.(*reach.Step); ok {
			out[i] = s
			continue
		}
		g := &guarded{Step: s, down: down, gone: gone, log: log}
		seen := map[string]bool{}
		var visit func(steps.Step)
		visit = func(s steps.Step) {
			for _, d := range s.DependsOn() {
				dep, ok := byName[d]
				if !ok || seen[d] {
					continue
				}
				seen[d] = true
				if _, ok := dep.(*reach.Step); ok {
					g.deps = append(g.deps, dep)
				}
				visit(dep)
			}
		}
		visit(s)
		out[i] = g
	}
	return out
}

func (s *guarded) Plan(ctx context.Context) (*steps.Plan, error) {
	for attempt := 1; ; attempt++ {
		p, err := s.Step.Plan(ctx)
		if err == nil {
			return s.wrap(p, attempt), nil
		}
		if retry, err := s.recheck(ctx, err, attempt); !retry {
			return nil, err
		}
	}
}

// wrap returns p, whose apply is retried (planned again, then applied) after a dependency came back.
func (s *guarded) wrap(p *steps.Plan, attempt int) *steps.Plan {
	if p.Empty() {
		return p
	}
	np := steps.NewPlan(p.Changes, func(ctx context.Context) error {
		err := p.Apply(ctx)
		for err != nil {
			retry, rerr := s.recheck(ctx, err, attempt)
			if !retry {
				return rerr
			}
			attempt++
			var again *steps.Plan
			if again, err = s.Step.Plan(ctx); err == nil {
				err = again.Apply(ctx)
			}
		}
		return nil
	})
	np.Notes = p.Notes
	return np
}

// recheck decides what a failure of attempt means (see guarded): retry, or the error to report.
func (s *guarded) recheck(ctx context.Context, err error, attempt int) (bool, error) {
	if len(s.deps) == 0 || ctx.Err() != nil || config.IsInvalid(err) || errors.As(err, new(*wait.UnreachableError)) {
		return false, err
	}
	before := s.down.Load()
	for _, d := range s.deps {
		if ue := s.gone.get(d.Name()); ue != nil {
			return false, fmt.Errorf("%w; then %w", err, ue) // waited for it already in this run
		}
		if _, derr := d.Plan(ctx); derr != nil {
			var ue *wait.UnreachableError
			if errors.As(derr, &ue) {
				s.gone.set(d.Name(), ue)
				return false, fmt.Errorf("%w; then %w", err, ue)
			}
			return false, errors.Join(err, derr)
		}
	}
	if s.down.Load() == before || attempt >= maxAttempts {
		return false, err // every dependency answered at once: the failure is the step's own
	}
	s.log.Warn("a dependency went away and came back: planning the step again", "step", s.Name(), "attempt", attempt+1, "error", err.Error())
	return true, nil
}
