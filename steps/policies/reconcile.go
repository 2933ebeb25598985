package policies

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/policyfile"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

// reconciliation is the outcome of reconcile: the ops in apply order, the names known so far, and notes.
type reconciliation struct {
	ops   []op
	ids   *resolver
	notes []string
}

// differ compares a policy with the observed state. It makes no call.
type differ struct {
	pol      *policyfile.Policy
	owner    string
	obs      *observed
	ids      *resolver
	ops      []op
	notes    []string
	problems []string
}

// reconcile sorts the declared objects against the observed ones into creates, updates and deletes. Only
// objects owned by owner are updated or deleted; a declared object whose name another owner uses fails the
// plan, as does a role naming an object that does not exist.
func reconcile(pol *policyfile.Policy, owner string, obs *observed) (*reconciliation, error) {
	d := &differ{pol: pol, owner: owner, obs: obs, ids: newResolver()}
	d.seed()
	d.checkRefs()
	d.configs()
	d.postureChecks()
	d.services()
	d.identities()
	d.servicePolicies()
	d.edgeRouterPolicies()
	d.serviceEdgeRouterPolicies()
	if len(d.problems) > 0 {
		return nil, errors.New(strings.Join(d.problems, "\n"))
	}
	sort.SliceStable(d.ops, func(i, j int) bool { return d.ops[i].phase < d.ops[j].phase })
	return &reconciliation{ops: d.ops, ids: d.ids, notes: d.notes}, nil
}

func (d *differ) seed() {
	for _, x := range d.obs.configTypes {
		d.ids.set(kindConfigType, x.Name, x.ID)
	}
	for _, x := range d.obs.configs {
		d.ids.set(KindConfig, x.Name, x.ID)
	}
	for _, x := range d.obs.services {
		d.ids.set(KindService, x.Name, x.ID)
	}
	for _, x := range d.obs.posture {
		d.ids.set(KindPostureCheck, x.Name, x.ID)
	}
	for _, x := range d.obs.identities {
		d.ids.set(KindIdentity, x.Name, x.ID)
	}
	for _, x := range d.obs.routers {
		d.ids.set(policyfile.RefRouter, x.Name, x.ID)
	}
}

func (d *differ) problem(where policyfile.Problem, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if where.File != "" {
		msg = fmt.Sprintf("%s:%d: %s: %s", where.File, where.Line, where.Path, msg)
	}
	d.problems = append(d.problems, msg)
}

// checkRefs checks that what the file names but does not define exists on the controller.
func (d *differ) checkRefs() {
	for _, r := range d.pol.Refs {
		kind := KindIdentity
		if r.Kind == policyfile.RefRouter {
			kind = policyfile.RefRouter
		}
		if _, err := d.ids.get(kind, r.Name); err != nil {
			d.problem(r.At, "the controller has no %s named %q; create it first, or remove the role", r.Kind, r.Name)
		}
	}
	for _, e := range []struct {
		kind  string
		names []string
	}{{KindService, d.pol.External.Services}, {KindPostureCheck, d.pol.External.PostureChecks}, {KindConfig, d.pol.External.Configs}} {
		for _, n := range e.names {
			if _, err := d.ids.get(e.kind, n); err != nil {
				d.problem(d.pol.Declared(policyfile.ExternalKind(e.kind), n), "listed as external, but the controller has no %s named %q", kindWord(e.kind), n)
			}
		}
	}
	for _, t := range []string{ziti.ConfigTypeIntercept, ziti.ConfigTypeHost} {
		if _, err := d.ids.get(kindConfigType, t); err != nil && slices.ContainsFunc(d.pol.Configs, func(c ziti.Config) bool { return c.ConfigTypeName == t }) {
			d.problems = append(d.problems, fmt.Sprintf("the controller has no config type %s (is it an OpenZiti controller of version 0.19 or later?)", t))
		}
	}
}

func (d *differ) owns(tags map[string]any) bool {
	v, _ := tags[OwnerTag].(string)
	return v == d.owner
}

// tags are the tags to write on an owned object: its own, with the owner tag.
func (d *differ) tags(have map[string]any) map[string]any {
	out := maps.Clone(have)
	if out == nil {
		out = map[string]any{}
	}
	out[OwnerTag] = d.owner
	return out
}

