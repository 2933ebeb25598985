package policies_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/policyfile"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/bedziti"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/policies"
)

// These tests share the test bed's controller with other packages. Each test owns its objects under its own
// owner tag value, prefixes every name in the example file with a random prefix, moves the example's SPIFFE IDs
// under a random path, and deletes what it made.

const examplePath = "../../examples/policies/iot-segments.yaml"

type bed struct {
	t      testing.TB
	info   testbed.ZitiInfo
	owner  string
	prefix string // of every name the example declares
	td     string // spiffe://openziti.local/<random>: where this test's devices live
	admin  *ziti.Client
	idents []string // ids of identities this test created
}

func newBed(t testing.TB) *bed {
	t.Helper()
	in := testbed.Require(t, "ziti").Ziti
	r := testutil.RandHex(t, 4)
	b := &bed{t: t, info: in, owner: "policies-t" + r, prefix: "t" + r + "-", td: "spiffe://openziti.local/t" + r}
	b.admin, _ = b.client()
	t.Cleanup(b.cleanup)
	return b
}

func ctx(t testing.TB) context.Context { return testutil.Context(t, 5*time.Minute) }

// client logs in with a fresh counter.
func (b *bed) client() (*ziti.Client, *calls.Counter) {
	b.t.Helper()
	counter := calls.New()
	return bedziti.Client(b.t, counter), counter
}

// example returns the example file's text with this test's names and SPIFFE IDs.
func (b *bed) example() string {
	b.t.Helper()
	data, err := os.ReadFile(examplePath)
	if err != nil {
		b.t.Fatal(err)
	}
	s := strings.ReplaceAll(string(data), "iot-", b.prefix+"iot-")
	return strings.ReplaceAll(s, "spiffe://openziti.local/", b.td+"/")
}

func (b *bed) parse(doc string) *policyfile.Policy {
	b.t.Helper()
	p, err := policyfile.Parse("iot-segments.yaml", []byte(doc))
	if err != nil {
		b.t.Fatal(err)
	}
	return p
}

// identity creates an identity (deleted at cleanup); externalID is under b.td unless empty.
func (b *bed) identity(name, externalPath string, attrs ...string) string {
	b.t.Helper()
	in := ziti.Identity{Name: b.prefix + name, RoleAttributes: attrs}
	if externalPath != "" {
		in.ExternalID = b.td + "/" + externalPath
	}
	id, err := b.admin.CreateIdentity(ctx(b.t), in)
	if err != nil {
		b.t.Fatal(err)
	}
	b.idents = append(b.idents, id)
	return id
}

func (b *bed) step(c *ziti.Client, p *policyfile.Policy) steps.Step {
	b.t.Helper()
	s, err := policies.New(c, policies.Config{Policy: p, Owner: b.owner})
	if err != nil {
		b.t.Fatal(err)
	}
	return s
}

// run runs the step through a steps.Runner on a fresh client and counter.
func (b *bed) run(mode steps.Mode, p *policyfile.Policy) (*steps.Report, steps.Result) {
	b.t.Helper()
	c, counter := b.client()
	reachable := testutil.StandIn(policies.ZitiReachable, func(ctx context.Context) error { _, err := c.Ping(ctx); return err })
	rep, err := (&steps.Runner{Steps: []steps.Step{b.step(c, p), reachable}, Counter: counter}).Run(ctx(b.t), mode)
	if err != nil {
		b.t.Fatal(err)
	}
	if len(rep.Steps) != 2 || rep.Steps[1].Name != policies.Name {
		b.t.Fatalf("report %+v", rep)
	}
	return rep, rep.Steps[1]
}

func (b *bed) mustApply(p *policyfile.Policy) (*steps.Report, steps.Result) {
	b.t.Helper()
	rep, res := b.run(steps.Apply, p)
	if res.Status != steps.Changed && res.Status != steps.Unchanged {
		b.t.Fatalf("apply: %s: %s\n%s", res.Status, res.Error, changes(res))
	}
	return rep, res
}

func changes(r steps.Result) string { return strings.Join(testutil.ChangeStrings(r.Changes), "\n") }

