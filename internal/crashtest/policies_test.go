package crashtest

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/policyfile"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/policies"
)

// The ziti/policies step of a run (POLICIES_FILE) owns every OpenZiti object tagged ziti-bootstrap=policies
// (the CLI's owner, which cannot be changed): it deletes those its file does not declare. So a bed that uses a
// policy file (usePolicies)
//   - renames every name of its files under zbcrash-<hex>- and every SPIFFE ID under its own path (polFile);
//   - creates the identities its rules and names match, and deletes them at the end;
//   - puts aside the objects other runs left under that owner (re-tagged ziti-bootstrap=policies-aside-<hex>,
//     attributes tags likewise) and puts them back at the end, as newBed does with SPIRE entries: then every
//     apply of the test starts alike and nothing of anyone else is deleted. The tests holding the Swarm's
//     apply lock (testbed.LockSwarmApply, taken by newBed) are the only runs that use this owner meanwhile.

// polOwner is the owner the CLI's ziti/policies step tags its objects with.
const polOwner = policies.DefaultOwner

// polIdentity is an identity a policy bed creates: a name (under the bed's prefix) and an externalId path
// (under the bed's SPIFFE path; "" for none).
type polIdentity struct{ name, path string }

// polIdentities are the identities the example's rules and names match: the hub that binds the services, two
// sensors and a Zigbee gateway.
var polIdentities = []polIdentity{
	{"iot-sensor-hub", ""},
	{"iot-t1", "device/temperature/kitchen/t1"},
	{"iot-m1", "device/motion/hall/m1"},
	{"iot-gw1", "gateway/zigbee/kitchen/gw1"},
}

// usePolicies makes the bed manage OpenZiti policies: state and reset include the objects of its policy files
// and its identities (see above). Call it before the first reset.
func (b *bed) usePolicies() {
	t := b.t
	t.Helper()
	b.polPrefix = "zbcrash-" + b.id + "-"
	b.polTD = "spiffe://openziti.local/zbcrash-" + b.id
	aside := polOwner + "-aside-" + b.id
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := b.retag(ctx, polOwner, aside, func(name string) bool { return !strings.HasPrefix(name, b.polPrefix) })
	if n > 0 {
		t.Logf("put aside %d OpenZiti object(s) and identities owned by %s=%s that are not this test's", n, policies.OwnerTag, polOwner)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		b.clearPolicies(ctx)
		b.retag(ctx, aside, polOwner, func(string) bool { return true })
		b.polPrefix = "" // newBed's reset, which runs next, has nothing more to do here
	})
}

// polFile writes a policy file from text with this bed's names: "iot-" becomes the bed's prefix, and SPIFFE IDs
// move under the bed's path.
func (b *bed) polFile(name, text string) string {
	b.t.Helper()
	s := strings.ReplaceAll(text, "iot-", b.polPrefix+"iot-")
	s = strings.ReplaceAll(s, "spiffe://openziti.local/", b.polTD+"/")
	path := filepath.Join(b.t.TempDir(), name)
	testutil.Must(b.t, os.WriteFile(path, []byte(s), 0o600))
	return path
}

// exampleText is the example policy file.
func exampleText(b *bed) string {
	data, err := os.ReadFile("../../examples/policies/iot-segments.yaml")
	testutil.Must(b.t, err)
	return string(data)
}

// zobj is one OpenZiti object of the kinds the policies step writes, as the state compares it.
type zobj struct {
	kind, name string
	tags       map[string]any
	desc       string // its fields without server-chosen ids (roles and configs by name)
	retag      func(ctx context.Context, tags map[string]any) error
	del        func(ctx context.Context) error
}

