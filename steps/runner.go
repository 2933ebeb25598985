package steps

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
)

// Mode is what the runner does with each plan.
type Mode int

const (
	// PlanOnly computes plans and writes nothing.
	PlanOnly Mode = iota
	// Apply computes each plan and carries it out.
	Apply
)

// Status of one step after a run.
type Status string

const (
	Unchanged Status = "unchanged" // plan was empty
	Planned   Status = "planned"   // PlanOnly: changes would be made
	Changed   Status = "changed"   // Apply: changes were made
	Failed    Status = "failed"
	Skipped   Status = "skipped" // a dependency failed
)

type modeKey struct{}

// ModeOf is the mode of the run a step's Plan was called in (Apply outside a runner): a step whose dependants
// wait for its writes knows from it that in PlanOnly there will be none.
func ModeOf(ctx context.Context) Mode {
	if m, ok := ctx.Value(modeKey{}).(Mode); ok {
		return m
	}
	return Apply
}

// Result is the outcome of one step.
type Result struct {
	Name          string        `json:"name"`
	Status        Status        `json:"status"`
	Changes       []Change      `json:"changes,omitempty"`
	Notes         []string      `json:"notes,omitempty"`
	Error         string        `json:"error,omitempty"`
	Duration      time.Duration `json:"-"`
	DurationMS    int64         `json:"durationMs"`
	MutatingCalls int64         `json:"mutatingCalls"`
	err           error
}

// Err is the step's error, for classification with errors.As.
func (r Result) Err() error { return r.err }

// Report is the outcome of a run.
type Report struct {
	Mode          string           `json:"mode"`
	Steps         []Result         `json:"steps"`
	MutatingCalls int64            `json:"mutatingCalls"`
	CallsBySystem map[string]int64 `json:"mutatingCallsBySystem"`
	Writes        []string         `json:"writes,omitempty"`
	DurationMS    int64            `json:"durationMs"`
}

// Converged reports whether every step succeeded and nothing is left to change.
func (r *Report) Converged() bool {
	for _, s := range r.Steps {
		if s.Status != Unchanged && s.Status != Changed {
			return false
		}
	}
	return true
}

// Errors returns the errors of failed steps.
func (r *Report) Errors() []error {
	var out []error
	for _, s := range r.Steps {
		if s.err != nil {
			out = append(out, s.err)
		}
	}
	return out
}

// Event is sent to Observer as steps start and end.
type Event struct {
	Step   string
	Start  bool
	Result *Result // set when the step ended
}

// Runner runs steps in dependency order, those that do not depend on each other at once.
type Runner struct {
	Steps    []Step
	Counter  *calls.Counter // the counter every client of this run reports to
	Observer func(Event)    // optional
}