// keys lists "action kind key" of each change, sorted.
func keys(r steps.Result, prefix string) []string {
	var out []string
	for _, c := range r.Changes {
		out = append(out, string(c.Action)+" "+c.Kind+" "+strings.TrimPrefix(c.Key, prefix))
	}
	slices.Sort(out)
	return out
}

func (b *bed) ownedFilter() string { return "tags." + policies.OwnerTag + " = " + ziti.Quote(b.owner) }

func (b *bed) cleanup() {
	c, f := b.admin, b.ownedFilter()
	bg := context.Background()
	deleteEach(f, c.ListServicePolicies, c.DeleteServicePolicy, func(x ziti.ServicePolicy) string { return x.ID })
	deleteEach(f, c.ListEdgeRouterPolicies, c.DeleteEdgeRouterPolicy, func(x ziti.EdgeRouterPolicy) string { return x.ID })
	deleteEach(f, c.ListServiceEdgeRouterPolicies, c.DeleteServiceEdgeRouterPolicy, func(x ziti.ServiceEdgeRouterPolicy) string { return x.ID })
	deleteEach(f, c.ListPostureChecks, c.DeletePostureCheck, func(x ziti.PostureCheck) string { return x.ID })
	deleteEach(f, c.ListServices, c.DeleteService, func(x ziti.Service) string { return x.ID })
	deleteEach(f, c.ListConfigs, c.DeleteConfig, func(x ziti.Config) string { return x.ID })
	for _, id := range b.idents {
		_ = c.DeleteIdentity(bg, id)
	}
}

// deleteEach deletes, as well as it can (a cleanup), every object that list finds with filter.
func deleteEach[T any](filter string, list func(context.Context, string) ([]T, error), del func(context.Context, string) error, id func(T) string) {
	bg := context.Background()
	xs, _ := list(bg, filter)
	for _, x := range xs {
		_ = del(bg, id(x))
	}
}

func (b *bed) serviceID(name string) string {
	b.t.Helper()
	s, err := b.admin.ListServices(ctx(b.t), ziti.FilterEq("name", b.prefix+name))
	if err != nil || len(s) != 1 {
		b.t.Fatalf("service %s: %v %v", name, s, err)
	}
	return s[0].ID
}

func (b *bed) advice(identityID, service string) ziti.PolicyAdvice {
	b.t.Helper()
	a, err := b.admin.PolicyAdvice(ctx(b.t), identityID, b.serviceID(service))
	if err != nil {
		b.t.Fatal(err)
	}
	return a
}

func (b *bed) attrs(id string) []string {
	b.t.Helper()
	in, err := b.admin.GetIdentity(ctx(b.t), id)
	if err != nil {
		b.t.Fatal(err)
	}
	return in.RoleAttributes
}

// devices creates the example's cast: the hub, and devices in and out of the kitchen temperature segment.
type devices struct{ hub, kitchenTemp, garageTemp, kitchenMotion, zigbeeGW string }

func (b *bed) devices() devices {
	return devices{
		hub:           b.identity("iot-sensor-hub", ""),
		kitchenTemp:   b.identity("kitchen-temp", "device/temperature/kitchen/t1", "hand-made"),
		garageTemp:    b.identity("garage-temp", "device/temperature/garage/t2"),
		kitchenMotion: b.identity("kitchen-motion", "device/motion/kitchen/m1"),
		zigbeeGW:      b.identity("zigbee-gw", "gateway/zigbee/kitchen/gw1"),
	}
}

