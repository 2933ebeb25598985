package main

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/reach"
)

// flaky is a step that depends on "x/reachable" and fails while fail says so.
type flaky struct {
	plans, applies int
	fail           func(attempt int) error
}

func (f *flaky) Name() string        { return "x/thing" }
func (f *flaky) DependsOn() []string { return []string{"x/reachable"} }
func (f *flaky) Plan(context.Context) (*steps.Plan, error) {
	f.plans++
	attempt := f.plans
	return steps.NewPlan([]steps.Change{{Action: steps.Create, Kind: "thing", Key: "k"}}, func(context.Context) error {
		f.applies++
		return f.fail(attempt)
	}), nil
}

// guardedRun runs a reachable step whose probe answers as up says, and the flaky step, guarded.
func guardedRun(t *testing.T, up func() bool, fail func(attempt int) error) (*steps.Report, *flaky) {
	t.Helper()
	var down atomic.Int64
	progress := func(string, string, int, time.Duration, error) { down.Add(1) }
	probe := func(context.Context) (string, error) {
		if up() {
			return "up", nil
		}
		return "", errors.New("connection refused")
	}
	f := &flaky{fail: fail}
	list := guard([]steps.Step{reach.New("x/reachable", "X server", "x:1", 600*time.Millisecond, progress, probe), f}, &down, slog.New(slog.DiscardHandler))
	rep, err := (&steps.Runner{Steps: list, Counter: calls.New()}).Run(context.Background(), steps.Apply)
	if err != nil {
		t.Fatal(err)
	}
	return rep, f
}

func TestGuardRetriesWhenTheDependencyCameBack(t *testing.T) {
	var probes atomic.Int64
	up := func() bool { return probes.Add(1) != 2 } // up, then down once (seen by the recheck), then up again
	rep, f := guardedRun(t, up, func(attempt int) error {
		if attempt == 1 {
			return errors.New("connection reset")
		}
		return nil
	})
	if !rep.Converged() || f.plans != 2 || f.applies != 2 {
		t.Fatalf("converged %v after %d plans, %d applies: %v", rep.Converged(), f.plans, f.applies, rep.Errors())
	}
}

func TestGuardReportsADependencyThatStaysAway(t *testing.T) {
	var probes atomic.Int64
	up := func() bool { return probes.Add(1) == 1 } // up at start, then gone
	rep, f := guardedRun(t, up, func(int) error { return errors.New("connection refused") })
	errs := rep.Errors()
	if exitcode.For(errs...) != exitcode.Unreachable || f.plans != 1 {
		t.Fatalf("exit %d after %d plans: %v", exitcode.For(errs...), f.plans, errs)
	}
	if msg := errs[0].Error(); !strings.Contains(msg, "connection refused; then X server at x:1 unreachable after") {
		t.Fatalf("error %q does not name the dependency after the step's own error", msg)
	}
}

func TestGuardLeavesAStepsOwnFailure(t *testing.T) {
	rep, f := guardedRun(t, func() bool { return true }, func(int) error { return errors.New("400 bad request") })
	if exitcode.For(rep.Errors()...) != exitcode.StepFailed || f.plans != 1 {
		t.Fatalf("exit %d after %d plans: %v", exitcode.For(rep.Errors()...), f.plans, rep.Errors())
	}
}