// Order returns the steps sorted so that each comes after its dependencies, keeping the declared order
// otherwise. Unknown dependencies and cycles are errors.
func Order(steps []Step) ([]Step, error) {
	byName := map[string]Step{}
	for _, s := range steps {
		if _, dup := byName[s.Name()]; dup {
			return nil, fmt.Errorf("step %q declared twice", s.Name())
		}
		byName[s.Name()] = s
	}
	const (
		unvisited = iota
		visiting
		done
	)
	state := map[string]int{}
	var out []Step
	var visit func(s Step, path []string) error
	visit = func(s Step, path []string) error {
		switch state[s.Name()] {
		case done:
			return nil
		case visiting:
			return fmt.Errorf("dependency cycle: %v", append(path, s.Name()))
		}
		state[s.Name()] = visiting
		for _, d := range s.DependsOn() {
			dep, ok := byName[d]
			if !ok {
				return fmt.Errorf("step %q depends on unknown step %q", s.Name(), d)
			}
			if err := visit(dep, append(path, s.Name())); err != nil {
				return err
			}
		}
		state[s.Name()] = done
		out = append(out, s)
		return nil
	}
	for _, s := range steps {
		if err := visit(s, nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Run plans (and in Apply mode applies) every step. A step starts as soon as every step it depends on has
// ended, so steps that do not depend on each other run at once; a step whose dependency failed or was skipped
// is skipped. The report lists the steps in plan order (Order), whatever order they ended in. Each step's
// writes are counted in its own tally (calls.WithTally): steps running at once do not count each other's.
// Observer is called from one goroutine at a time.
func (r *Runner) Run(ctx context.Context, mode Mode) (*Report, error) {
	ordered, err := Order(r.Steps)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	rep := &Report{Mode: map[Mode]string{PlanOnly: "plan", Apply: "apply"}[mode]}
	results := make([]Result, len(ordered))
	index := make(map[string]int, len(ordered))
	done := make([]chan struct{}, len(ordered))
	for i, s := range ordered {
		index[s.Name()], done[i] = i, make(chan struct{})
	}
	var observerMu sync.Mutex
	observe := func(e Event) {
		if r.Observer != nil {
			observerMu.Lock()
			defer observerMu.Unlock()
			r.Observer(e)
		}
	}
	var wg sync.WaitGroup
	for i, s := range ordered {
		wg.Go(func() {
			defer close(done[i])
			failed := ""
			for _, d := range s.DependsOn() {
				<-done[index[d]] // Order checked that every dependency exists and that there is no cycle
				if st := results[index[d]].Status; (st == Failed || st == Skipped) && failed == "" {
					failed = d
				}
			}
			results[i] = r.runOne(ctx, s, mode, failed, observe)
			observe(Event{Step: s.Name(), Result: &results[i]})
		})
	}
	wg.Wait()
	rep.Steps = results
	rep.MutatingCalls = r.Counter.Writes()
	rep.CallsBySystem, rep.Writes = r.Counter.Snapshot()
	rep.DurationMS = time.Since(start).Milliseconds()
	return rep, nil
}

// runOne runs step s, or skips it when failedDep (a dependency that failed or was skipped) is not "".
func (r *Runner) runOne(ctx context.Context, s Step, mode Mode, failedDep string, observe func(Event)) (res Result) {
	res.Name = s.Name()
	if failedDep != "" {
		res.Status = Skipped
		res.err = &SkippedError{Step: s.Name(), Dependency: failedDep}
		res.Error = res.err.Error()
		return res
	}
	observe(Event{Step: s.Name(), Start: true})
	ctx, writes := calls.WithTally(context.WithValue(ctx, modeKey{}, mode))
	t0 := time.Now()
	defer func() {
		res.Duration = time.Since(t0)
		res.DurationMS = res.Duration.Milliseconds()
		res.MutatingCalls = writes.Load()
	}()
	plan, err := s.Plan(ctx)
	if err == nil && mode == PlanOnly && writes.Load() != 0 {
		err = fmt.Errorf("step %s wrote while planning: a bug, please report it", s.Name())
	}
	if err != nil {
		return res.fail(fmt.Errorf("%s: plan: %w", s.Name(), err))
	}
	res.Changes, res.Notes = plan.Changes, plan.Notes
	switch {
	case plan.Empty():
		res.Status = Unchanged
	case mode == PlanOnly:
		res.Status = Planned
	default:
		err := plan.Apply(ctx)
		res.Changes = plan.Applied()
		if err != nil {
			return res.fail(fmt.Errorf("%s: apply: %w", s.Name(), err))
		}
		res.Status = Changed
	}
	return res
}

func (res Result) fail(err error) Result {
	res.Status, res.err, res.Error = Failed, err, err.Error()
	return res
}

// SkippedError says a step did not run because a dependency failed.
type SkippedError struct{ Step, Dependency string }

func (e *SkippedError) Error() string {
	return fmt.Sprintf("%s: skipped because %s failed", e.Step, e.Dependency)
}

// IsSkipped reports whether err is a SkippedError.
func IsSkipped(err error) bool {
	var s *SkippedError
	return errors.As(err, &s)
}