func TestExampleAppliesCleanlyAndSegments(t *testing.T) {
	b := newBed(t)
	d := b.devices()
	pol := b.parse(b.example())

	rep, res := b.run(steps.PlanOnly, pol)
	if res.Status != steps.Planned || rep.MutatingCalls != 0 {
		t.Fatalf("plan: %s %s, %d writes", res.Status, res.Error, rep.MutatingCalls)
	}
	want := []string{
		"create ziti-config iot-firmware-host", "create ziti-config iot-firmware-intercept",
		"create ziti-config iot-motion-events.host.v1", "create ziti-config iot-motion-events.intercept.v1",
		"create ziti-config iot-sensor-data.host.v1", "create ziti-config iot-sensor-data.intercept.v1",
		"create ziti-edge-router-policy iot-endpoints-public-routers", "create ziti-posture-check iot-linux-gateways",
		"create ziti-service iot-firmware", "create ziti-service iot-motion-events", "create ziti-service iot-sensor-data",
		"create ziti-service-edge-router-policy iot-services-public-routers",
		"create ziti-service-policy iot-hub-bind", "create ziti-service-policy iot-kitchen-temperature-dial-sensor-data",
		"create ziti-service-policy iot-motion-dial-events", "create ziti-service-policy iot-zigbee-gateways-dial-firmware",
		"update ziti-identity garage-temp", "update ziti-identity iot-sensor-hub", "update ziti-identity kitchen-motion",
		"update ziti-identity kitchen-temp", "update ziti-identity zigbee-gw",
	}
	if got := keys(res, b.prefix); !slices.Equal(got, want) {
		t.Fatalf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	t.Logf("plan:\n%s\nnotes: %v", changes(res), res.Notes)

	start := time.Now()
	rep, res = b.mustApply(pol)
	if res.Status != steps.Changed || rep.MutatingCalls != int64(len(want)) {
		t.Fatalf("apply: %s, %d writes for %d changes\n%v", res.Status, rep.MutatingCalls, len(want), rep.Writes)
	}
	t.Logf("first apply: %d changes, %d writes in %v", len(res.Changes), rep.MutatingCalls, time.Since(start).Round(time.Millisecond))

	// The controller's own advisor: only temperature sensors in the kitchen may dial sensor-data.
	for _, tc := range []struct {
		who, id, service string
		dial, bind       bool
	}{
		{"kitchen temperature sensor", d.kitchenTemp, "iot-sensor-data", true, false},
		{"garage temperature sensor", d.garageTemp, "iot-sensor-data", false, false},
		{"kitchen motion sensor", d.kitchenMotion, "iot-sensor-data", false, false},
		{"kitchen motion sensor", d.kitchenMotion, "iot-motion-events", true, false},
		{"zigbee gateway", d.zigbeeGW, "iot-sensor-data", false, false},
		{"zigbee gateway", d.zigbeeGW, "iot-firmware", true, false},
		{"hub", d.hub, "iot-sensor-data", false, true},
	} {
		a := b.advice(tc.id, tc.service)
		if a.DialAllowed != tc.dial || a.BindAllowed != tc.bind {
			t.Errorf("%s on %s: dial %v bind %v, want dial %v bind %v", tc.who, tc.service, a.DialAllowed, a.BindAllowed, tc.dial, tc.bind)
		}
		if tc.dial && (a.IdentityRouterCount == 0 || a.ServiceRouterCount == 0 || len(a.CommonRouters) == 0) {
			t.Errorf("%s on %s: no common router (%+v): the default router policies do not cover it", tc.who, tc.service, a)
		}
	}
	// Attributes from the rules are added; the hand-made one is kept.
	if got := b.attrs(d.kitchenTemp); !slices.Equal(got, []string{"device-type:temperature", "hand-made", "location:kitchen", b.prefix + "iot-device"}) {
		t.Fatalf("kitchen sensor attributes %v", got)
	}
	in, _ := b.admin.GetIdentity(ctx(t), d.kitchenTemp)
	if got := in.Tags[policies.AttributesTag(b.owner)]; got != "device-type:temperature,location:kitchen,"+b.prefix+"iot-device" {
		t.Fatalf("managed attributes tag %v", got)
	}
	// The intercept config carries the source CIDRs.
	cfgs, err := b.admin.ListConfigs(ctx(t), ziti.FilterEq("name", b.prefix+"iot-sensor-data.intercept.v1"))
	if err != nil || len(cfgs) != 1 || !ziti.EqualJSON(cfgs[0].Data["allowedSourceAddresses"], []string{"192.168.20.0/24"}) ||
		cfgs[0].Data["sourceIp"] != "$src_ip:$src_port" {
		t.Fatalf("intercept config %+v %v", cfgs, err)
	}

	// A second apply: nothing to do, no write.
	rep, res = b.mustApply(pol)
	if res.Status != steps.Unchanged || rep.MutatingCalls != 0 {
		t.Fatalf("second apply: %s, %d writes: %v\n%s", res.Status, rep.MutatingCalls, rep.Writes, changes(res))
	}
}

func TestEditingOneAttributeChangesExactlyTheAffectedObjects(t *testing.T) {
	b := newBed(t)
	d := b.devices()
	doc := b.example()
	b.mustApply(b.parse(doc))

	// Move the sensor-data segment from the kitchen to the garage: one role in one policy. The default edge
	// router policy, derived from the service policies' identity roles, follows.
	edited := strings.Replace(doc, `identityRoles: ["#device-type:temperature", "#location:kitchen"]`, `identityRoles: ["#device-type:temperature", "#location:garage"]`, 1)
	if edited == doc {
		t.Fatal("the example no longer has the edited line")
	}
	start := time.Now()
	rep, res := b.mustApply(b.parse(edited))
	took := time.Since(start)
	want := []string{"update ziti-edge-router-policy iot-endpoints-public-routers", "update ziti-service-policy iot-kitchen-temperature-dial-sensor-data"}
	if got := keys(res, b.prefix); !slices.Equal(got, want) || rep.MutatingCalls != 2 {
		t.Fatalf("changes (%d writes):\n%s\nwant:\n%s", rep.MutatingCalls, changes(res), strings.Join(want, "\n"))
	}
	for _, c := range res.Changes {
		if !slices.Equal(c.Fields, []string{"identityRoles"}) || !strings.Contains(c.Reason, "#location:garage") {
			t.Fatalf("change %s", c)
		}
	}
	t.Logf("segment moved in %v:\n%s", took.Round(time.Millisecond), changes(res))
	if b.advice(d.kitchenTemp, "iot-sensor-data").DialAllowed || !b.advice(d.garageTemp, "iot-sensor-data").DialAllowed {
		t.Fatal("the advisor does not show the moved segment")
	}

	// Narrow the source CIDR of the intercept: exactly one config changes, in exactly that field.
	edited2 := strings.Replace(edited, "allowedSourceAddresses: [192.168.20.0/24]\n    host:", "allowedSourceAddresses: [192.168.20.128/25]\n    host:", 1)
	rep, res = b.mustApply(b.parse(edited2))
	if got := keys(res, b.prefix); !slices.Equal(got, []string{"update ziti-config iot-sensor-data.intercept.v1"}) || rep.MutatingCalls != 1 ||
		!slices.Equal(res.Changes[0].Fields, []string{"data.allowedSourceAddresses"}) {
		t.Fatalf("changes (%d writes):\n%s", rep.MutatingCalls, changes(res))
	}

	// Take one attribute away from the rule: exactly the identities the rule matches change, the hand-made
	// attribute stays.
	edited3 := strings.Replace(edited2, `roleAttributes: ["device-type:{type}", "location:{location}", `+b.prefix+`iot-device]`, `roleAttributes: ["device-type:{type}", "location:{location}"]`, 1)
	rep, res = b.mustApply(b.parse(edited3))
	want = []string{"update ziti-identity garage-temp", "update ziti-identity kitchen-motion", "update ziti-identity kitchen-temp"}
	if got := keys(res, b.prefix); !slices.Equal(got, want) || rep.MutatingCalls != 3 {
		t.Fatalf("changes (%d writes):\n%s", rep.MutatingCalls, changes(res))
	}
	if got := b.attrs(d.kitchenTemp); !slices.Equal(got, []string{"device-type:temperature", "hand-made", "location:kitchen"}) {
		t.Fatalf("attributes %v", got)
	}
	if rep, res = b.mustApply(b.parse(edited3)); rep.MutatingCalls != 0 || res.Status != steps.Unchanged {
		t.Fatalf("re-run: %d writes\n%s", rep.MutatingCalls, changes(res))
	}
}

func TestHandMadeObjectsSurviveAndConflictsFailThePlan(t *testing.T) {
	b := newBed(t)
	d := b.devices()
	c := b.admin
	x := ctx(t)
	// Made by hand: a service, a Dial policy on it for the kitchen sensors, and an attribute on an identity that
	// the file also gives (so the file did not add it, and must not take it away).
	handSvc, err := c.CreateService(x, ziti.Service{Name: b.prefix + "hand-svc", EncryptionRequired: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.DeleteService(context.Background(), handSvc) })
	handSP, err := c.CreateServicePolicy(x, ziti.ServicePolicy{Name: b.prefix + "hand-dial", Type: ziti.PolicyDial,
		IdentityRoles: []string{"#location:kitchen"}, ServiceRoles: []string{"@" + handSvc}, Tags: map[string]any{"made-by": "hand"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.DeleteServicePolicy(context.Background(), handSP) })
	if err := c.SetIdentityRoleAttributes(x, d.garageTemp, []string{"location:garage"}, map[string]any{"made-by": "hand"}); err != nil {
		t.Fatal(err)
	}

	b.mustApply(b.parse(b.example()))
	sps, err := c.ListServicePolicies(x, ziti.FilterEq("name", b.prefix+"hand-dial"))
	if err != nil || len(sps) != 1 || sps[0].Tags["made-by"] != "hand" || !slices.Equal(sps[0].IdentityRoleNames, []string{"#location:kitchen"}) {
		t.Fatalf("hand-made policy after apply: %+v %v", sps, err)
	}
	if !b.advice(d.kitchenTemp, "hand-svc").DialAllowed {
		t.Fatal("the hand-made policy no longer works")
	}

	// Declaring an object of the hand-made service's name fails the plan, naming the file, line and owner.
	conflict := strings.Replace(b.example(), "services:\n", "services:\n  - name: "+b.prefix+"hand-svc\n", 1)
	rep, res := b.run(steps.Apply, b.parse(conflict))
	if res.Status != steps.Failed || rep.MutatingCalls != 0 || !strings.Contains(res.Error, "iot-segments.yaml:") ||
		!strings.Contains(res.Error, `service "`+b.prefix+`hand-svc"`) || !strings.Contains(res.Error, "not owned by this policy file") {
		t.Fatalf("conflict: %s, %d writes: %s", res.Status, rep.MutatingCalls, res.Error)
	}

	// An empty policy deletes everything this file owns, removes only the attributes it added, and leaves the
	// hand-made objects alone.
	rep, res = b.mustApply(b.parse(""))
	if res.Status != steps.Changed {
		t.Fatalf("empty policy: %s %s", res.Status, res.Error)
	}
	t.Logf("empty policy: %d writes\n%s", rep.MutatingCalls, changes(res))
	for _, kind := range []func() (int, error){
		func() (int, error) { l, err := c.ListServices(x, b.ownedFilter()); return len(l), err },
		func() (int, error) { l, err := c.ListConfigs(x, b.ownedFilter()); return len(l), err },
		func() (int, error) { l, err := c.ListServicePolicies(x, b.ownedFilter()); return len(l), err },
		func() (int, error) { l, err := c.ListEdgeRouterPolicies(x, b.ownedFilter()); return len(l), err },
		func() (int, error) { l, err := c.ListServiceEdgeRouterPolicies(x, b.ownedFilter()); return len(l), err },
		func() (int, error) { l, err := c.ListPostureChecks(x, b.ownedFilter()); return len(l), err },
	} {
		if n, err := kind(); err != nil || n != 0 {
			t.Fatalf("owned objects left: %d %v", n, err)
		}
	}
	if s, err := c.ListServices(x, ziti.FilterEq("name", b.prefix+"hand-svc")); err != nil || len(s) != 1 {
		t.Fatalf("hand-made service: %v %v", s, err)
	}
	if got := b.attrs(d.garageTemp); !slices.Equal(got, []string{"location:garage"}) {
		t.Fatalf("garage sensor attributes %v: the hand-made location:garage must stay", got)
	}
	if got := b.attrs(d.kitchenTemp); !slices.Equal(got, []string{"hand-made"}) {
		t.Fatalf("kitchen sensor attributes %v", got)
	}
	if rep, res = b.mustApply(b.parse("")); rep.MutatingCalls != 0 {
		t.Fatalf("re-run of the empty policy: %d writes\n%s", rep.MutatingCalls, changes(res))
	}
}

func TestPlanFailsOnRolesNamingMissingObjects(t *testing.T) {
	b := newBed(t)
	// The hub identity is not created: the example's @iot-sensor-hub names nothing.
	_, res := b.run(steps.PlanOnly, b.parse(b.example()))
	if res.Status != steps.Failed || !strings.Contains(res.Error, "iot-segments.yaml:") || !strings.Contains(res.Error, "servicePolicies[3].identityRoles[0]") ||
		!strings.Contains(res.Error, `no identity named "`+b.prefix+`iot-sensor-hub"`) {
		t.Fatalf("%s: %s", res.Status, res.Error)
	}
}

// TestCreateCollidingWithAnEarlierRunsWriteTakesItOver plans the example, then makes two of its objects behind
// the plan's back, as the controller does when it carries out the write of a run that was killed with that write
// in flight after the next run has listed: a config tagged with this owner (with other data), and a posture
// check without the tag. The apply takes the config over (same id, updated to the file's data) and fails on the
// posture check only, saying it is not this file's; once that is gone, an apply converges and the next writes
// nothing.
func TestCreateCollidingWithAnEarlierRunsWriteTakesItOver(t *testing.T) {
	b := newBed(t)
	b.devices()
	c, x := b.admin, ctx(t)
	pol := b.parse(b.example())
	plan, err := b.step(c, pol).Plan(x)
	if err != nil {
		t.Fatal(err)
	}
	types, err := c.ListConfigTypes(x, ziti.FilterEq("name", ziti.ConfigTypeIntercept))
	if err != nil || len(types) != 1 {
		t.Fatalf("config type %s: %v %v", ziti.ConfigTypeIntercept, types, err)
	}
	cfgName := b.prefix + "iot-sensor-data.intercept.v1"
	early, err := c.CreateConfig(x, ziti.Config{Name: cfgName, ConfigTypeID: types[0].ID, Tags: map[string]any{policies.OwnerTag: b.owner},
		Data: map[string]any{"protocols": []string{"tcp"}, "addresses": []string{"elsewhere.iot"}, "portRanges": []map[string]int{{"low": 1, "high": 1}}}})
	if err != nil {
		t.Fatal(err)
	}
	pcName := b.prefix + "iot-linux-gateways"
	hand, err := c.CreatePostureCheck(x, ziti.PostureCheck{Name: pcName, Type: ziti.PostureCheckOS,
		OperatingSystems: []ziti.OperatingSystem{{Type: "Linux", Versions: []string{">=5.10.0"}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.DeletePostureCheck(context.Background(), hand) })
	err = plan.Apply(x)
	if err == nil || !strings.Contains(err.Error(), "ziti-posture-check "+pcName) || !strings.Contains(err.Error(), "not tagged "+policies.OwnerTag+"="+b.owner) ||
		strings.Contains(err.Error(), cfgName+":") {
		t.Fatalf("apply: want only the untagged posture check to fail it, got: %v", err)
	}
	t.Logf("apply with two names taken since the plan: %v", err)
	cfgs, err := c.ListConfigs(x, ziti.FilterEq("name", cfgName))
	if err != nil || len(cfgs) != 1 || cfgs[0].ID != early || !ziti.EqualJSON(cfgs[0].Data["addresses"], []string{"sensor-data.kitchen.iot"}) ||
		!ziti.EqualJSON(cfgs[0].Data["allowedSourceAddresses"], []string{"192.168.20.0/24"}) {
		t.Fatalf("config %s after apply (want id %s with the file's data): %+v %v", cfgName, early, cfgs, err)
	}
	svc, err := c.ListServices(x, ziti.FilterEq("name", b.prefix+"iot-sensor-data"))
	if err != nil || len(svc) != 1 || !slices.Contains(svc[0].Configs, early) {
		t.Fatalf("service iot-sensor-data does not use the config taken over (%s): %+v %v", early, svc, err)
	}
	if err := c.DeletePostureCheck(x, hand); err != nil {
		t.Fatal(err)
	}
	b.mustApply(pol)
	if rep, res := b.mustApply(pol); rep.MutatingCalls != 0 {
		t.Fatalf("apply after converging: %d writes\n%s", rep.MutatingCalls, changes(res))
	}
}
