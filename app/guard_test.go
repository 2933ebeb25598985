package app

import (
	"context"
	"errors"
	"log/slog"
	"slices"
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
	f := &flaky{fail: fail}
	return runGuarded(t, up, f), f
}

// runGuarded runs a reachable step "x/reachable" whose probe answers as up says, and s, guarded, in Apply mode.
func runGuarded(t *testing.T, up func() bool, s steps.Step) *steps.Report {
	t.Helper()
	var down atomic.Int64
	progress := func(string, string, int, time.Duration, error) { down.Add(1) }
	probe := func(context.Context) (string, error) {
		if up() {
			return "up", nil
		}
		return "", errors.New("connection refused")
	}
	list := Guard([]steps.Step{reach.New("x/reachable", "X server", "x:1", 600*time.Millisecond, progress, probe), s}, &down, slog.New(slog.DiscardHandler))
	rep, err := (&steps.Runner{Steps: list, Counter: calls.New()}).Run(context.Background(), steps.Apply)
	if err != nil {
		t.Fatal(err)
	}
	return rep
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

// half is a step whose first apply creates "a" half-way (like a signer created under its unfinished name) and
// fails before "b" as its dependency goes away; the plan made after the dependency came back finishes "a" and
// creates "b".
type half struct {
	live  map[string]string
	plans int
}

func (h *half) Name() string        { return "x/half" }
func (h *half) DependsOn() []string { return []string{"x/reachable"} }
func (h *half) Plan(context.Context) (*steps.Plan, error) {
	h.plans++
	var ch []steps.Change
	switch h.live["a"] {
	case "":
		ch = append(ch, steps.Change{Action: steps.Create, Kind: "thing", Key: "a"})
	case "half":
		ch = append(ch, steps.Change{Action: steps.Update, Kind: "thing", Key: "a", Reason: "finish"})
	}
	if h.live["b"] == "" {
		ch = append(ch, steps.Change{Action: steps.Create, Kind: "thing", Key: "b"})
	}
	first := h.plans == 1
	return steps.NewPlan(ch, func(context.Context) error {
		if first {
			h.live["a"] = "half"
			return errors.New("connection reset")
		}
		h.live["a"], h.live["b"] = "done", "done"
		return nil
	}), nil
}

// When a dependency comes back mid-apply and the step is planned again, the report lists exactly the changes
// applied: the first plan's create of a (done before the failure), then the second plan's finish of a and create
// of b. Before, it listed the first plan (create a, create b) and hid the update.
func TestGuardReportsTheChangesApplied(t *testing.T) {
	var probes atomic.Int64
	up := func() bool { return probes.Add(1) != 2 } // up, then down once (seen by the recheck), then up again
	h := &half{live: map[string]string{}}
	rep := runGuarded(t, up, h)
	if !rep.Converged() || h.plans != 2 {
		t.Fatalf("converged %v after %d plans: %v", rep.Converged(), h.plans, rep.Errors())
	}
	var got []string
	for _, c := range rep.Steps[1].Changes {
		got = append(got, c.String())
	}
	want := []string{"create thing a", "update thing a: finish", "create thing b"}
	if !slices.Equal(got, want) {
		t.Fatalf("report lists %q, applied %q", got, want)
	}
}