func (d *differ) foreign(kind, name, id string, tags map[string]any) {
	by := "no " + OwnerTag + " tag"
	if v, ok := tags[OwnerTag]; ok {
		by = fmt.Sprintf("tag %s=%v", OwnerTag, v)
	}
	d.problem(d.pol.Declared(kind, name), "%s %q (id %s) exists but is not owned by this policy file (%s, not %s=%s): rename it in the file, "+
		"delete it, or hand it over by setting that tag (it will then be overwritten)", kindWord(kind), name, id, by, OwnerTag, d.owner)
}

func (d *differ) add(phase int, ch steps.Change, run func(ctx context.Context, api API, ids *resolver) error) {
	d.ops = append(d.ops, op{phase: phase, change: ch, run: run})
}

func (d *differ) isExternal(kind, name string) bool {
	_, ok := d.pol.Where[policyfile.ExternalKind(kind)+"\x00"+name]
	return ok
}

// deletes plans the deletion of owned objects the file does not declare (objects listed as external are kept).
func deletes[T any](d *differ, kind string, phase int, have []T, declared map[string]bool, get func(T) (name, id string, tags map[string]any),
	del func(API, context.Context, string) error) {
	var stale []T
	for _, h := range have {
		name, _, tags := get(h)
		if !d.owns(tags) || declared[name] {
			continue
		}
		if d.isExternal(kind, name) {
			d.notes = append(d.notes, fmt.Sprintf("%s %s is owned by this policy file but listed as external: left as it is", kindWord(kind), name))
			continue
		}
		stale = append(stale, h)
	}
	sort.SliceStable(stale, func(i, j int) bool { a, _, _ := get(stale[i]); b, _, _ := get(stale[j]); return a < b })
	for _, h := range stale {
		name, id, _ := get(h)
		d.add(phase, steps.Change{Action: steps.Delete, Kind: kind, Key: name, Reason: "not declared (id " + id + ")"},
			func(ctx context.Context, api API, _ *resolver) error { return del(api, ctx, id) })
	}
}

// diffs collects the differing fields of one object, with before and after for the plan.
type diffs struct {
	diff    steps.Diff
	details []string
}

func (f *diffs) check(name string, differs bool, before, after any) {
	if !differs {
		return
	}
	f.diff.Add(true, name, before, after)
	b, okB := before.([]string)
	a, okA := after.([]string)
	if !okA || !okB {
		f.details = append(f.details, fmt.Sprintf("%s %s → %s", name, show(before), show(after)))
		return
	}
	// A set: say what is added and removed.
	var parts []string
	if add := minus(a, b); len(add) > 0 {
		parts = append(parts, "add "+show(add))
	}
	if del := minus(b, a); len(del) > 0 {
		parts = append(parts, "remove "+show(del))
	}
	f.details = append(f.details, name+" "+strings.Join(parts, ", "))
}

func (f *diffs) change(kind, key string) steps.Change {
	return steps.Change{Action: steps.Update, Kind: kind, Key: key, Reason: "differs: " + strings.Join(f.details, "; ")}.WithDiff(f.diff)
}

func show(v any) string {
	var s string
	switch x := v.(type) {
	case string:
		s = fmt.Sprintf("%q", x)
	case []string:
		s = "[" + strings.Join(x, " ") + "]"
	case nil:
		s = "(none)"
	case bool, int, int64:
		s = fmt.Sprint(x)
	default:
		if j, err := ziti.CanonicalJSON(x); err == nil {
			s = j
		} else {
			s = fmt.Sprint(x)
		}
	}
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	sort.Strings(out)
	if out == nil {
		out = []string{}
	}
	return out
}

// kindRules says how reconcileKind sorts the declared objects of one kind against the observed ones.
type kindRules[T any] struct {
	kind            string
	phase, delPhase int // the phase of creates and updates, and of deletes
	// ident gives an object's name, id and tags.
	ident func(T) (name, id string, tags map[string]any)
	// missing is the reason of a create.
	missing func(want T) string
	// system, when set, tells objects of the controller's own that are never owned (optional).
	system func(have T) bool
	// mismatch, when set, says why have cannot become want ("" when it can; optional).
	mismatch func(have, want T) string
	// diff records the fields that differ between have and want.
	diff func(f *diffs, have, want T)
	// write creates want (have is the zero T) or updates have to want, with these tags.
	write func(want, have T, tags map[string]any) runFn
	del   func(api API, ctx context.Context, id string) error
	// list lists the objects of the kind that match a filter (to look up the one a create collided with).
	list func(api API, ctx context.Context, filter string) ([]T, error)
}

