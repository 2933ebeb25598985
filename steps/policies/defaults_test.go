package policies

import (
	"strings"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
)

// The built-in default policies parse, and off means an empty policy (what the step made is deleted).
func TestRouterDefaults(t *testing.T) {
	s, err := RouterDefaults(&fakeAPI{}, true)
	if err != nil {
		t.Fatal(err)
	}
	p := s.Policy()
	if s.Name() != RouterDefaultsName || len(p.EdgeRouterPolicies) != 1 || p.EdgeRouterPolicies[0].Name != DefaultEdgeRouterPolicy ||
		len(p.ServiceEdgeRouterPolicies) != 1 || p.ServiceEdgeRouterPolicies[0].Name != DefaultServiceEdgeRouterPolicy {
		t.Fatalf("%s: %+v", s.Name(), p)
	}
	off, err := RouterDefaults(&fakeAPI{}, false)
	if err != nil || len(off.Policy().EdgeRouterPolicies)+len(off.Policy().ServiceEdgeRouterPolicies) != 0 {
		t.Fatalf("off: %+v, %v", off.Policy(), err)
	}
}

// On a controller without them the defaults are created; one made elsewhere under the same name (OpenZiti's
// quickstart makes both) is left as it is, with a note; one of this owner that differs is updated.
func TestRouterDefaultsReconcile(t *testing.T) {
	s, err := RouterDefaults(&fakeAPI{}, true)
	if err != nil {
		t.Fatal(err)
	}
	plan := func(obs *observed) ([]string, []string) {
		t.Helper()
		pol, notes := leaveForeignRouterPolicies(s.Policy(), RouterDefaultsOwner, obs)
		r, err := reconcile(pol, RouterDefaultsOwner, obs)
		if err != nil {
			t.Fatal(err)
		}
		return changeStrings(r), notes
	}
	if got, notes := plan(baseObserved()); len(got) != 2 || !strings.HasPrefix(got[0], "create") || !strings.HasPrefix(got[1], "create") || len(notes) != 0 {
		t.Errorf("empty controller: %v %v; want both created", got, notes)
	}
	obs := baseObserved()
	obs.erps = []ziti.EdgeRouterPolicy{{ID: "e1", Name: DefaultEdgeRouterPolicy, Semantic: "AnyOf", IdentityRoles: []string{"#all"}, EdgeRouterRoles: []string{"#public"}}}
	obs.serps = []ziti.ServiceEdgeRouterPolicy{{ID: "s1", Name: DefaultServiceEdgeRouterPolicy, Semantic: "AnyOf", ServiceRoles: []string{"#all"},
		EdgeRouterRoles: []string{"#public"}, Tags: map[string]any{OwnerTag: RouterDefaultsOwner}}}
	got, notes := plan(obs)
	if len(got) != 1 || !strings.HasPrefix(got[0], "update ziti-service-edge-router-policy "+DefaultServiceEdgeRouterPolicy) ||
		len(notes) != 1 || !strings.Contains(notes[0], DefaultEdgeRouterPolicy+" exists, made elsewhere") {
		t.Errorf("quickstart's ERP and our SERP changed by hand: %v %v; want the ERP left with a note, the SERP updated", got, notes)
	}
}
