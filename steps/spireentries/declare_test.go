package spireentries

import (
	"context"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spire"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/yamlguard"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

const td = "zb.test"

func TestDefaultsAreValid(t *testing.T) {
	d, err := Desired(td, DefaultIDPrefix, Defaults(td, "zbz"))
	if err != nil {
		t.Fatal(err)
	}
	if len(d) != 3 || d[0].SpiffeID != "spiffe://zb.test/ziti-router" || d[0].ParentID != "spiffe://zb.test/ziti-bootstrap/node" ||
		d[0].Selectors[0].String() != "docker:label:com.docker.swarm.service.name:zbz_ziti-router" || !Owned(DefaultIDPrefix, d[0].ID) ||
		d[1].SpiffeID != "spiffe://zb.test/ziti-bootstrap/router-enrol" || d[1].Selectors[0].String() != "docker:label:com.docker.swarm.service.name:zbz_router-enrol" {
		t.Fatalf("defaults: %+v", d)
	}
}

// The node alias entries map every agent attested with a node certificate of a CA to the node alias: one entry per
// CA, parented to the server, selecting x509pop's CA fingerprint (SHA-1 of the DER, as SPIRE computes it).
func TestNodeAliasEntries(t *testing.T) {
	k1, k2 := testutil.NewKey(t), testutil.NewKey(t)
	ca1, ca2 := testutil.Issue(t, nil, nil, k1, "swarm-ca", "", true), testutil.Issue(t, nil, nil, k2, "swarm-ca-next", "", true)
	leaf := testutil.Issue(t, ca1, k1, testutil.NewKey(t), "", "spiffe://zb.test/node", false)
	pemOf := func(c *x509.Certificate) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	cas, err := ParseNodeCAs(append(pemOf(ca1), pemOf(ca2)...))
	if err != nil || len(cas) != 2 {
		t.Fatalf("ParseNodeCAs: %v, %d", err, len(cas))
	}
	d, err := Desired(td, DefaultIDPrefix, NodeAliasEntries(td, cas))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(ca1.Raw)
	if len(d) != 2 || d[0].SpiffeID != NodeAlias(td) || d[0].ParentID != "spiffe://zb.test/spire/server" ||
		d[0].Selectors[0].String() != "x509pop:ca:fingerprint:"+hex.EncodeToString(sum[:]) || d[0].ID == d[1].ID {
		t.Fatalf("alias entries: %+v", d)
	}
	for _, bad := range [][]byte{nil, []byte("junk"), pemOf(leaf)} {
		if _, err := ParseNodeCAs(bad); err == nil {
			t.Errorf("ParseNodeCAs(%.20q) accepted", bad)
		}
	}
}

func TestValidationNamesEntryFieldAndFix(t *testing.T) {
	ok := Entry{SpiffeID: "spiffe://zb.test/a", Selectors: []string{"docker:label:app:a"}}
	with := func(f func(*Entry)) []Entry { e := ok; f(&e); return []Entry{ok, e} }
	for name, tc := range map[string]struct {
		entries []Entry
		want    []string // substrings of the error
	}{
		"unparsable SPIFFE ID": {with(func(e *Entry) { e.SpiffeID = "spiffe://ZB.test/a" }), []string{"entries[1].spiffeId", "not a SPIFFE ID"}},
		"not a URI":            {with(func(e *Entry) { e.SpiffeID = "ziti-router" }), []string{"entries[1].spiffeId", "spiffe://zb.test/PATH"}},
		"other trust domain":   {with(func(e *Entry) { e.SpiffeID = "spiffe://other.org/a" }), []string{"entries[1].spiffeId", `"other.org", not "zb.test"`, "TRUST_DOMAIN"}},
		"no path":              {with(func(e *Entry) { e.SpiffeID = "spiffe://zb.test" }), []string{"entries[1].spiffeId", "no path"}},
		"reserved path":        {with(func(e *Entry) { e.SpiffeID = "spiffe://zb.test/spire/agent/x" }), []string{"entries[1].spiffeId", "reserves"}},
		"missing SPIFFE ID":    {with(func(e *Entry) { e.SpiffeID = "" }), []string{"entries[1].spiffeId", "missing"}},
		"bad parent":           {with(func(e *Entry) { e.ParentID = "spiffe://other.org/node" }), []string{"entries[1].parentId", "other.org"}},
		"no selectors":         {with(func(e *Entry) { e.Selectors = nil }), []string{"entries[1].selectors", "at least one"}},
		"selector w/o colon":   {with(func(e *Entry) { e.Selectors = []string{"docker"} }), []string{"entries[1].selectors[0]", "TYPE:VALUE"}},
		"selector no value":    {with(func(e *Entry) { e.Selectors = []string{"docker:label:a:b", "unix:"} }), []string{"entries[1].selectors[1]", "empty"}},
		"selector no type":     {with(func(e *Entry) { e.Selectors = []string{":uid:0"} }), []string{"entries[1].selectors[0]", "type"}},
		"docker label no key":  {with(func(e *Entry) { e.Selectors = []string{"docker:label:"} }), []string{"entries[1].selectors[0]", "docker:label:KEY:VALUE"}},
		"selector twice":       {with(func(e *Entry) { e.Selectors = []string{"unix:uid:0", "unix:uid:0"} }), []string{"entries[1].selectors[1]", "twice"}},
		"negative TTL":         {with(func(e *Entry) { e.X509SVIDTTL = -1 }), []string{"entries[1].x509SvidTtl", "seconds"}},
		"federate with self":   {with(func(e *Entry) { e.FederatesWith = []string{"zb.test"} }), []string{"entries[1].federatesWith[0]", "own trust domain"}},
		"federate with URI":    {with(func(e *Entry) { e.FederatesWith = []string{"spiffe://o.org"} }), []string{"entries[1].federatesWith[0]", "other.org"}},
		"bad DNS name":         {with(func(e *Entry) { e.DNSNames = []string{"a b"} }), []string{"entries[1].dnsNames[0]"}},
		"same ID and parent": {with(func(e *Entry) { e.Selectors = []string{"unix:uid:1"} }),
			[]string{"entries[1].spiffeId", "entries[0] already declares spiffe://zb.test/a", "`name`"}},
		"same selectors too": {with(func(e *Entry) { e.Name = "second" }), []string{"entries[1].selectors", "only one such entry"}},
	} {
		t.Run(name, func(t *testing.T) {
			err := Validate(td, tc.entries)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "entries[0]") && !strings.Contains(err.Error(), "entries[0] already") {
				t.Errorf("the valid entries[0] was blamed: %v", err)
			}
		})
	}
}