// runFn is the write of one op.
type runFn = func(ctx context.Context, api API, ids *resolver) error

// reconcileKind plans the creates and updates of the declared objects of one kind (in the file's order), then
// the deletes of the owned ones it no longer declares.
func reconcileKind[T any](d *differ, r kindRules[T], observed, declaredObjs []T) {
	if r.system == nil {
		r.system = func(T) bool { return false }
	}
	system := r.system
	have := map[string]T{}
	for _, h := range observed {
		name, _, _ := r.ident(h)
		have[name] = h
	}
	declared := map[string]bool{}
	for _, want := range declaredObjs {
		name, _, _ := r.ident(want)
		declared[name] = true
		h, ok := have[name]
		if !ok {
			d.add(r.phase, steps.Change{Action: steps.Create, Kind: r.kind, Key: name, Reason: r.missing(want)},
				r.createOrAdopt(d, want))
			continue
		}
		_, id, tags := r.ident(h)
		switch m := r.mismatched(h, want); {
		case system(h) || !d.owns(tags):
			d.foreign(r.kind, name, id, tags)
		case m != "":
			d.problem(d.pol.Declared(r.kind, name), "%s", m)
		default:
			var f diffs
			r.diff(&f, h, want)
			if len(f.diff) > 0 {
				d.add(r.phase, f.change(r.kind, name), r.write(want, h, d.tags(tags)))
			}
		}
	}
	deletes(d, r.kind, r.delPhase, observed, declared,
		func(h T) (string, string, map[string]any) {
			name, id, tags := r.ident(h)
			if system(h) {
				return name, id, nil // never ours
			}
			return name, id, tags
		}, r.del)
}

// mismatched says why have cannot become want ("" when it can, or the kind has no such rule).
func (r kindRules[T]) mismatched(have, want T) string {
	if r.mismatch == nil {
		return ""
	}
	return r.mismatch(have, want)
}

// createOrAdopt is the write that creates want. When the controller refuses it because the name is taken by
// an object the plan did not see, it looks that object up by name. One this owner tagged is the create of an
// earlier run, killed while that write was in flight, which the controller carried out after this run had
// listed: it is taken over, and updated when it differs from want. Any other keeps the error, saying whose it is.
func (r kindRules[T]) createOrAdopt(d *differ, want T) runFn {
	create := r.write(want, *new(T), map[string]any{OwnerTag: d.owner})
	return func(ctx context.Context, api API, ids *resolver) error {
		err := create(ctx, api, ids)
		if err == nil || !ziti.IsConflict(err) {
			return err
		}
		name, _, _ := r.ident(want)
		found, lerr := r.list(api, ctx, ziti.FilterEq("name", name))
		if lerr != nil {
			return fmt.Errorf("%w; an object of this name appeared since the plan, and looking it up failed: %w", err, lerr)
		}
		if len(found) != 1 {
			return fmt.Errorf("%w; an object of this name appeared since the plan, and looking it up found %d: re-run to see who owns it", err, len(found))
		}
		h := found[0]
		_, id, tags := r.ident(h)
		if r.system(h) || !d.owns(tags) {
			return fmt.Errorf("%w; an object of this name (id %s) appeared since the plan, not tagged %s=%s: re-run to see who owns it", err, id, OwnerTag, d.owner)
		}
		if m := r.mismatched(h, want); m != "" {
			return fmt.Errorf("%w; it appeared since the plan, and %s", err, m)
		}
		ids.set(r.kind, name, id)
		var f diffs
		r.diff(&f, h, want)
		if len(f.diff) == 0 {
			return nil
		}
		return r.write(want, h, d.tags(tags))(ctx, api, ids)
	}
}

// Configs.

