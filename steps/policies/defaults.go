package policies

import (
	_ "embed"
	"fmt"
	"slices"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/policyfile"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
)

// RouterDefaultsName is the name of the step that keeps OpenZiti's default router policies (RouterDefaults), and
// RouterDefaultsOwner the owner tag of what it makes: independent of a policy file (owner DefaultOwner), so a
// file never removes them, nor they a file's objects.
const (
	RouterDefaultsName  = "ziti/router-policies"
	RouterDefaultsOwner = "router-defaults"
)

// The default policies, as OpenZiti's quickstart makes them: every identity may use the routers with the role
// attribute "public" (ziti-bootstrap's routers have it), and every service may be reached through every router.
const (
	DefaultEdgeRouterPolicy        = "all-endpoints-public-routers"
	DefaultServiceEdgeRouterPolicy = "all-routers-all-services"
)

//go:embed router-defaults.yaml
var routerDefaults []byte

// RouterDefaults returns the step that converges the default router policies (on, the default: they exist;
// off: those it made are deleted). A policy file that wants other router policies turns it off
// (ZITI_DEFAULT_ROUTER_POLICIES=false) and declares its own.
func RouterDefaults(api API, on bool) (*Step, error) {
	pol := &policyfile.Policy{}
	if on {
		var err error
		if pol, err = policyfile.Parse("router-defaults.yaml (built in)", routerDefaults); err != nil {
			return nil, fmt.Errorf("%s: the built-in default policies: %w", RouterDefaultsName, err) // a bug
		}
	}
	return New(api, Config{Policy: pol, Owner: RouterDefaultsOwner, Name: RouterDefaultsName, leaveForeign: true})
}

// leaveForeignRouterPolicies returns pol without the router policies whose names objects of another owner (or
// none) have, and a note for each: e.g. those of a controller set up by OpenZiti's quickstart.
func leaveForeignRouterPolicies(pol *policyfile.Policy, owner string, obs *observed) (*policyfile.Policy, []string) {
	out := *pol
	var notes []string
	foreign := func(kind, name string, tags map[string]any) bool {
		if v, _ := tags[OwnerTag].(string); v == owner {
			return false
		}
		notes = append(notes, fmt.Sprintf("%s %s exists, made elsewhere (e.g. by OpenZiti's quickstart): left as it is", kind, name))
		return true
	}
	out.EdgeRouterPolicies = slices.DeleteFunc(slices.Clone(pol.EdgeRouterPolicies), func(p ziti.EdgeRouterPolicy) bool {
		i := slices.IndexFunc(obs.erps, func(o ziti.EdgeRouterPolicy) bool { return o.Name == p.Name })
		return i >= 0 && foreign("edge router policy", p.Name, obs.erps[i].Tags)
	})
	out.ServiceEdgeRouterPolicies = slices.DeleteFunc(slices.Clone(pol.ServiceEdgeRouterPolicies), func(p ziti.ServiceEdgeRouterPolicy) bool {
		i := slices.IndexFunc(obs.serps, func(o ziti.ServiceEdgeRouterPolicy) bool { return o.Name == p.Name })
		return i >= 0 && foreign("service edge router policy", p.Name, obs.serps[i].Tags)
	})
	return &out, notes
}
