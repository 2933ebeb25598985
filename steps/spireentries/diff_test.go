package spireentries

import (
	"context"
	"crypto/x509"
	"errors"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spire"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

// fakeAPI records the calls a plan's apply makes; it must not be used for planning beyond ListEntries.
type fakeAPI struct {
	list  []spire.Entry
	calls []string
	fail  map[string]error // by entry ID
}

func (f *fakeAPI) ListEntries(context.Context) ([]spire.Entry, error) { return f.list, nil }
func (f *fakeAPI) BatchCreate(_ context.Context, e []spire.Entry) []error {
	return f.record("create", ids(e))
}
func (f *fakeAPI) BatchUpdate(_ context.Context, e []spire.Entry) []error {
	return f.record("update", ids(e))
}
func (f *fakeAPI) BatchDelete(_ context.Context, id []string) []error { return f.record("delete", id) }
func (f *fakeAPI) record(op string, ids []string) []error {
	f.calls = append(f.calls, op+" "+strings.Join(ids, ","))
	errs := make([]error, len(ids))
	for i, id := range ids {
		errs[i] = f.fail[id]
	}
	return errs
}

func ids(e []spire.Entry) []string {
	out := make([]string, len(e))
	for i := range e {
		out[i] = e[i].ID
	}
	return out
}

func mustDesired(t *testing.T, e ...Entry) []spire.Entry {
	t.Helper()
	d, err := Desired(td, "t-", e)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDiffSortsIntoCreateUpdateDeleteAndLeavesForeignAlone(t *testing.T) {
	d := mustDesired(t,
		Entry{SpiffeID: "spiffe://zb.test/new", Selectors: []string{"unix:uid:1"}},
		Entry{SpiffeID: "spiffe://zb.test/same", Selectors: []string{"unix:uid:2", "unix:gid:2"}, DNSNames: []string{"a", "b"}, FederatesWith: []string{"x.org", "y.org"}},
		Entry{SpiffeID: "spiffe://zb.test/changed", Selectors: []string{"unix:uid:3"}, X509SVIDTTL: 60},
	)
	same := d[1]
	same.Selectors = []spire.Selector{same.Selectors[1], same.Selectors[0]} // the server's order does not matter
	same.FederatesWith = []string{"y.org", "x.org"}
	changed := d[2]
	changed.X509SVIDTTL, changed.Hint = 3600, "old"
	stale := spire.Entry{ID: EntryID("t-", "spiffe://zb.test/old", NodeAlias(td), ""), SpiffeID: "spiffe://zb.test/old", ParentID: NodeAlias(td),
		Selectors: []spire.Selector{{Type: "unix", Value: "uid:9"}}}
	foreign := []spire.Entry{
		{ID: "8b1f0c1e-0000-4000-8000-000000000000", SpiffeID: "spiffe://zb.test/theirs", ParentID: NodeAlias(td), Selectors: []spire.Selector{{Type: "unix", Value: "uid:7"}}},
		{ID: "t-notours", SpiffeID: "spiffe://zb.test/theirs2", ParentID: NodeAlias(td), Selectors: []spire.Selector{{Type: "unix", Value: "uid:8"}}},
		{ID: "zb-" + strings.Repeat("a", 32), SpiffeID: "spiffe://zb.test/other-prefix", ParentID: NodeAlias(td), Selectors: []spire.Selector{{Type: "unix", Value: "uid:6"}}},
	}
	api := &fakeAPI{list: append([]spire.Entry{changed, stale, same}, foreign...)}
	s := &Step{api: api, prefix: "t-", desired: d}
	p, err := s.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := testutil.ChangeStrings(p.Changes)
	want := []string{
		"create spire-entry spiffe://zb.test/new (parent spiffe://zb.test/ziti-bootstrap/node): missing (entry " + d[0].ID + ")",
		"update spire-entry spiffe://zb.test/changed (parent spiffe://zb.test/ziti-bootstrap/node) (fields: [x509SvidTtl hint]): differs (entry " + d[2].ID + ")",
		"delete spire-entry spiffe://zb.test/old (parent spiffe://zb.test/ziti-bootstrap/node): not declared (entry " + stale.ID + ")",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if err := p.Apply(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantCalls := []string{"create " + d[0].ID, "update " + d[2].ID, "delete " + stale.ID}
	if !slices.Equal(api.calls, wantCalls) {
		t.Fatalf("calls %v, want %v", api.calls, wantCalls)
	}
}

func TestDiffConvergedIsEmpty(t *testing.T) {
	d := mustDesired(t, Entry{SpiffeID: "spiffe://zb.test/a", Selectors: []string{"unix:uid:1"}})
	api := &fakeAPI{list: d}
	p, err := (&Step{api: api, prefix: "t-", desired: d}).Plan(context.Background())
	if err != nil || !p.Empty() {
		t.Fatalf("plan %+v, %v", p, err)
	}
	p.Apply(context.Background())
	if len(api.calls) != 0 {
		t.Fatalf("calls on a converged server: %v", api.calls)
	}
}

func TestDiffForeignSimilarEntry(t *testing.T) {
	d := mustDesired(t, Entry{SpiffeID: "spiffe://zb.test/a", Selectors: []string{"unix:uid:1"}, X509SVIDTTL: 60})
	f := d[0]
	f.ID = "operator-made"
	// Same fields: served already; noted, nothing to do.
	p, err := (&Step{api: &fakeAPI{list: []spire.Entry{f}}, prefix: "t-", desired: d}).Plan(context.Background())
	if err != nil || !p.Empty() || len(p.Notes) != 1 || !strings.Contains(p.Notes[0], "operator-made") {
		t.Fatalf("plan %+v, %v", p, err)
	}
	// Different fields: SPIRE would refuse the create; planning fails and says what to delete.
	f.X509SVIDTTL = 3600
	_, err = (&Step{api: &fakeAPI{list: []spire.Entry{f}}, prefix: "t-", desired: d}).Plan(context.Background())
	if err == nil || !strings.Contains(err.Error(), "spire-server entry delete -entryID operator-made") || !strings.Contains(err.Error(), "x509SvidTtl") {
		t.Fatalf("conflict: %v", err)
	}
}

func TestRenameDeletesTheBlockingEntryFirst(t *testing.T) {
	old := mustDesired(t, Entry{SpiffeID: "spiffe://zb.test/a", Selectors: []string{"unix:uid:1"}, Name: "old"})
	d := mustDesired(t, Entry{SpiffeID: "spiffe://zb.test/a", Selectors: []string{"unix:uid:1"}, Name: "new"})
	api := &fakeAPI{list: old}
	p, err := (&Step{api: api, prefix: "t-", desired: d}).Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Changes) != 2 || p.Changes[0].Action != steps.Delete || p.Changes[1].Action != steps.Create {
		t.Fatalf("changes %v", p.Changes)
	}
	p.Apply(context.Background())
	if !slices.Equal(api.calls, []string{"delete " + old[0].ID, "create " + d[0].ID}) {
		t.Fatalf("calls %v", api.calls)
	}
}

func TestApplyJoinsPerItemErrorsAndGoesOn(t *testing.T) {
	d := mustDesired(t,
		Entry{SpiffeID: "spiffe://zb.test/a", Selectors: []string{"unix:uid:1"}},
		Entry{SpiffeID: "spiffe://zb.test/b", Selectors: []string{"unix:uid:2"}},
	)
	stale := d[1]
	stale.ID = EntryID("t-", "spiffe://zb.test/gone", NodeAlias(td), "")
	api := &fakeAPI{list: []spire.Entry{stale}, fail: map[string]error{
		d[0].ID:  &spire.ItemError{Op: "create entry", Item: d[0].ID, Code: codes.Internal, Message: "boom"},
		stale.ID: &spire.ItemError{Op: "delete entry", Item: stale.ID, Code: codes.NotFound, Message: "entry not found"},
	}}
	p, err := (&Step{api: api, prefix: "t-", desired: d}).Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	err = p.Apply(context.Background())
	if err == nil || !strings.Contains(err.Error(), "create spire-entry spiffe://zb.test/a") || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("apply: %v", err)
	}
	if strings.Contains(err.Error(), "not found") {
		t.Fatalf("deleting an entry that is already gone is not an error: %v", err)
	}
	if len(api.calls) != 2 { // the create batch (a, b) and the delete still ran
		t.Fatalf("calls %v", api.calls)
	}
	// AlreadyExists naming our own ID (a concurrent run made it) is success.
	api = &fakeAPI{fail: map[string]error{d[0].ID: &spire.ItemError{Code: codes.AlreadyExists, ExistingID: d[0].ID}}}
	p, _ = (&Step{api: api, prefix: "t-", desired: d[:1]}).Plan(context.Background())
	if err := p.Apply(context.Background()); err != nil {
		t.Fatalf("own entry already there: %v", err)
	}
	// ...but naming a foreign one is not.
	api = &fakeAPI{fail: map[string]error{d[0].ID: &spire.ItemError{Code: codes.AlreadyExists, ExistingID: "theirs"}}}
	p, _ = (&Step{api: api, prefix: "t-", desired: d[:1]}).Plan(context.Background())
	if err := p.Apply(context.Background()); err == nil || !errors.Is(err, api.fail[d[0].ID]) {
		t.Fatalf("foreign entry appeared: %v", err)
	}
}

// A run that does not know the node CAs (Config.NodeCAs nil: an operator's apply outside the Swarm) leaves the
// owned node alias entries as they are; a run that knows them replaces an alias of a CA that is gone.
func TestNodeAliasKeptWhenTheCAsAreUnknown(t *testing.T) {
	k := testutil.NewKey(t)
	oldCA := testutil.Issue(t, nil, nil, k, "swarm-ca-old", "", true)
	newCA := testutil.Issue(t, nil, nil, testutil.NewKey(t), "swarm-ca-new", "", true)
	aliased, err := Desired(td, DefaultIDPrefix, NodeAliasEntries(td, []*x509.Certificate{oldCA}))
	if err != nil {
		t.Fatal(err)
	}
	api := &fakeAPI{list: aliased}
	unknown, err := New(api, Config{TrustDomain: td})
	if err != nil {
		t.Fatal(err)
	}
	p, err := unknown.Plan(context.Background())
	if err != nil || !p.Empty() {
		t.Fatalf("CAs unknown: plan %v, %v; want no change", p, err)
	}
	known, err := New(api, Config{TrustDomain: td, NodeCAs: []*x509.Certificate{newCA}})
	if err != nil {
		t.Fatal(err)
	}
	p, err = known.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range p.Changes {
		got = append(got, string(c.Action))
	}
	if !slices.Equal(got, []string{"create", "delete"}) {
		t.Fatalf("CA replaced: changes %v; want create (new alias) then delete (old alias)", p.Changes)
	}
}
