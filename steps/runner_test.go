package steps

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

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
	return NewPlan(ch, func(context.Context) error {
		for _, c := range ch {
			m.c.Write("mem", "put "+c.Key)
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
	for _, s := range rep.Steps {
		if s.Status != Unchanged {
			t.Errorf("%s: %s, want unchanged", s.Name, s.Status)
		}
	}
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
