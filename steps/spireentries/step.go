package spireentries

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spire"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/reach"
)

// Name is the step's name; it depends on "spire/reachable".
const Name = "spire/entries"

// Kind is the Change.Kind of registration entries.
const Kind = "spire-entry"

// API is what the step needs of the SPIRE server; *spire.Client has it.
type API interface {
	ListEntries(ctx context.Context) ([]spire.Entry, error)
	BatchCreate(ctx context.Context, entries []spire.Entry) []error
	BatchUpdate(ctx context.Context, entries []spire.Entry) []error
	BatchDelete(ctx context.Context, ids []string) []error
}

var _ API = (*spire.Client)(nil)

// Config is what the step converges to.
type Config struct {
	TrustDomain string
	Entries     []Entry // the declaration; nil or empty deletes every owned entry
	// IDPrefix marks owned entries (default DefaultIDPrefix). Only change it to run two independent
	// declarations against one SPIRE server (tests do, to stay out of each other's way).
	IDPrefix string
	// NodeCAs, when not nil, declare the node alias entries (NodeAliasEntries) in addition to Entries. When nil
	// the CAs are unknown to this run (e.g. an operator's apply outside the Swarm): owned node alias entries are
	// left as they are, neither updated nor deleted, so that every run converges to the same state.
	NodeCAs []*x509.Certificate
}

// Step reconciles SPIRE registration entries. Create it with New.
type Step struct {
	api       API
	prefix    string
	desired   []spire.Entry
	keepAlias func(spire.Entry) bool // owned entries left alone although undeclared
}

var _ steps.Step = (*Step)(nil)

// New validates cfg (no call is made) and returns the step.
func New(api API, cfg Config) (*Step, error) {
	if cfg.IDPrefix == "" {
		cfg.IDPrefix = DefaultIDPrefix
	}
	declared := cfg.Entries
	keep := func(spire.Entry) bool { return false }
	if cfg.NodeCAs != nil {
		declared = append(slices.Clone(declared), NodeAliasEntries(cfg.TrustDomain, cfg.NodeCAs)...)
	} else {
		keep = func(e spire.Entry) bool { return IsNodeAlias(cfg.TrustDomain, e) }
	}
	desired, err := Desired(cfg.TrustDomain, cfg.IDPrefix, declared)
	if err != nil {
		return nil, fmt.Errorf("%s: declaration: %w", Name, err)
	}
	return &Step{api: api, prefix: cfg.IDPrefix, desired: desired, keepAlias: keep}, nil
}

func (s *Step) Name() string        { return Name }
func (s *Step) DependsOn() []string { return []string{reach.Spire} }

// Plan lists the server's entries and returns the creates, updates and deletes that make the owned entries
// equal to the declaration. It writes nothing.
func (s *Step) Plan(ctx context.Context) (*steps.Plan, error) {
	current, err := s.api.ListEntries(ctx)
	if err != nil {
		return nil, err
	}
	d, err := diff(s.prefix, s.desired, current, s.keepAlias)
	if err != nil {
		return nil, err
	}
	return steps.NewPlan(d.changes(), d.apply(s.api)).AddNotes(d.notes...), nil
}

// reconciliation is the outcome of diff: what to write, in which order.
type reconciliation struct {
	earlyDelete []spire.Entry // owned, undeclared, and blocking the creation of a declared entry
	create      []spire.Entry
	update      []spire.Entry
	updFields   []steps.Diff
	delete      []spire.Entry
	notes       []string
}

// diff sorts the declared entries against the current ones. Only entries Owned by prefix are updated or
// deleted.
func diff(prefix string, desired, current []spire.Entry, keep func(spire.Entry) bool) (*reconciliation, error) {
	owned := map[string]spire.Entry{}
	foreign := map[string]spire.Entry{} // by natural key
	for _, e := range current {
		if Owned(prefix, e.ID) {
			owned[e.ID] = e
		} else {
			foreign[naturalKey(e)] = e
		}
	}
	r := &reconciliation{}
	declared := map[string]bool{}
	creating := map[string]bool{} // natural keys of entries to create
	var conflicts []error
	for _, want := range desired {
		declared[want.ID] = true
		if have, ok := owned[want.ID]; ok {
			if f := differingFields(want, have); len(f) > 0 {
				r.update = append(r.update, want)
				r.updFields = append(r.updFields, f)
			}
			continue
		}
		if f, ok := foreign[naturalKey(want)]; ok {
			if diffs := differingFields(want, f); len(diffs) > 0 {
				conflicts = append(conflicts, fmt.Errorf(
					"%s: SPIRE already has this entry (same SPIFFE ID, parent and selectors) as entry %s, which ziti-bootstrap does not own, with different %s; delete it (spire-server entry delete -entryID %s) so that ziti-bootstrap can create its own, or change the declaration to match",
					key(want), f.ID, strings.Join(diffs.Names(), ", "), f.ID))
			} else {
				r.notes = append(r.notes, fmt.Sprintf("%s is served by entry %s, which ziti-bootstrap does not own: left as it is", key(want), f.ID))
			}
			continue
		}
		r.create = append(r.create, want)
		creating[naturalKey(want)] = true
	}
	if len(conflicts) > 0 {
		return nil, errors.Join(conflicts...)
	}
	var stale []string
	for id, e := range owned {
		if !declared[id] && (keep == nil || !keep(e)) {
			stale = append(stale, id)
		}
	}
	sort.Strings(stale)
	for _, id := range stale {
		e := owned[id]
		if creating[naturalKey(e)] {
			r.earlyDelete = append(r.earlyDelete, e)
		} else {
			r.delete = append(r.delete, e)
		}
	}
	return r, nil
}

