package testutil

import (
	"context"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

// ChangeStrings returns the changes as their plan lines.
func ChangeStrings(changes []steps.Change) []string {
	var out []string
	for _, c := range changes {
		out = append(out, c.String())
	}
	return out
}

// MustStatus fails the test at once unless r has status want.
func MustStatus(t testing.TB, r steps.Result, want steps.Status) {
	t.Helper()
	if r.Status != want {
		t.Fatalf("%s: status %s (error %q), want %s", r.Name, r.Status, r.Error, want)
	}
}

// StepResult logs and returns the result of the step called name in rep; the test fails at once when rep has
// none.
func StepResult(t testing.TB, rep *steps.Report, name string) steps.Result {
	t.Helper()
	for _, r := range rep.Steps {
		if r.Name != name {
			continue
		}
		t.Logf("%s %s: %s, %d mutating call(s), %d ms", rep.Mode, r.Name, r.Status, r.MutatingCalls, r.DurationMS)
		if r.Error != "" {
			t.Logf("  error: %s", r.Error)
		}
		for _, c := range r.Changes {
			t.Logf("  %s", c)
		}
		for _, n := range r.Notes {
			t.Logf("  note: %s", n)
		}
		return r
	}
	t.Fatalf("no %s result in %+v", name, rep)
	return steps.Result{}
}

// StandIn returns a step called name, depending on nothing, that plans no change and fails when probe does: it
// stands in for a step (such as a "reachable" step) that another step depends on.
func StandIn(name string, probe func(ctx context.Context) error) steps.Step {
	return standIn{name, probe}
}

type standIn struct {
	name  string
	probe func(ctx context.Context) error
}

func (s standIn) Name() string        { return s.name }
func (s standIn) DependsOn() []string { return nil }
func (s standIn) Plan(ctx context.Context) (*steps.Plan, error) {
	return steps.NewPlan(nil, nil), s.probe(ctx)
}

// AfterPlan returns step, which calls then once its plan is made, before the plan is applied: a test makes there
// what another writer (such as an earlier run's write still in flight) adds behind the plan's back.
func AfterPlan(step steps.Step, then func()) steps.Step { return afterPlan{step, then} }

type afterPlan struct {
	steps.Step
	then func()
}

func (a afterPlan) Plan(ctx context.Context) (*steps.Plan, error) {
	p, err := a.Step.Plan(ctx)
	if err == nil {
		a.then()
	}
	return p, err
}