func (d *differ) configs() {
	reconcileKind(d, kindRules[ziti.Config]{
		kind: KindConfig, phase: phaseConfigs, delPhase: phaseDeleteConfigs,
		ident:   func(c ziti.Config) (string, string, map[string]any) { return c.Name, c.ID, c.Tags },
		missing: func(want ziti.Config) string { return "missing (" + want.ConfigTypeName + ")" },
		mismatch: func(h, want ziti.Config) string {
			return typeChange("config", want.Name, h.ConfigTypeName, want.ConfigTypeName)
		},
		diff: func(f *diffs, h, want ziti.Config) {
			keys := slices.Sorted(maps.Keys(want.Data))
			for k := range h.Data {
				if _, ok := want.Data[k]; !ok {
					keys = append(keys, k)
				}
			}
			for _, k := range keys {
				f.check("data."+k, !ziti.EqualJSON(h.Data[k], want.Data[k]), h.Data[k], want.Data[k])
			}
		},
		write: func(want, h ziti.Config, tags map[string]any) runFn {
			if h.ID != "" {
				want.ConfigTypeID, want.Tags = h.ConfigTypeID, tags
				return func(ctx context.Context, api API, _ *resolver) error { return api.UpdateConfig(ctx, h.ID, want) }
			}
			return func(ctx context.Context, api API, ids *resolver) error {
				want := want
				tid, err := ids.get(kindConfigType, want.ConfigTypeName)
				if err != nil {
					return err
				}
				want.ConfigTypeID, want.Tags = tid, tags
				id, err := api.CreateConfig(ctx, want)
				if err == nil {
					ids.set(KindConfig, want.Name, id)
				}
				return err
			}
		},
		del:  API.DeleteConfig,
		list: API.ListConfigs,
	}, d.obs.configs, d.pol.Configs)
}

// Posture checks.

func (d *differ) postureChecks() {
	reconcileKind(d, kindRules[ziti.PostureCheck]{
		kind: KindPostureCheck, phase: phaseConfigs, delPhase: phaseDeleteServices,
		ident:   func(c ziti.PostureCheck) (string, string, map[string]any) { return c.Name, c.ID, c.Tags },
		missing: func(want ziti.PostureCheck) string { return "missing (" + want.Type + ")" },
		mismatch: func(h, want ziti.PostureCheck) string {
			return typeChange("posture check", want.Name, h.Type, want.Type)
		},
		diff: func(f *diffs, h, want ziti.PostureCheck) {
			f.check("roleAttributes", !ziti.EqualSets(h.RoleAttributes, want.RoleAttributes), sortedCopy(h.RoleAttributes), sortedCopy(want.RoleAttributes))
			if want.Type == ziti.PostureCheckOS {
				f.check("operatingSystems", !ziti.EqualJSON(osList(h.OperatingSystems), osList(want.OperatingSystems)), osList(h.OperatingSystems), osList(want.OperatingSystems))
			} else {
				f.check("macAddresses", !ziti.EqualSets(h.MACAddresses, want.MACAddresses), sortedCopy(h.MACAddresses), sortedCopy(want.MACAddresses))
			}
		},
		write: func(want, h ziti.PostureCheck, tags map[string]any) runFn {
			want.Tags = tags
			if h.ID != "" {
				return func(ctx context.Context, api API, _ *resolver) error { return api.UpdatePostureCheck(ctx, h.ID, want) }
			}
			return func(ctx context.Context, api API, ids *resolver) error {
				id, err := api.CreatePostureCheck(ctx, want)
				if err == nil {
					ids.set(KindPostureCheck, want.Name, id)
				}
				return err
			}
		},
		del:  API.DeletePostureCheck,
		list: API.ListPostureChecks,
	}, d.obs.posture, d.pol.PostureChecks)
}

// typeChange is the problem of an object whose type differs from the file's, which the controller cannot change
// ("" when it does not differ).
func typeChange(kind, name, have, want string) string {
	if have == want {
		return ""
	}
	return fmt.Sprintf("%s %q is of type %s on the controller, and %s in the file: a %s's type cannot change; give it a new name", kind, name, have, want, kind)
}

// osList is the comparable form of an OS check's systems: versions sorted, no nil lists.
func osList(in []ziti.OperatingSystem) []map[string]any {
	out := make([]map[string]any, 0, len(in))
	for _, o := range in {
		out = append(out, map[string]any{"type": o.Type, "versions": sortedCopy(o.Versions)})
	}
	return out
}

// Services.

