package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/reach"
)

// GuardedSteps returns the steps of Steps that pick selects, each guarded against dependencies that go away
// mid-run (see Guard), and the function that closes their clients. progress is told about every failed wait.
func GuardedSteps(cfg *config.Config, counter *calls.Counter, progress wait.Progress, log *slog.Logger,
	pick func([]steps.Step) []steps.Step) ([]steps.Step, func(), error) {
	down := new(atomic.Int64) // failed attempts to reach a dependency, so far
	counting := func(what, where string, attempt int, elapsed time.Duration, err error) {
		down.Add(1)
		progress(what, where, attempt, elapsed, err)
	}
	sys, all, err := Steps(cfg, counter, counting)
	if err != nil {
		return nil, nil, err
	}
	return Guard(pick(all), down, log), sys.Close, nil
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

// Guard wraps every step of list but the reachable ones (see guarded). down counts the failed attempts to reach
// a dependency so far (the runs's wait.Progress adds to it); log tells about retries.
func Guard(list []steps.Step, down *atomic.Int64, log *slog.Logger) []steps.Step {
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

// wrap returns p, whose apply is retried (planned again, then applied) after a dependency came back. The plan
// then reports what was applied: the changes of the first plans that the next plan no longer holds (done
// before the failure), then the last plan's.
func (s *guarded) wrap(p *steps.Plan, attempt int) *steps.Plan {
	if p.Empty() {
		return p
	}
	var np *steps.Plan
	np = steps.NewPlan(p.Changes, func(ctx context.Context) error {
		pending := p.Changes
		var done []steps.Change
		err := p.Apply(ctx)
		for err != nil {
			retry, rerr := s.recheck(ctx, err, attempt)
			if !retry {
				np.SetApplied(append(done, pending...))
				return rerr
			}
			attempt++
			var again *steps.Plan
			if again, err = s.Step.Plan(ctx); err == nil {
				done = append(done, without(pending, again.Changes)...)
				pending = again.Changes
				np.SetApplied(append(slices.Clone(done), pending...))
				err = again.Apply(ctx)
			}
		}
		return nil
	})
	np.Notes = p.Notes
	return np
}

// without returns the changes of a that are not in b (same action, kind and key).
func without(a, b []steps.Change) []steps.Change {
	var out []steps.Change
	for _, c := range a {
		if !slices.ContainsFunc(b, func(d steps.Change) bool { return d.Action == c.Action && d.Kind == c.Kind && d.Key == c.Key }) {
			out = append(out, c)
		}
	}
	return out
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