// zitiObjects lists the controller's configs, posture checks, services and the three policy kinds, in the
// order they can be deleted (what refers to others first).
func (b *bed) zitiObjects(ctx context.Context) []zobj {
	t, z := b.t, b.z
	t.Helper()
	var out []zobj
	cfgs, err := z.ListConfigs(ctx, "")
	testutil.Must(t, err)
	cfgName := map[string]string{}
	for _, c := range cfgs {
		cfgName[c.ID] = c.Name
	}
	collect(ctx, b, &out, policies.KindServicePolicy, z.ListServicePolicies,
		func(p *ziti.ServicePolicy) (string, string, *map[string]any) { return p.Name, p.ID, &p.Tags },
		func(p ziti.ServicePolicy) string {
			return fmt.Sprintf("type=%s semantic=%s identities=%v services=%v posture=%v", p.Type, p.Semantic,
				sortedCopy(p.IdentityRoleNames), sortedCopy(p.ServiceRoleNames), sortedCopy(p.PostureCheckRoleNames))
		}, z.UpdateServicePolicy, z.DeleteServicePolicy)
	collect(ctx, b, &out, policies.KindEdgeRouterPolicy, func(ctx context.Context, f string) ([]ziti.EdgeRouterPolicy, error) {
		all, err := z.ListEdgeRouterPolicies(ctx, f)
		return slices.DeleteFunc(all, func(p ziti.EdgeRouterPolicy) bool { return p.IsSystem }), err
	},
		func(p *ziti.EdgeRouterPolicy) (string, string, *map[string]any) { return p.Name, p.ID, &p.Tags },
		func(p ziti.EdgeRouterPolicy) string {
			return fmt.Sprintf("semantic=%s identities=%v routers=%v", p.Semantic, sortedCopy(p.IdentityRoleNames), sortedCopy(p.EdgeRouterRoleNames))
		}, z.UpdateEdgeRouterPolicy, z.DeleteEdgeRouterPolicy)
	collect(ctx, b, &out, policies.KindServiceEdgeRouterPolicy, z.ListServiceEdgeRouterPolicies,
		func(p *ziti.ServiceEdgeRouterPolicy) (string, string, *map[string]any) { return p.Name, p.ID, &p.Tags },
		func(p ziti.ServiceEdgeRouterPolicy) string {
			return fmt.Sprintf("semantic=%s services=%v routers=%v", p.Semantic, sortedCopy(p.ServiceRoleNames), sortedCopy(p.EdgeRouterRoleNames))
		}, z.UpdateServiceEdgeRouterPolicy, z.DeleteServiceEdgeRouterPolicy)
	collect(ctx, b, &out, policies.KindService, z.ListServices,
		func(s *ziti.Service) (string, string, *map[string]any) { return s.Name, s.ID, &s.Tags },
		func(s ziti.Service) string {
			var names []string
			for _, id := range s.Configs {
				names = append(names, orID(cfgName[id], id))
			}
			return fmt.Sprintf("configs=%v roles=%v encrypted=%v strategy=%s idle=%d",
				sortedCopy(names), sortedCopy(s.RoleAttributes), s.EncryptionRequired, s.TerminatorStrategy, s.MaxIdleTimeMillis)
		}, z.UpdateService, z.DeleteService)
	collect(ctx, b, &out, policies.KindPostureCheck, z.ListPostureChecks,
		func(p *ziti.PostureCheck) (string, string, *map[string]any) { return p.Name, p.ID, &p.Tags },
		func(p ziti.PostureCheck) string {
			var oses []string
			for _, o := range p.OperatingSystems {
				oses = append(oses, fmt.Sprintf("%s%v", o.Type, sortedCopy(o.Versions)))
			}
			return fmt.Sprintf("type=%s roles=%v os=%v macs=%v", p.Type, sortedCopy(p.RoleAttributes), oses, sortedCopy(p.MACAddresses))
		}, z.UpdatePostureCheck, z.DeletePostureCheck)
	collect(ctx, b, &out, policies.KindConfig, func(context.Context, string) ([]ziti.Config, error) { return cfgs, nil },
		func(c *ziti.Config) (string, string, *map[string]any) { return c.Name, c.ID, &c.Tags },
		func(c ziti.Config) string {
			data, err := ziti.CanonicalJSON(c.Data)
			testutil.Must(t, err)
			return fmt.Sprintf("type=%s data=%s", c.ConfigTypeName, data)
		}, z.UpdateConfig, z.DeleteConfig)
	return out
}

// collect appends the objects of one kind to out: list lists them, ident gives an object's name, id and
// (settable) tags, desc its fields; update and del write it back and delete it.
func collect[T any](ctx context.Context, b *bed, out *[]zobj, kind string, list func(context.Context, string) ([]T, error),
	ident func(*T) (name, id string, tags *map[string]any), desc func(T) string,
	update func(context.Context, string, T) error, del func(context.Context, string) error) {
	all, err := list(ctx, "")
	testutil.Must(b.t, err)
	for _, o := range all {
		name, id, tags := ident(&o)
		*out = append(*out, zobj{kind: kind, name: name, tags: *tags,
			desc: fmt.Sprintf("%s %s %s tags=%v", kind, name, desc(o), sortedMap(*tags)),
			retag: func(ctx context.Context, t map[string]any) error {
				*tags = t
				return update(ctx, id, o)
			},
			del: func(ctx context.Context) error { return del(ctx, id) }})
	}
}

// mine tells the objects this bed's policy files make or may leave: owned by the CLI's owner (the others'
// are put aside) or named under the bed's prefix.
func (b *bed) mine(o zobj) bool {
	return o.tags[policies.OwnerTag] == polOwner || strings.HasPrefix(o.name, b.polPrefix)
}