func (d *differ) services() {
	configName := map[string]string{}
	for _, c := range d.obs.configs {
		configName[c.ID] = c.Name
	}
	reconcileKind(d, kindRules[ziti.Service]{
		kind: KindService, phase: phaseServices, delPhase: phaseDeleteServices,
		ident:   func(s ziti.Service) (string, string, map[string]any) { return s.Name, s.ID, s.Tags },
		missing: func(ziti.Service) string { return "missing" },
		diff: func(f *diffs, h, want ziti.Service) {
			haveCfgs := make([]string, 0, len(h.Configs))
			for _, id := range h.Configs {
				n := configName[id]
				if n == "" {
					n = "id:" + id
				}
				haveCfgs = append(haveCfgs, n)
			}
			f.check("configs", !ziti.EqualSets(haveCfgs, want.Configs), sortedCopy(haveCfgs), sortedCopy(want.Configs))
			f.check("roleAttributes", !ziti.EqualSets(h.RoleAttributes, want.RoleAttributes), sortedCopy(h.RoleAttributes), sortedCopy(want.RoleAttributes))
			f.check("encryptionRequired", h.EncryptionRequired != want.EncryptionRequired, h.EncryptionRequired, want.EncryptionRequired)
			f.check("terminatorStrategy", h.TerminatorStrategy != want.TerminatorStrategy, h.TerminatorStrategy, want.TerminatorStrategy)
			f.check("maxIdleTimeMillis", h.MaxIdleTimeMillis != want.MaxIdleTimeMillis, h.MaxIdleTimeMillis, want.MaxIdleTimeMillis)
		},
		write: func(want, h ziti.Service, tags map[string]any) runFn { return writeService(want, h.ID, tags) },
		del:   API.DeleteService,
		list:  API.ListServices,
	}, d.obs.services, d.pol.Services)
}

// writeService resolves want's config names to ids and creates the service (id "") or updates service id.
func writeService(want ziti.Service, id string, tags map[string]any) runFn {
	return func(ctx context.Context, api API, ids *resolver) error {
		want := want
		cfgs := make([]string, 0, len(want.Configs))
		for _, n := range want.Configs {
			cid, err := ids.get(KindConfig, n)
			if err != nil {
				return err
			}
			cfgs = append(cfgs, cid)
		}
		want.Configs, want.Tags = cfgs, tags
		if id != "" {
			return api.UpdateService(ctx, id, want)
		}
		nid, err := api.CreateService(ctx, want)
		if err == nil {
			ids.set(KindService, want.Name, nid)
		}
		return err
	}
}

// Identities' role attributes.

// identities plans, for every identity, the role attributes the file gives it (by name and by rules), adding
// those missing and removing those this owner added earlier that the file no longer gives. The attributes it
// added are listed in the tag AttributesTag(owner); attributes it did not add are never removed.
func (d *differ) identities() {
	key := AttributesTag(d.owner)
	ruleHits := make([]int, len(d.pol.Rules))
	seen := map[string]bool{}
	var badNotes []string
	for _, in := range d.obs.identities {
		want := slices.Clone(d.pol.Identities[in.Name])
		if _, named := d.pol.Identities[in.Name]; named {
			seen[in.Name] = true
		}
		for i, r := range d.pol.Rules {
			attrs, bad, ok := r.Match(in.ExternalID)
			if !ok {
				continue
			}
			ruleHits[i]++
			want = append(want, attrs...)
			for _, b := range bad {
				badNotes = append(badNotes, fmt.Sprintf("identity %s: rule %s gives %q, which is not a valid role attribute: skipped", in.Name, r.Pattern, b))
			}
		}
		want = policyfile.UniqueSorted(want)
		prev := splitAttrs(in.Tags[key])
		_, tagged := in.Tags[key]
		if len(want) == 0 && !tagged {
			continue
		}
		cur := in.RoleAttributes
		add := minus(want, cur)
		remove := intersect(minus(prev, want), cur)
		forget := minus(minus(prev, want), cur) // added earlier, removed by hand since, no longer wanted
		attrs := append(minus(cur, remove), add...)
		managed := policyfile.UniqueSorted(append(intersect(prev, want), add...))
		if len(add) == 0 && len(remove) == 0 && ziti.EqualSets(managed, prev) {
			continue
		}
		var (
			fields steps.Diff
			why    []string
		)
		fields.Add(len(add) > 0 || len(remove) > 0, "roleAttributes", sortedCopy(cur), sortedCopy(attrs))
		fields.Add(true, "tags."+key, in.Tags[key], strings.Join(managed, ","))
		if len(add) > 0 {
			why = append(why, "add "+show(add))
		}
		if len(remove) > 0 {
			why = append(why, "remove "+show(remove))
		}
		if len(forget) > 0 {
			why = append(why, "forget "+show(forget)+" (removed by hand)")
		}
		if kept := minus(intersect(want, cur), prev); len(kept) > 0 {
			why = append(why, "keep "+show(kept)+" (already there, not added by this file)")
		}
		tags := maps.Clone(in.Tags)
		if tags == nil {
			tags = map[string]any{}
		}
		tags[key] = strings.Join(managed, ",")
		id := in.ID
		sort.Strings(attrs)
		d.add(phaseServices, steps.Change{Action: steps.Update, Kind: KindIdentity, Key: in.Name, Reason: strings.Join(why, "; ")}.WithDiff(fields),
			func(ctx context.Context, api API, _ *resolver) error {
				return api.SetIdentityRoleAttributes(ctx, id, attrs, tags)
			})
	}
	for _, n := range slices.Sorted(maps.Keys(d.pol.Identities)) {
		if !seen[n] {
			d.notes = append(d.notes, fmt.Sprintf("identity %s (%s) does not exist yet: its role attributes are set once it does (re-run)", n, policyfile.At(d.pol.Declared(KindIdentity, n))))
		}
	}
	for i, r := range d.pol.Rules {
		d.notes = append(d.notes, fmt.Sprintf("identity rule %s matches %d identit%s", r.Pattern, ruleHits[i], map[bool]string{true: "y", false: "ies"}[ruleHits[i] == 1]))
	}
	d.notes = append(d.notes, badNotes...)
}

