package steps

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

// ids is a fake API: it records calls and fails the names it is told to.
type ids struct {
	calls []string
	fail  map[string]bool
}

func (a *ids) create(name string) (string, error) {
	a.calls = append(a.calls, "create "+name)
	if a.fail[name] {
		return "", errors.New("refused")
	}
	return "id-" + name, nil
}

// An op that needs the id of an object created earlier in the plan gets it; when that create failed it fails
// without a call; a failure that stops the apply ends it.
func TestOpsPlanRefsAndStops(t *testing.T) {
	build := func() []Op[*ids] {
		parent := NewRef("parent p", "")
		existing := NewRef("object e", "id-e")
		return []Op[*ids]{
			{Change{Action: Create, Kind: "parent", Key: "p"}, func(_ context.Context, a *ids) error {
				id, err := a.create("p")
				parent.Set(id)
				return err
			}},
			{Change{Action: Create, Kind: "child", Key: "c"}, After(parent, func(_ context.Context, a *ids, pid string) error {
				_, err := a.create("c in " + pid)
				return err
			})},
			{Change{Action: Update, Kind: "other", Key: "e"}, After(existing, func(_ context.Context, a *ids, id string) error {
				a.calls = append(a.calls, "update "+id)
				return nil
			})},
		}
	}
	ctx := context.Background()

	a := &ids{}
	if err := OpsPlan(a, build(), nil).Apply(ctx); err != nil || !slices.Equal(a.calls, []string{"create p", "create c in id-p", "update id-e"}) {
		t.Fatalf("calls %q, err %v", a.calls, err)
	}

	a = &ids{fail: map[string]bool{"p": true}}
	err := OpsPlan(a, build(), nil).Apply(ctx)
	if err == nil || !strings.Contains(err.Error(), "create parent p: refused") || !strings.Contains(err.Error(), "create child c: parent p was not created") ||
		!slices.Equal(a.calls, []string{"create p", "update id-e"}) {
		t.Fatalf("calls %q, err %v", a.calls, err)
	}

	a = &ids{fail: map[string]bool{"p": true}}
	err = OpsPlan(a, build(), func(c Change) bool { return c.Kind == "parent" }).Apply(ctx)
	if err == nil || !slices.Equal(a.calls, []string{"create p"}) {
		t.Fatalf("stop: calls %q, err %v", a.calls, err)
	}
	if p := OpsPlan(a, build(), nil); len(p.Changes) != 3 || p.Changes[1].Key != "c" {
		t.Fatalf("changes %v", p.Changes)
	}
}
