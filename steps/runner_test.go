package steps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
)

// memStep converges a map in memory: it plans a create for each missing key and counts one write per change.
type memStep struct {
	name string
	deps []string
	want []string
	have map[string]bool
	c    *calls.Counter
	fail error
}

func (m *memStep) Name() string        { return m.name }
func (m *memStep) DependsOn() []string { return m.deps }
func (m *memStep) Plan(context.Context) (*Plan, error) {
	if m.fail != nil {
		return nil, m.fail
	}
	var ch []Change
	for _, k := range m.want {
		if !m.have[k] {
			ch = append(ch, Change{Action: Create, Kind: "key", Key: k, Reason: "missing"})
		}
	}
	return NewPlan(ch, func(ctx context.Context) error {
		for _, c := range ch {
			m.c.WriteCtx(ctx, "mem", "put "+c.Key)
			m.have[c.Key] = true
		}
		return nil
	}), nil
}

func TestApplyTwiceSecondRunWritesNothing(t *testing.T) {
	c := calls.New()
	a := &memStep{name: "a", want: []string{"x", "y"}, have: map[string]bool{}, c: c}
	b := &memStep{name: "b", deps: []string{"a"}, want: []string{"z"}, have: map[string]bool{}, c: c}
	rep, err := (&Runner{Steps: []Step{b, a}, Counter: c}).Run(context.Background(), Apply)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Steps[0].Name != "a" || rep.MutatingCalls != 3 || rep.Steps[0].Status != Changed {
		t.Fatalf("first run: %+v", rep)
	}
	c2 := calls.New()
	a.c, b.c = c2, c2
	rep, _ = (&Runner{Steps: []Step{a, b}, Counter: c2}).Run(context.Background(), Apply)
	if rep.MutatingCalls != 0 || !rep.Converged() {
		t.Fatalf("second run: %+v", rep)
	}
	everyStatus(t, rep, Unchanged)
}

func TestPlanWritesNothing(t *testing.T) {
	c := calls.New()
	a := &memStep{name: "a", want: []string{"x"}, have: map[string]bool{}, c: c}
	rep, _ := (&Runner{Steps: []Step{a}, Counter: c}).Run(context.Background(), PlanOnly)
	if rep.Steps[0].Status != Planned || len(rep.Steps[0].Changes) != 1 || len(a.have) != 0 || rep.MutatingCalls != 0 {
		t.Fatalf("plan: %+v have=%v", rep, a.have)
	}
}

func TestFailedStepSkipsDependents(t *testing.T) {
	c := calls.New()
	boom := errors.New("boom")
	a := &memStep{name: "a", fail: boom, have: map[string]bool{}, c: c}
	b := &memStep{name: "b", deps: []string{"a"}, have: map[string]bool{}, c: c}
	d := &memStep{name: "d", deps: []string{"b"}, have: map[string]bool{}, c: c}
	e := &memStep{name: "e", have: map[string]bool{}, c: c}
	rep, _ := (&Runner{Steps: []Step{a, b, d, e}, Counter: c}).Run(context.Background(), Apply)
	got := map[string]Status{}
	for _, s := range rep.Steps {
		got[s.Name] = s.Status
	}
	if got["a"] != Failed || got["b"] != Skipped || got["d"] != Skipped || got["e"] != Unchanged {
		t.Fatalf("statuses %v", got)
	}
	if !errors.Is(rep.Steps[0].Err(), boom) || !strings.Contains(rep.Steps[1].Error, "because a failed") {
		t.Fatalf("errors: %v / %s", rep.Steps[0].Err(), rep.Steps[1].Error)
	}
	if rep.Converged() {
		t.Fatal("a failed run is not converged")
	}
}

func TestOrderRejectsCyclesAndUnknown(t *testing.T) {
	a := &memStep{name: "a", deps: []string{"b"}}
	b := &memStep{name: "b", deps: []string{"a"}}
	if _, err := Order([]Step{a, b}); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Fatalf("cycle: %v", err)
	}
	if _, err := Order([]Step{&memStep{name: "a", deps: []string{"nope"}}}); err == nil {
		t.Fatal("unknown dependency accepted")
	}
}