func splitAttrs(v any) []string {
	s, _ := v.(string)
	if s == "" {
		return nil
	}
	return policyfile.UniqueSorted(strings.Split(s, ","))
}

// minus returns the elements of a not in b, in a's order.
func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// Policies.

func (d *differ) servicePolicies() {
	reconcileKind(d, kindRules[ziti.ServicePolicy]{
		kind: KindServicePolicy, phase: phasePolicies, delPhase: phaseDeletePolicies,
		ident:   func(p ziti.ServicePolicy) (string, string, map[string]any) { return p.Name, p.ID, p.Tags },
		missing: func(want ziti.ServicePolicy) string { return "missing (" + want.Type + ")" },
		diff: func(f *diffs, h, want ziti.ServicePolicy) {
			f.check("type", h.Type != want.Type, h.Type, want.Type)
			f.check("semantic", h.Semantic != want.Semantic, h.Semantic, want.Semantic)
			f.check("identityRoles", !ziti.EqualSets(h.IdentityRoleNames, want.IdentityRoles), sortedCopy(h.IdentityRoleNames), sortedCopy(want.IdentityRoles))
			f.check("serviceRoles", !ziti.EqualSets(h.ServiceRoleNames, want.ServiceRoles), sortedCopy(h.ServiceRoleNames), sortedCopy(want.ServiceRoles))
			f.check("postureCheckRoles", !ziti.EqualSets(h.PostureCheckRoleNames, want.PostureCheckRoles), sortedCopy(h.PostureCheckRoleNames), sortedCopy(want.PostureCheckRoles))
		},
		write: func(want, h ziti.ServicePolicy, tags map[string]any) runFn {
			want.Tags = tags
			return writePolicy(want, h.ID, func(p *ziti.ServicePolicy, ids *resolver) (err error) {
				if p.IdentityRoles, err = ids.roles(KindIdentity, p.IdentityRoles); err != nil {
					return err
				}
				if p.ServiceRoles, err = ids.roles(KindService, p.ServiceRoles); err != nil {
					return err
				}
				p.PostureCheckRoles, err = ids.roles(KindPostureCheck, p.PostureCheckRoles)
				return err
			}, API.CreateServicePolicy, API.UpdateServicePolicy)
		},
		del:  API.DeleteServicePolicy,
		list: API.ListServicePolicies,
	}, d.obs.sps, d.pol.ServicePolicies)
}

