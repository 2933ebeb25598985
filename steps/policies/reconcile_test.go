package policies

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/policyfile"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

func mustParse(t *testing.T, doc string) *policyfile.Policy {
	t.Helper()
	p, err := policyfile.Parse("p.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func owned(extra ...string) map[string]any {
	m := map[string]any{OwnerTag: "o"}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	return m
}

func baseObserved() *observed {
	return &observed{
		configTypes: []ziti.ConfigType{{ID: "ict", Name: ziti.ConfigTypeIntercept}, {ID: "hct", Name: ziti.ConfigTypeHost}},
		routers:     []ziti.EdgeRouter{{ID: "r1", Name: "router-a", RoleAttributes: []string{"public"}}},
	}
}

func changeStrings(r *reconciliation) []string {
	var out []string
	for _, o := range r.ops {
		out = append(out, o.change.String())
	}
	return out
}

const doc = `services:
  - name: s
    roleAttributes: [sensors]
    host: {protocol: tcp, address: 127.0.0.1, port: 80}
servicePolicies:
  - {name: p, type: Dial, identityRoles: ["#all"], serviceRoles: ["@s"]}
`

func TestReconcileSortsIntoCreateUpdateDeleteAndLeavesForeignAlone(t *testing.T) {
	pol := mustParse(t, doc)
	obs := baseObserved()
	obs.configs = []ziti.Config{
		{ID: "c1", Name: "s.host.v1", ConfigTypeName: ziti.ConfigTypeHost, Data: map[string]any{"protocol": "tcp", "address": "127.0.0.1", "port": 81}, Tags: owned("keep", "me")},
		{ID: "c2", Name: "old.host.v1", ConfigTypeName: ziti.ConfigTypeHost, Tags: owned()},
		{ID: "c3", Name: "theirs", ConfigTypeName: ziti.ConfigTypeHost},
		{ID: "c4", Name: "other-owner", ConfigTypeName: ziti.ConfigTypeHost, Tags: map[string]any{OwnerTag: "oidc"}},
	}
	obs.services = []ziti.Service{{ID: "s1", Name: "s", Configs: []string{"c1"}, RoleAttributes: []string{"sensors"}, EncryptionRequired: true,
		TerminatorStrategy: "smartrouting", Tags: owned()}}
	obs.sps = []ziti.ServicePolicy{{ID: "p1", Name: "p", Type: "Dial", Semantic: "AnyOf", IdentityRoleNames: []string{"#all"}, ServiceRoleNames: []string{"@s"}, Tags: owned()}}
	obs.erps = []ziti.EdgeRouterPolicy{{ID: "sys", Name: "edge-router-r1-system", IsSystem: true, Tags: owned()}} // never ours, whatever its tags
	r, err := reconcile(pol, "o", obs)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"update ziti-config s.host.v1 (fields: [data.port]): differs: data.port 81 → 80",
		"delete ziti-config old.host.v1: not declared (id c2)",
	}
	if got := changeStrings(r); !slices.Equal(got, want) {
		t.Fatalf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The update keeps the object's other tags and its type.
	api := &fakeAPI{}
	if err := apply(context.Background(), api, r.ops, r.ids, 2); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(api.calls, []string{"UpdateConfig c1 s.host.v1 keep=me", "DeleteConfig c2"}) {
		t.Fatalf("calls %v", api.calls)
	}
}

func TestReconcileRefusesObjectsOwnedByOthers(t *testing.T) {
	pol := mustParse(t, doc)
	obs := baseObserved()
	obs.services = []ziti.Service{{ID: "s1", Name: "s"}}
	obs.sps = []ziti.ServicePolicy{{ID: "p1", Name: "p", Tags: map[string]any{OwnerTag: "oidc"}}}
	_, err := reconcile(pol, "o", obs)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, w := range []string{
		`p.yaml:2: services[0]: service "s" (id s1) exists but is not owned by this policy file (no ziti-bootstrap tag, not ziti-bootstrap=o)`,
		`p.yaml:6: servicePolicies[0]: service policy "p" (id p1) exists but is not owned by this policy file (tag ziti-bootstrap=oidc, not ziti-bootstrap=o)`,
		"hand it over by setting that tag",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not say %q:\n%v", w, err)
		}
	}
}

func TestReconcileRefusesTypeChanges(t *testing.T) {
	pol := mustParse(t, "configs:\n  - name: c\n    host: {protocol: tcp, address: a, port: 1}\n")
	obs := baseObserved()
	obs.configs = []ziti.Config{{ID: "c1", Name: "c", ConfigTypeName: ziti.ConfigTypeIntercept, Tags: owned()}}
	if _, err := reconcile(pol, "o", obs); err == nil || !strings.Contains(err.Error(), "cannot change; give it a new name") {
		t.Fatalf("%v", err)
	}
}