// An update carries its fields with their values before and after, in the JSON of plan -o json; secrets are
// redacted and the field names stay in "fields".
func TestChangeJSONHasFieldLevelBeforeAfter(t *testing.T) {
	var d Diff
	d.Add(true, "issuer", "http://old", "http://new")
	d.Add(false, "audience", "a", "a")
	d.AddSecret(true, "secret")
	c := Change{Action: Update, Kind: "k", Key: "x", Reason: "differs"}.WithDiff(d)
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"action":"update","kind":"k","key":"x","reason":"differs","fields":["issuer","secret"],` +
		`"diff":[{"field":"issuer","before":"http://old","after":"http://new"},{"field":"secret","before":"**redacted**","after":"**redacted**"}]}`
	if string(js) != want {
		t.Fatalf("JSON\n%s\nwant\n%s", js, want)
	}
	if s := c.String(); s != "update k x (fields: [issuer secret]): differs" {
		t.Errorf("String %q", s)
	}
	if js, _ := json.Marshal(Change{Action: Create, Kind: "k", Key: "y"}.WithDiff(nil)); string(js) != `{"action":"create","kind":"k","key":"y"}` {
		t.Errorf("create JSON %s", js)
	}
}

// funcStep plans with fn.
type funcStep struct {
	name string
	deps []string
	fn   func(ctx context.Context) (*Plan, error)
}

func (f *funcStep) Name() string                            { return f.name }
func (f *funcStep) DependsOn() []string                     { return f.deps }
func (f *funcStep) Plan(ctx context.Context) (*Plan, error) { return f.fn(ctx) }

// await waits for ch, failing the step (not hanging the test) if it never comes: the runner did not run the
// steps at once.
func await(ctx context.Context, ch <-chan struct{}, what string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s never happened", what)
	}
}

// Two steps that depend on nothing run at once: each waits, inside its plan, until the other has started, which
// a runner that ran them one after the other would never allow. Each counts its own writes, made while the other
// runs, and the report lists them in plan order although the second ended first.
func TestIndependentStepsRunAtOnce(t *testing.T) {
	c := calls.New()
	aStarted, bStarted, bEnded := make(chan struct{}), make(chan struct{}), make(chan struct{})
	a := &funcStep{name: "a", fn: func(ctx context.Context) (*Plan, error) {
		close(aStarted)
		if err := await(ctx, bStarted, "b started while a ran"); err != nil {
			return nil, err
		}
		return NewPlan([]Change{{Action: Create, Kind: "k", Key: "a"}}, func(ctx context.Context) error {
			c.WriteCtx(ctx, "mem", "put a")
			return await(ctx, bEnded, "b ended while a applied")
		}), nil
	}}
	b := &funcStep{name: "b", fn: func(ctx context.Context) (*Plan, error) {
		close(bStarted)
		if err := await(ctx, aStarted, "a started while b ran"); err != nil {
			return nil, err
		}
		return NewPlan([]Change{{Action: Create, Kind: "k", Key: "b1"}, {Action: Create, Kind: "k", Key: "b2"}}, func(ctx context.Context) error {
			c.WriteCtx(ctx, "mem", "put b1")
			c.WriteCtx(ctx, "mem", "put b2")
			return nil
		}), nil
	}}
	var ends []string
	rep, err := (&Runner{Steps: []Step{a, b}, Counter: c, Observer: func(e Event) {
		if e.Result != nil {
			ends = append(ends, e.Step)
			if e.Step == "b" {
				close(bEnded)
			}
		}
	}}).Run(context.Background(), Apply)
	if err != nil {
		t.Fatal(err)
	}
	everyStatus(t, rep, Changed)
	if got := []string{rep.Steps[0].Name, rep.Steps[1].Name}; !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("report order %v, want plan order [a b]", got)
	}
	if !slices.Equal(ends, []string{"b", "a"}) {
		t.Errorf("ended %v, want b before a", ends)
	}
	if rep.Steps[0].MutatingCalls != 1 || rep.Steps[1].MutatingCalls != 2 || rep.MutatingCalls != 3 {
		t.Errorf("writes a=%d b=%d total=%d, want 1, 2, 3", rep.Steps[0].MutatingCalls, rep.Steps[1].MutatingCalls, rep.MutatingCalls)
	}
}

// A step starts only once every step it depends on has ended, even while an independent step keeps running:
// c depends on a, and b (independent) runs until c has ended.
func TestDependantWaitsForItsDependencies(t *testing.T) {
	var aEnded atomic.Bool
	release, cEnded := make(chan struct{}), make(chan struct{})
	a := &funcStep{name: "a", fn: func(ctx context.Context) (*Plan, error) {
		if err := await(ctx, release, "release of a"); err != nil {
			return nil, err
		}
		aEnded.Store(true)
		return NewPlan(nil, nil), nil
	}}
	b := &funcStep{name: "b", fn: func(ctx context.Context) (*Plan, error) {
		close(release) // a may end now; b itself ends only after c
		return NewPlan(nil, nil), await(ctx, cEnded, "c ended while b ran")
	}}
	c := &funcStep{name: "c", deps: []string{"a"}, fn: func(context.Context) (*Plan, error) {
		if !aEnded.Load() {
			return nil, errors.New("c started before a ended")
		}
		return NewPlan(nil, nil), nil
	}}
	rep, err := (&Runner{Steps: []Step{a, b, c}, Counter: calls.New(), Observer: func(e Event) {
		if e.Result != nil && e.Step == "c" {
			close(cEnded)
		}
	}}).Run(context.Background(), PlanOnly)
	if err != nil {
		t.Fatal(err)
	}
	everyStatus(t, rep, Unchanged)
}

// everyStatus checks that every step of rep ended with want.
func everyStatus(t *testing.T, rep *Report, want Status) {
	t.Helper()
	for _, s := range rep.Steps {
		if s.Status != want {
			t.Errorf("%s: %s %s, want %s", s.Name, s.Status, s.Error, want)
		}
	}
}

// A step that waits for two dependencies is skipped, naming the one that failed, while the steps that do not
// depend on the failure still run to their end.
func TestFailureSkipsOnlyItsDependantsWhileOthersRun(t *testing.T) {
	boom := errors.New("boom")
	ok := func(name string, deps ...string) *funcStep {
		return &funcStep{name: name, deps: deps, fn: func(context.Context) (*Plan, error) { return NewPlan(nil, nil), nil }}
	}
	bad := &funcStep{name: "bad", fn: func(context.Context) (*Plan, error) { return nil, boom }}
	rep, err := (&Runner{Steps: []Step{ok("x"), bad, ok("both", "x", "bad"), ok("after-x", "x"), ok("last", "both")}, Counter: calls.New()}).Run(context.Background(), Apply)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range rep.Steps {
		got = append(got, s.Name+":"+string(s.Status))
	}
	if want := []string{"x:unchanged", "bad:failed", "both:skipped", "after-x:unchanged", "last:skipped"}; !slices.Equal(got, want) {
		t.Fatalf("steps %v, want %v", got, want)
	}
	if !strings.Contains(rep.Steps[2].Error, "because bad failed") || !strings.Contains(rep.Steps[4].Error, "because both failed") {
		t.Errorf("skip errors: %q, %q", rep.Steps[2].Error, rep.Steps[4].Error)
	}
}

// A step that writes while planning fails in plan mode, counted in its own tally, while another runs at once.
func TestPlanModeCatchesAWriteOfItsStepOnly(t *testing.T) {
	c := calls.New()
	wStarted, quietEnded := make(chan struct{}), make(chan struct{})
	writer := &funcStep{name: "writer", fn: func(ctx context.Context) (*Plan, error) {
		close(wStarted)
		c.WriteCtx(ctx, "mem", "put x")
		return NewPlan(nil, nil), await(ctx, quietEnded, "quiet ended")
	}}
	quiet := &funcStep{name: "quiet", fn: func(ctx context.Context) (*Plan, error) {
		return NewPlan(nil, nil), await(ctx, wStarted, "writer started")
	}}
	rep, _ := (&Runner{Steps: []Step{writer, quiet}, Counter: c, Observer: func(e Event) {
		if e.Result != nil && e.Step == "quiet" {
			close(quietEnded)
		}
	}}).Run(context.Background(), PlanOnly)
	if rep.Steps[0].Status != Failed || !strings.Contains(rep.Steps[0].Error, "wrote while planning") || rep.Steps[1].Status != Unchanged {
		t.Fatalf("writer %s (%s), quiet %s (%s)", rep.Steps[0].Status, rep.Steps[0].Error, rep.Steps[1].Status, rep.Steps[1].Error)
	}
}