func (d *differ) edgeRouterPolicies() {
	reconcileKind(d, kindRules[ziti.EdgeRouterPolicy]{
		kind: KindEdgeRouterPolicy, phase: phasePolicies, delPhase: phaseDeletePolicies,
		ident:   func(p ziti.EdgeRouterPolicy) (string, string, map[string]any) { return p.Name, p.ID, p.Tags },
		missing: func(ziti.EdgeRouterPolicy) string { return "missing" },
		system:  func(p ziti.EdgeRouterPolicy) bool { return p.IsSystem },
		diff: func(f *diffs, h, want ziti.EdgeRouterPolicy) {
			f.check("semantic", h.Semantic != want.Semantic, h.Semantic, want.Semantic)
			f.check("identityRoles", !ziti.EqualSets(h.IdentityRoleNames, want.IdentityRoles), sortedCopy(h.IdentityRoleNames), sortedCopy(want.IdentityRoles))
			f.check("edgeRouterRoles", !ziti.EqualSets(h.EdgeRouterRoleNames, want.EdgeRouterRoles), sortedCopy(h.EdgeRouterRoleNames), sortedCopy(want.EdgeRouterRoles))
		},
		write: func(want, h ziti.EdgeRouterPolicy, tags map[string]any) runFn {
			want.Tags = tags
			return writePolicy(want, h.ID, func(p *ziti.EdgeRouterPolicy, ids *resolver) (err error) {
				if p.IdentityRoles, err = ids.roles(KindIdentity, p.IdentityRoles); err != nil {
					return err
				}
				p.EdgeRouterRoles, err = ids.roles(policyfile.RefRouter, p.EdgeRouterRoles)
				return err
			}, API.CreateEdgeRouterPolicy, API.UpdateEdgeRouterPolicy)
		},
		del:  API.DeleteEdgeRouterPolicy,
		list: API.ListEdgeRouterPolicies,
	}, d.obs.erps, d.pol.EdgeRouterPolicies)
}

func (d *differ) serviceEdgeRouterPolicies() {
	reconcileKind(d, kindRules[ziti.ServiceEdgeRouterPolicy]{
		kind: KindServiceEdgeRouterPolicy, phase: phasePolicies, delPhase: phaseDeletePolicies,
		ident:   func(p ziti.ServiceEdgeRouterPolicy) (string, string, map[string]any) { return p.Name, p.ID, p.Tags },
		missing: func(ziti.ServiceEdgeRouterPolicy) string { return "missing" },
		diff: func(f *diffs, h, want ziti.ServiceEdgeRouterPolicy) {
			f.check("semantic", h.Semantic != want.Semantic, h.Semantic, want.Semantic)
			f.check("serviceRoles", !ziti.EqualSets(h.ServiceRoleNames, want.ServiceRoles), sortedCopy(h.ServiceRoleNames), sortedCopy(want.ServiceRoles))
			f.check("edgeRouterRoles", !ziti.EqualSets(h.EdgeRouterRoleNames, want.EdgeRouterRoles), sortedCopy(h.EdgeRouterRoleNames), sortedCopy(want.EdgeRouterRoles))
		},
		write: func(want, h ziti.ServiceEdgeRouterPolicy, tags map[string]any) runFn {
			want.Tags = tags
			return writePolicy(want, h.ID, func(p *ziti.ServiceEdgeRouterPolicy, ids *resolver) (err error) {
				if p.ServiceRoles, err = ids.roles(KindService, p.ServiceRoles); err != nil {
					return err
				}
				p.EdgeRouterRoles, err = ids.roles(policyfile.RefRouter, p.EdgeRouterRoles)
				return err
			}, API.CreateServiceEdgeRouterPolicy, API.UpdateServiceEdgeRouterPolicy)
		},
		del:  API.DeleteServiceEdgeRouterPolicy,
		list: API.ListServiceEdgeRouterPolicies,
	}, d.obs.serps, d.pol.ServiceEdgeRouterPolicies)
}

// writePolicy creates want (id "") or updates policy id, once resolve has replaced its role names with ids.
func writePolicy[T any](want T, id string, resolve func(p *T, ids *resolver) error,
	create func(API, context.Context, T) (string, error), update func(API, context.Context, string, T) error) runFn {
	return func(ctx context.Context, api API, ids *resolver) error {
		want := want
		if err := resolve(&want, ids); err != nil {
			return err
		}
		if id != "" {
			return update(api, ctx, id, want)
		}
		_, err := create(api, ctx, want)
		return err
	}
}