// retag moves the objects and identity attributes owned by from, whose names pass keep, to owner to. It
// returns how many it moved.
func (b *bed) retag(ctx context.Context, from, to string, keep func(name string) bool) int {
	t := b.t
	n := 0
	for _, o := range b.zitiObjects(ctx) {
		if o.tags[policies.OwnerTag] != from || !keep(o.name) {
			continue
		}
		tags := maps.Clone(o.tags)
		tags[policies.OwnerTag] = to
		if err := o.retag(ctx, tags); err != nil {
			t.Errorf("re-tag %s %s %s=%s: %v", o.kind, o.name, policies.OwnerTag, to, err)
		}
		n++
	}
	key, toKey := policies.AttributesTag(from), policies.AttributesTag(to)
	ids, err := b.z.ListIdentities(ctx, "")
	testutil.Must(t, err)
	for _, in := range ids {
		v, ok := in.Tags[key]
		if !ok || !keep(in.Name) {
			continue
		}
		tags := maps.Clone(in.Tags)
		delete(tags, key)
		tags[toKey] = v
		if err := b.z.SetIdentityRoleAttributes(ctx, in.ID, in.RoleAttributes, tags); err != nil {
			t.Errorf("re-tag identity %s: %v", in.Name, err)
		}
		n++
	}
	return n
}

// resetPolicies deletes this bed's OpenZiti objects and gives its identities back their state before any run
// (deleted and created again: no attribute, no tag). Nothing else of the bed changes.
func (b *bed) resetPolicies() {
	t := b.t
	t.Helper()
	if b.polPrefix == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b.clearPolicies(ctx)
	for _, p := range polIdentities {
		in := ziti.Identity{Name: b.polPrefix + p.name}
		if p.path != "" {
			in.ExternalID = b.polTD + "/" + p.path
		}
		_, err := b.z.CreateIdentity(ctx, in)
		testutil.Must(t, err)
	}
}

// clearPolicies deletes this bed's OpenZiti objects and identities.
func (b *bed) clearPolicies(ctx context.Context) {
	for _, o := range b.zitiObjects(ctx) {
		if b.mine(o) {
			if err := o.del(ctx); err != nil && !ziti.IsNotFound(err) {
				b.t.Errorf("delete %s %s: %v", o.kind, o.name, err)
			}
		}
	}
	ids, err := b.z.ListIdentities(ctx, `name contains `+ziti.Quote(b.polPrefix))
	testutil.Must(b.t, err)
	for _, in := range ids {
		if err := b.z.DeleteIdentity(ctx, in.ID); err != nil && !ziti.IsNotFound(err) {
			b.t.Errorf("delete identity %s: %v", in.Name, err)
		}
	}
}

// policyState adds this bed's OpenZiti objects and identities to s, counting natural keys with count.
func (b *bed) policyState(ctx context.Context, s *state, count func(string)) {
	for _, o := range b.zitiObjects(ctx) {
		if b.mine(o) {
			s.Ziti = append(s.Ziti, o.desc)
			count(o.kind + " " + o.name)
		}
	}
	ids, err := b.z.ListIdentities(ctx, `name contains `+ziti.Quote(b.polPrefix))
	testutil.Must(b.t, err)
	for _, in := range ids {
		s.Identities = append(s.Identities, fmt.Sprintf("%s ext=%s roles=%v tags=%v", in.Name, in.ExternalID, sortedCopy(in.RoleAttributes), sortedMap(in.Tags)))
		count("identity " + in.Name)
	}
	sort.Strings(s.Ziti)
	sort.Strings(s.Identities)
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	sort.Strings(out)
	return out
}

// declares is whether the OpenZiti objects of s (kind and name) are exactly those the policy file declares
// (inline configs and the router policies of its defaults included); it says what differs.
func (b *bed) declares(file string, s state) bool {
	pol, err := policyfile.LoadFile(file)
	testutil.Must(b.t, err)
	want := slices.Concat(
		keyed(policies.KindConfig, pol.Configs, func(x ziti.Config) string { return x.Name }),
		keyed(policies.KindService, pol.Services, func(x ziti.Service) string { return x.Name }),
		keyed(policies.KindPostureCheck, pol.PostureChecks, func(x ziti.PostureCheck) string { return x.Name }),
		keyed(policies.KindServicePolicy, pol.ServicePolicies, func(x ziti.ServicePolicy) string { return x.Name }),
		keyed(policies.KindEdgeRouterPolicy, pol.EdgeRouterPolicies, func(x ziti.EdgeRouterPolicy) string { return x.Name }),
		keyed(policies.KindServiceEdgeRouterPolicy, pol.ServiceEdgeRouterPolicies, func(x ziti.ServiceEdgeRouterPolicy) string { return x.Name }))
	var got []string
	for _, d := range s.Ziti {
		f := strings.Fields(d)
		got = append(got, f[0]+" "+f[1])
	}
	sort.Strings(want)
	sort.Strings(got)
	if !slices.Equal(want, got) {
		b.t.Errorf("the OpenZiti objects are not those %s declares:\n  declared: %v\n  found:    %v", file, want, got)
		return false
	}
	return true
}

// keyed lists "kind name" of each of xs.
func keyed[T any](kind string, xs []T, name func(T) string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = kind + " " + name(x)
	}
	return out
}