func TestReconcileKeepsOwnedObjectsListedAsExternal(t *testing.T) {
	pol := mustParse(t, "external:\n  services: [legacy]\n")
	obs := baseObserved()
	obs.services = []ziti.Service{{ID: "s1", Name: "legacy", Tags: owned()}}
	r, err := reconcile(pol, "o", obs)
	if err != nil || len(r.ops) != 0 || len(r.notes) != 1 || !strings.Contains(r.notes[0], "listed as external") {
		t.Fatalf("%+v %v", r, err)
	}
	obs.services = nil
	if _, err := reconcile(pol, "o", obs); err == nil || !strings.Contains(err.Error(), "p.yaml:2: external.services[0]: listed as external, but the controller has no service") {
		t.Fatalf("%v", err)
	}
}

// TestIdentityAttributes is the bookkeeping of role attributes on identities: the file's attributes are
// added, those the file added before and no longer gives are removed, and nothing else is touched.
func TestIdentityAttributes(t *testing.T) {
	const key = "ziti-bootstrap.o.roleAttributes"
	pol := mustParse(t, `identities:
  - {name: named, roleAttributes: [a, b]}
identityRules:
  - externalId: spiffe://td/device/{type}/{loc}/{n}
    roleAttributes: ["type:{type}", "loc:{loc}"]
`)
	for name, tc := range map[string]struct {
		in         ziti.Identity
		attrs      []string // after; nil: no change
		managed    string
		reasonPart string
	}{
		"new":                   {ziti.Identity{Name: "named"}, []string{"a", "b"}, "a,b", "add [a b]"},
		"converged":             {ziti.Identity{Name: "named", RoleAttributes: []string{"a", "b", "x"}, Tags: map[string]any{key: "a,b"}}, nil, "", ""},
		"hand-made kept":        {ziti.Identity{Name: "named", RoleAttributes: []string{"a", "x"}, Tags: map[string]any{"t": "v"}}, []string{"a", "b", "x"}, "b", "keep [a] (already there, not added by this file)"},
		"already there by hand": {ziti.Identity{Name: "named", RoleAttributes: []string{"a", "b"}}, nil, "", ""},
		"rule": {ziti.Identity{Name: "dev", ExternalID: "spiffe://td/device/temp/kitchen/1", RoleAttributes: []string{"x"}},
			[]string{"loc:kitchen", "type:temp", "x"}, "loc:kitchen,type:temp", "add [loc:kitchen type:temp]"},
		"moved": {ziti.Identity{Name: "dev", ExternalID: "spiffe://td/device/temp/garage/1", RoleAttributes: []string{"loc:kitchen", "type:temp", "x"}, Tags: map[string]any{key: "loc:kitchen,type:temp"}},
			[]string{"loc:garage", "type:temp", "x"}, "loc:garage,type:temp", "add [loc:garage]; remove [loc:kitchen]"},
		"no longer matched": {ziti.Identity{Name: "dev", ExternalID: "other", RoleAttributes: []string{"loc:kitchen", "x"}, Tags: map[string]any{key: "loc:kitchen,type:temp"}},
			[]string{"x"}, "", "remove [loc:kitchen]; forget [type:temp] (removed by hand)"},
		"untouched":      {ziti.Identity{Name: "stranger", ExternalID: "spiffe://td/person/1", RoleAttributes: []string{"x"}}, nil, "", ""},
		"empty tag kept": {ziti.Identity{Name: "stranger", RoleAttributes: []string{"x"}, Tags: map[string]any{key: ""}}, nil, "", ""},
	} {
		t.Run(name, func(t *testing.T) {
			obs := baseObserved()
			tc.in.ID = "id1"
			obs.identities = []ziti.Identity{tc.in}
			r, err := reconcile(pol, "o", obs)
			if err != nil {
				t.Fatal(err)
			}
			if tc.attrs == nil {
				if len(r.ops) != 0 {
					t.Fatalf("changes %v", changeStrings(r))
				}
				return
			}
			if len(r.ops) != 1 || !strings.Contains(r.ops[0].change.Reason, tc.reasonPart) {
				t.Fatalf("changes %v, want reason with %q", changeStrings(r), tc.reasonPart)
			}
			api := &fakeAPI{}
			if err := apply(context.Background(), api, r.ops, r.ids, 1); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(api.attrs, tc.attrs) || api.tags[key] != tc.managed {
				t.Fatalf("set %v tags %v; want %v and %s=%q", api.attrs, api.tags, tc.attrs, key, tc.managed)
			}
			for k, v := range tc.in.Tags {
				if k != key && api.tags[k] != v {
					t.Fatalf("tag %s lost: %v", k, api.tags)
				}
			}
		})
	}
}