func TestValidationReportsEveryProblem(t *testing.T) {
	err := Validate(td, []Entry{
		{SpiffeID: "spiffe://x.org/a", Selectors: []string{"bad"}},
		{SpiffeID: "spiffe://zb.test/b", Selectors: []string{"unix:uid:0"}, JWTSVIDTTL: -5},
	})
	for _, w := range []string{"entries[0].spiffeId", "entries[0].selectors[0]", "entries[1].jwtSvidTtl"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not name %s", err, w)
		}
	}
}

func TestNameAllowsTwoSelectorSetsForOneID(t *testing.T) {
	d, err := Desired(td, DefaultIDPrefix, []Entry{
		{SpiffeID: "spiffe://zb.test/a", Selectors: []string{"unix:uid:0"}},
		{SpiffeID: "spiffe://zb.test/a", Selectors: []string{"unix:uid:1"}, Name: "alt"},
	})
	if err != nil || d[0].ID == d[1].ID {
		t.Fatalf("%v %+v", err, d)
	}
}

func TestEntryIDStableAndOwnershipExact(t *testing.T) {
	a := EntryID("zb-", "spiffe://zb.test/a", "spiffe://zb.test/n", "")
	if a != EntryID("zb-", "spiffe://zb.test/a", "spiffe://zb.test/n", "") || len(a) != 35 {
		t.Fatalf("unstable or wrong length: %s", a)
	}
	if a == EntryID("zb-", "spiffe://zb.test/a", "spiffe://zb.test/n2", "") || a == EntryID("zb-", "spiffe://zb.test/a", "spiffe://zb.test/n", "x") {
		t.Fatal("parent and name must change the ID")
	}
	for id, want := range map[string]bool{
		a: true,
		EntryID("zb-prod-", "spiffe://zb.test/a", "spiffe://zb.test/n", ""): false, // another prefix's entry
		"zb-" + strings.Repeat("A", 32):                                     false,
		"zb-" + strings.Repeat("0", 31):                                     false,
		"4f1c0f5e-6f9d-4b6a-9f0e-6a1f3a1b2c3d":                              false, // a server-generated UUID
		"":                                                                  false,
	} {
		if Owned("zb-", id) != want {
			t.Errorf("Owned(zb-, %q) = %v", id, !want)
		}
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "entries.yaml")
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := write(`entries:
  - spiffeId: spiffe://zb.test/ziti-router
    selectors: ["docker:label:app:ziti-router"]
    x509SvidTtl: 3600
    dnsNames: [router.example]
  - spiffeId: spiffe://zb.test/db
    parentId: spiffe://zb.test/node/db
    selectors: ["unix:uid:999", "unix:gid:999"]
    admin: true
`)
	entries, err := LoadFile(p, td)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0].X509SVIDTTL != 3600 || entries[1].ParentID != "spiffe://zb.test/node/db" || !entries[1].Admin {
		t.Fatalf("%+v", entries)
	}
	d, _ := Desired(td, DefaultIDPrefix, entries)
	if d[0].ParentID != NodeAlias(td) {
		t.Fatalf("default parent %s, want %s", d[0].ParentID, NodeAlias(td))
	}

	_, err = LoadFile(write("entries:\n  - spiffeID: spiffe://zb.test/x\n    selectors: [unix:uid:0]\n"), td)
	if err == nil || !strings.Contains(err.Error(), "spiffeID") || !strings.Contains(err.Error(), p) {
		t.Fatalf("a misspelt field: %v", err)
	}
	_, err = LoadFile(write("entries:\n  - spiffeId: spiffe://zb.test/x\n    selectors: [unix]\n"), td)
	if err == nil || !strings.Contains(err.Error(), "entries[0].selectors[0]") || !strings.Contains(err.Error(), p) {
		t.Fatalf("a bad selector: %v", err)
	}
	if _, err := LoadFile(filepath.Join(dir, "absent.yaml"), td); err == nil {
		t.Fatal("missing file accepted")
	}
	if e, err := LoadFile(write(""), td); err != nil || len(e) != 0 {
		t.Fatalf("empty file: %v %v", e, err)
	}
}

// The entries file is the user's: a "billion laughs" alias bomb is refused before it expands, and a second
// YAML document is refused rather than silently ignored.
func TestParseRefusesAliasBombsAndSecondDocuments(t *testing.T) {
	bomb := yamlguard.Bomb("entries")
	if _, err := Parse([]byte(bomb), "example.org"); err == nil || !strings.Contains(err.Error(), "aliases") {
		t.Errorf("alias bomb: %v; want refused for its aliases", err)
	}
	two := "entries:\n  - spiffeId: spiffe://example.org/a\n    parentId: spiffe://example.org/n\n    selectors: [unix:uid:0]\n---\nentries:\n  - spiffeId: spiffe://example.org/b\n"
	if _, err := Parse([]byte(two), "example.org"); err == nil || !strings.Contains(err.Error(), "2 YAML documents") {
		t.Errorf("two documents: %v; want refused", err)
	}
}

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