// differingFields lists the fields of have that differ from want (names as in the declaration).
func differingFields(want, have spire.Entry) steps.Diff {
	var f steps.Diff
	steps.Compare(&f, "spiffeId", have.SpiffeID, want.SpiffeID)
	steps.Compare(&f, "parentId", have.ParentID, want.ParentID)
	f.Add(!sameSelectors(want.Selectors, have.Selectors), "selectors", selectorStrings(have.Selectors), selectorStrings(want.Selectors))
	steps.Compare(&f, "x509SvidTtl", have.X509SVIDTTL, want.X509SVIDTTL)
	steps.Compare(&f, "jwtSvidTtl", have.JWTSVIDTTL, want.JWTSVIDTTL)
	f.Add(!slices.Equal(want.DNSNames, have.DNSNames), "dnsNames", have.DNSNames, want.DNSNames) // ordered: the first is the certificate's CN
	f.Add(!sameSet(want.FederatesWith, have.FederatesWith), "federatesWith", have.FederatesWith, want.FederatesWith)
	steps.Compare(&f, "admin", have.Admin, want.Admin)
	steps.Compare(&f, "downstream", have.Downstream, want.Downstream)
	steps.Compare(&f, "hint", have.Hint, want.Hint)
	return f
}

// selectorStrings returns the selectors as sorted "type:value" strings, for plans.
func selectorStrings(sel []spire.Selector) []string {
	out := make([]string, len(sel))
	for i, s := range sel {
		out[i] = s.Type + ":" + s.Value
	}
	slices.Sort(out)
	return out
}

func sameSelectors(a, b []spire.Selector) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	spire.SortSelectors(a)
	spire.SortSelectors(b)
	return slices.Equal(a, b)
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// key is an entry's natural identity for plans and messages.
func key(e spire.Entry) string {
	return e.SpiffeID + " (parent " + e.ParentID + ")"
}

func (r *reconciliation) changes() []steps.Change {
	var ch []steps.Change
	for _, e := range r.earlyDelete {
		ch = append(ch, steps.Change{Action: steps.Delete, Kind: Kind, Key: key(e),
			Reason: "entry " + e.ID + " is no longer declared, and its selectors are taken by a declared entry (deleted first)"})
	}
	for _, e := range r.create {
		ch = append(ch, steps.Change{Action: steps.Create, Kind: Kind, Key: key(e), Reason: "missing (entry " + e.ID + ")"})
	}
	for i, e := range r.update {
		ch = append(ch, steps.Change{Action: steps.Update, Kind: Kind, Key: key(e), Reason: "differs (entry " + e.ID + ")"}.WithDiff(r.updFields[i]))
	}
	for _, e := range r.delete {
		ch = append(ch, steps.Change{Action: steps.Delete, Kind: Kind, Key: key(e), Reason: "not declared (entry " + e.ID + ")"})
	}
	return ch
}

// apply returns the function that carries out exactly r: deletes that unblock creates, creates, updates,
// deletes. A failed item does not stop the others; all failures are joined.
func (r *reconciliation) apply(api API) func(context.Context) error {
	return func(ctx context.Context) error {
		var errs []error
		del := func(entries []spire.Entry) {
			if len(entries) == 0 {
				return
			}
			ids := make([]string, len(entries))
			for i, e := range entries {
				ids[i] = e.ID
			}
			for i, err := range api.BatchDelete(ctx, ids) {
				if err != nil && !spire.IsNotFound(err) { // already gone is what we wanted
					errs = append(errs, fmt.Errorf("delete %s %s: %w", Kind, key(entries[i]), err))
				}
			}
		}
		del(r.earlyDelete)
		if len(r.create) > 0 {
			for i, err := range api.BatchCreate(ctx, r.create) {
				var ie *spire.ItemError
				if errors.As(err, &ie) && ie.ExistingID == r.create[i].ID {
					continue // created meanwhile by a concurrent run: it is ours and it is there
				}
				if err != nil {
					if spire.IsAlreadyExists(err) {
						err = fmt.Errorf("%w; another tool created it since the plan: delete that entry or re-run to see the conflict", err)
					}
					errs = append(errs, fmt.Errorf("create %s %s: %w", Kind, key(r.create[i]), err))
				}
			}
		}
		if len(r.update) > 0 {
			for i, err := range api.BatchUpdate(ctx, r.update) {
				if err != nil {
					if spire.IsNotFound(err) {
						err = fmt.Errorf("%w; it was deleted since the plan: re-run to create it", err)
					}
					errs = append(errs, fmt.Errorf("update %s %s: %w", Kind, key(r.update[i]), err))
				}
			}
		}
		del(r.delete)
		return errors.Join(errs...)
	}
}