func TestApplyOrderAndPerItemErrors(t *testing.T) {
	pol := mustParse(t, doc+"postureChecks:\n  - {name: pc, type: MAC, macAddresses: ['AA-BB-CC-DD-EE-FF']}\n")
	obs := baseObserved()
	obs.services = []ziti.Service{{ID: "gone", Name: "stale", Tags: owned()}}
	obs.sps = []ziti.ServicePolicy{{ID: "sp-gone", Name: "stale-policy", Tags: owned()}}
	r, err := reconcile(pol, "o", obs)
	if err != nil {
		t.Fatal(err)
	}
	api := &fakeAPI{fail: map[string]error{"CreateConfig s.host.v1": errors.New("boom")}}
	err = apply(context.Background(), api, r.ops, r.ids, 4)
	if err == nil || !strings.Contains(err.Error(), "create ziti-config s.host.v1: boom") ||
		!strings.Contains(err.Error(), `create ziti-service s: config "s.host.v1" does not exist`) ||
		!strings.Contains(err.Error(), `create ziti-service-policy p: service "s" does not exist`) {
		t.Fatalf("apply: %v", err)
	}
	// Creates in dependency order, deletes in reverse; the posture check went on despite the config's failure.
	order := func(call string) int {
		return slices.IndexFunc(api.calls, func(c string) bool { return strings.HasPrefix(c, call) })
	}
	if !(order("CreatePostureCheck pc") >= 0 && order("DeleteServicePolicy sp-gone") < order("DeleteService gone")) {
		t.Fatalf("calls %v", api.calls)
	}
	if !slices.Contains(api.calls, "CreatePostureCheck pc [aabbccddeeff]") {
		t.Fatalf("MAC not normalised: %v", api.calls)
	}
}

// fakeAPI records writes; list calls are not used (reconcile takes the observed state directly).
type fakeAPI struct {
	API
	mu    sync.Mutex
	calls []string
	fail  map[string]error
	attrs []string
	tags  map[string]any
	n     int
}

func (f *fakeAPI) rec(call string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
	return f.fail[call]
}

func (f *fakeAPI) newID(prefix string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	return prefix + string(rune('0'+f.n))
}

func (f *fakeAPI) CreateConfig(_ context.Context, c ziti.Config) (string, error) {
	if err := f.rec("CreateConfig " + c.Name); err != nil {
		return "", err
	}
	return f.newID("cfg"), nil
}
func (f *fakeAPI) UpdateConfig(_ context.Context, id string, c ziti.Config) error {
	return f.rec("UpdateConfig " + id + " " + c.Name + " keep=" + c.Tags["keep"].(string))
}
func (f *fakeAPI) DeleteConfig(_ context.Context, id string) error {
	return f.rec("DeleteConfig " + id)
}
func (f *fakeAPI) CreateService(_ context.Context, s ziti.Service) (string, error) {
	return f.newID("svc"), f.rec("CreateService " + s.Name)
}
func (f *fakeAPI) DeleteService(_ context.Context, id string) error {
	return f.rec("DeleteService " + id)
}
func (f *fakeAPI) CreatePostureCheck(_ context.Context, pc ziti.PostureCheck) (string, error) {
	return f.newID("pc"), f.rec("CreatePostureCheck " + pc.Name + " [" + strings.Join(pc.MACAddresses, " ") + "]")
}
func (f *fakeAPI) CreateServicePolicy(_ context.Context, sp ziti.ServicePolicy) (string, error) {
	return f.newID("sp"), f.rec("CreateServicePolicy " + sp.Name)
}
func (f *fakeAPI) DeleteServicePolicy(_ context.Context, id string) error {
	return f.rec("DeleteServicePolicy " + id)
}
func (f *fakeAPI) SetIdentityRoleAttributes(_ context.Context, id string, attrs []string, tags map[string]any) error {
	f.mu.Lock()
	f.attrs, f.tags = attrs, tags
	f.mu.Unlock()
	return f.rec("SetIdentityRoleAttributes " + id)
}

var _ steps.Step = (*Step)(nil)

func TestNewChecksConfig(t *testing.T) {
	if _, err := New(nil, Config{Policy: &policyfile.Policy{}}); err == nil {
		t.Fatal("nil client accepted")
	}
	if _, err := New(&fakeAPI{}, Config{}); err == nil || !strings.Contains(err.Error(), "no policy") {
		t.Fatalf("nil policy: %v", err)
	}
	if _, err := New(&fakeAPI{}, Config{Policy: &policyfile.Policy{}, Owner: "Bad Owner"}); err == nil {
		t.Fatal("bad owner accepted")
	}
	s, err := New(&fakeAPI{}, Config{Policy: &policyfile.Policy{}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Name() != "ziti/policies" || !slices.Equal(s.DependsOn(), []string{"ziti/reachable"}) {
		t.Fatalf("%s %v", s.Name(), s.DependsOn())
	}
}
