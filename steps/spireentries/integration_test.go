package spireentries_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spire"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spire/spiretest"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/spireentries"
)

// These tests share the test bed's SPIRE server with other packages: each uses its own entry-ID prefix (so its
// step owns only its own entries) and its own SPIFFE ID paths, and deletes what it made.

type bed struct {
	t      testing.TB
	td     string
	parent string
	prefix string
	path   string // unique SPIFFE ID path segment
	client *spire.Client
}

func newBed(t testing.TB) *bed {
	t.Helper()
	c, in := spiretest.Connect(t, nil)
	r := testutil.RandHex(t, 5)
	b := &bed{t: t, td: in.TrustDomain, parent: spireentries.NodeAlias(in.TrustDomain),
		prefix: "zbt" + r + "-", path: "/test/" + r, client: c}
	if in.NodeAlias != "" {
		b.parent = in.NodeAlias // the alias the test bed's agent really has
	}
	t.Cleanup(b.cleanup)
	return b
}

// id is a SPIFFE ID unique to this test.
func (b *bed) id(name string) string { return "spiffe://" + b.td + b.path + "/" + name }

func (b *bed) entry(name string, sel ...string) spireentries.Entry {
	if len(sel) == 0 {
		sel = []string{"docker:label:app:" + name + "-" + strings.TrimPrefix(b.path, "/test/")}
	}
	return spireentries.Entry{SpiffeID: b.id(name), ParentID: b.parent, Selectors: sel}
}

// step builds the step for entries, owned under this test's prefix, on a client that counts on counter.
func (b *bed) step(counter *calls.Counter, entries ...spireentries.Entry) (*spireentries.Step, *spire.Client) {
	b.t.Helper()
	c, _ := spiretest.Dial(b.t, counter)
	s, err := spireentries.New(c, spireentries.Config{TrustDomain: b.td, Entries: entries, IDPrefix: b.prefix})
	if err != nil {
		b.t.Fatal(err)
	}
	return s, c
}

// reachable stands in for the "spire/reachable" step the entries step depends on.
func reachable(c *spire.Client, deadline time.Duration) steps.Step {
	return testutil.StandIn("spire/reachable", func(ctx context.Context) error { return c.WaitHealthy(ctx, deadline, nil) })
}

// run runs the entries step (after spire/reachable) through a steps.Runner with a fresh counter.
func (b *bed) run(mode steps.Mode, entries ...spireentries.Entry) (*steps.Report, steps.Result) {
	b.t.Helper()
	counter := calls.New()
	s, c := b.step(counter, entries...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := (&steps.Runner{Steps: []steps.Step{s, reachable(c, 10*time.Second)}, Counter: counter}).Run(ctx, mode)
	if err != nil {
		b.t.Fatal(err)
	}
	if len(rep.Steps) != 2 || rep.Steps[1].Name != spireentries.Name {
		b.t.Fatalf("report %+v", rep)
	}
	return rep, rep.Steps[1]
}

// owned lists this test's owned entries by SPIFFE ID (and fails on duplicates).
func (b *bed) owned() map[string]spire.Entry {
	b.t.Helper()
	list, err := b.client.ListEntries(context.Background())
	if err != nil {
		b.t.Fatal(err)
	}
	out := map[string]spire.Entry{}
	for _, e := range list {
		if spireentries.Owned(b.prefix, e.ID) {
			if _, dup := out[e.SpiffeID]; dup {
				b.t.Fatalf("two owned entries for %s", e.SpiffeID)
			}
			out[e.SpiffeID] = e
		}
	}
	return out
}

func (b *bed) listed(id string) (spire.Entry, bool) {
	b.t.Helper()
	list, err := b.client.ListEntries(context.Background())
	if err != nil {
		b.t.Fatal(err)
	}
	for _, e := range list {
		if e.ID == id {
			return e, true
		}
	}
	return spire.Entry{}, false
}

// cleanup deletes every entry this test owns, and every entry under its SPIFFE ID path.
func (b *bed) cleanup() {
	list, err := b.client.ListEntries(context.Background())
	if err != nil {
		b.t.Logf("cleanup: %v", err)
		return
	}
	var ids []string
	for _, e := range list {
		if spireentries.Owned(b.prefix, e.ID) || strings.HasPrefix(e.SpiffeID, "spiffe://"+b.td+b.path+"/") {
			ids = append(ids, e.ID)
		}
	}
	for _, err := range b.client.BatchDelete(context.Background(), ids) {
		if err != nil {
			b.t.Logf("cleanup: %v", err)
		}
	}
}

func changes(r steps.Result) string { return strings.Join(testutil.ChangeStrings(r.Changes), "\n") }

func TestApplyCreatesDeclaredEntriesExactlyOnceThenWritesNothing(t *testing.T) {
	b := newBed(t)
	router := b.entry("router")
	router.X509SVIDTTL, router.DNSNames, router.Hint = 1800, []string{"router.example", "r2.example"}, "ziti"
	boot := b.entry("bootstrap", "docker:label:app:zb", "docker:label:com.docker.stack.namespace:openziti")
	decl := []spireentries.Entry{router, boot}

	rep, res := b.run(steps.Apply, decl...)
	if res.Status != steps.Changed || len(res.Changes) != 2 || rep.MutatingCalls != 1 || res.MutatingCalls != 1 {
		t.Fatalf("first apply: %s, %d calls (want 1 batch create)\n%s\n%s", res.Status, rep.MutatingCalls, changes(res), res.Error)
	}
	got := b.owned()
	if len(got) != 2 {
		t.Fatalf("owned entries after apply: %v", got)
	}
	r := got[router.SpiffeID]
	if r.ID != spireentries.EntryID(b.prefix, router.SpiffeID, b.parent, "") || r.ParentID != b.parent || r.X509SVIDTTL != 1800 ||
		!slices.Equal(r.DNSNames, router.DNSNames) || r.Hint != "ziti" || len(r.Selectors) != 1 || r.Selectors[0].String() != router.Selectors[0] {
		t.Fatalf("router entry %+v", r)
	}
	if bs := got[boot.SpiffeID]; len(bs.Selectors) != 2 {
		t.Fatalf("bootstrap entry %+v", bs)
	}

	for i := range 2 { // a converged server: no change, no mutating call, twice
		rep, res = b.run(steps.Apply, decl...)
		if res.Status != steps.Unchanged || rep.MutatingCalls != 0 || len(rep.Writes) != 0 || !rep.Converged() {
			t.Fatalf("apply #%d on a converged server: %s, %d calls %v\n%s", i+2, res.Status, rep.MutatingCalls, rep.Writes, changes(res))
		}
	}
	if after := b.owned(); len(after) != 2 || after[router.SpiffeID].ID != r.ID {
		t.Fatalf("entries changed by a no-op run: %v", after)
	}
}

func TestPlanOnlyWritesNothing(t *testing.T) {
	b := newBed(t)
	rep, res := b.run(steps.PlanOnly, b.entry("a"), b.entry("b"))
	if res.Status != steps.Planned || len(res.Changes) != 2 || rep.MutatingCalls != 0 || len(b.owned()) != 0 {
		t.Fatalf("plan: %s %d calls, owned %v", res.Status, rep.MutatingCalls, b.owned())
	}
}

func TestForeignEntriesAreNeverTouched(t *testing.T) {
	b := newBed(t)
	r := strings.TrimPrefix(b.path, "/test/")
	sel := func(v string) []spire.Selector { return []spire.Selector{{Type: "unix", Value: v}} }
	foreign := []spire.Entry{
		// made by an operator, with a server-chosen style ID
		{ID: "foreign-" + r, SpiffeID: b.id("operator"), ParentID: b.parent, Selectors: sel("uid:1"), X509SVIDTTL: 77},
		// an ID that starts with our prefix but is not of our form
		{ID: b.prefix + "handmade", SpiffeID: b.id("lookalike"), ParentID: b.parent, Selectors: sel("uid:2")},
		// the declared router entry, made by someone else with the same fields
		{ID: "foreign-router-" + r, SpiffeID: b.id("router"), ParentID: b.parent, Selectors: sel("uid:3")},
	}
	for i, err := range b.client.BatchCreate(context.Background(), foreign) {
		if err != nil {
			t.Fatalf("creating foreign entry %d: %v", i, err)
		}
	}
	router := b.entry("router", "unix:uid:3")
	other := b.entry("mine")

	rep, res := b.run(steps.Apply, router, other)
	if res.Err() != nil || len(res.Changes) != 1 || res.Changes[0].Key != other.SpiffeID+" (parent "+b.parent+")" || rep.MutatingCalls != 1 {
		t.Fatalf("apply: %v %d calls\n%s", res.Err(), rep.MutatingCalls, changes(res))
	}
	if len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "foreign-router-"+r) {
		t.Fatalf("notes %v: want the foreign router entry noted", res.Notes)
	}
	// Nothing declared at all: only owned entries go; the foreign ones stay exactly as they were.
	rep, res = b.run(steps.Apply)
	if res.Err() != nil || len(res.Changes) != 1 || res.Changes[0].Action != steps.Delete || rep.MutatingCalls != 1 {
		t.Fatalf("apply of nothing: %v\n%s", res.Err(), changes(res))
	}
	for _, f := range foreign {
		got, ok := b.listed(f.ID)
		if !ok || got.SpiffeID != f.SpiffeID || got.X509SVIDTTL != f.X509SVIDTTL || !slices.Equal(got.Selectors, f.Selectors) {
			t.Errorf("foreign entry %s changed or gone: %+v", f.ID, got)
		}
	}

	// A declaration that SPIRE already holds as a different foreign entry cannot be planned; the error says why
	// and which entry to delete.
	router.X509SVIDTTL = 3600
	_, res = b.run(steps.Apply, router)
	if res.Status != steps.Failed || !strings.Contains(res.Error, "foreign-router-"+r) || !strings.Contains(res.Error, "x509SvidTtl") {
		t.Fatalf("conflicting declaration: %s %s", res.Status, res.Error)
	}
}

func TestRemovingADeclarationDeletesOnlyItsEntry(t *testing.T) {
	b := newBed(t)
	a, bb, c := b.entry("a"), b.entry("b"), b.entry("c")
	if _, res := b.run(steps.Apply, a, bb, c); res.Err() != nil {
		t.Fatal(res.Err())
	}
	before := b.owned()
	rep, res := b.run(steps.Apply, a, c)
	if res.Err() != nil || len(res.Changes) != 1 || res.Changes[0].Action != steps.Delete ||
		!strings.HasPrefix(res.Changes[0].Key, bb.SpiffeID+" ") || rep.MutatingCalls != 1 {
		t.Fatalf("apply without b: %v %d calls\n%s", res.Err(), rep.MutatingCalls, changes(res))
	}
	after := b.owned()
	if _, ok := after[bb.SpiffeID]; ok || len(after) != 2 || after[a.SpiffeID].ID != before[a.SpiffeID].ID || after[c.SpiffeID].ID != before[c.SpiffeID].ID {
		t.Fatalf("after removing b: %v", after)
	}
}

func TestChangedTTLAndSelectorUpdateOnlyThatEntry(t *testing.T) {
	b := newBed(t)
	a, other := b.entry("a"), b.entry("other")
	a.X509SVIDTTL = 600
	if _, res := b.run(steps.Apply, a, other); res.Err() != nil {
		t.Fatal(res.Err())
	}
	before := b.owned()

	a.X509SVIDTTL = 1200
	a.Selectors = append(a.Selectors, "docker:label:tier:edge")
	rep, res := b.run(steps.Apply, a, other)
	if res.Err() != nil || len(res.Changes) != 1 || rep.MutatingCalls != 1 {
		t.Fatalf("apply: %v %d calls\n%s", res.Err(), rep.MutatingCalls, changes(res))
	}
	ch := res.Changes[0]
	if ch.Action != steps.Update || !strings.HasPrefix(ch.Key, a.SpiffeID+" ") || !slices.Equal(ch.Fields, []string{"selectors", "x509SvidTtl"}) {
		t.Fatalf("change %s, want an update of selectors and x509SvidTtl of %s", ch, a.SpiffeID)
	}
	after := b.owned()
	got := after[a.SpiffeID]
	if got.ID != before[a.SpiffeID].ID || got.X509SVIDTTL != 1200 || len(got.Selectors) != 2 {
		t.Fatalf("updated entry %+v (was %+v)", got, before[a.SpiffeID])
	}
	if !equalEntry(after[other.SpiffeID], before[other.SpiffeID]) {
		t.Fatalf("the other entry changed: %+v -> %+v", before[other.SpiffeID], after[other.SpiffeID])
	}
	if rep, res := b.run(steps.Apply, a, other); res.Status != steps.Unchanged || rep.MutatingCalls != 0 {
		t.Fatalf("after the update, a re-run: %s %d calls\n%s", res.Status, rep.MutatingCalls, changes(res))
	}
}

func equalEntry(a, b spire.Entry) bool {
	return a.ID == b.ID && a.SpiffeID == b.SpiffeID && a.ParentID == b.ParentID && slices.Equal(a.Selectors, b.Selectors) &&
		a.X509SVIDTTL == b.X509SVIDTTL && a.JWTSVIDTTL == b.JWTSVIDTTL && slices.Equal(a.DNSNames, b.DNSNames) && a.Hint == b.Hint
}

func TestOneFailedEntryDoesNotStopTheOthers(t *testing.T) {
	b := newBed(t)
	good := b.entry("good")
	bad := b.entry("bad")
	bad.FederatesWith = []string{"no-bundle-" + strings.TrimPrefix(b.path, "/test/") + ".test"} // the server has no bundle for it
	_, res := b.run(steps.Apply, bad, good)
	if res.Status != steps.Failed || !strings.Contains(res.Error, "create spire-entry "+bad.SpiffeID) {
		t.Fatalf("apply: %s %s", res.Status, res.Error)
	}
	t.Logf("per-entry error: %s", res.Error)
	if got := b.owned(); len(got) != 1 || got[good.SpiffeID].ID == "" {
		t.Fatalf("owned after a partial failure: %v", got)
	}
}

func TestValidationRejectsBeforeAnyCall(t *testing.T) {
	counter := calls.New()
	c, in := spiretest.Dial(t, counter)
	_, err := spireentries.New(c, spireentries.Config{TrustDomain: in.TrustDomain, Entries: []spireentries.Entry{
		{SpiffeID: "spiffe://elsewhere.test/router", Selectors: []string{"docker:label:app:r"}},
		{SpiffeID: "spiffe://" + in.TrustDomain + "/ok", Selectors: []string{"docker"}},
	}})
	if err == nil {
		t.Fatal("accepted")
	}
	for _, w := range []string{"spire/entries", "entries[0].spiffeId", "elsewhere.test", "entries[1].selectors[0]", "TYPE:VALUE"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
	if sys := counter.Systems(); len(sys) != 0 {
		t.Fatalf("validation made calls to %v", sys)
	}
}

func TestUnreachableServerErrorNamesSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "nothing-here.sock")
	counter := calls.New()
	c, err := spire.Dial(context.Background(), sock, counter)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := spireentries.New(c, spireentries.Config{TrustDomain: "zb.test", Entries: spireentries.Defaults("zb.test", "openziti")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.Plan(ctx); err == nil || !strings.Contains(err.Error(), "unix://"+sock) || !strings.Contains(err.Error(), "socket_path") {
		t.Fatalf("plan against no server: %v", err)
	}
	// Through the runner: spire/reachable fails naming the socket; spire/entries is skipped.
	rep, err := (&steps.Runner{Steps: []steps.Step{s, reachable(c, time.Second)}, Counter: counter}).Run(ctx, steps.Apply)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Steps[0].Status != steps.Failed || !strings.Contains(rep.Steps[0].Error, sock) || rep.Steps[1].Status != steps.Skipped {
		t.Fatalf("report: %+v", rep.Steps)
	}
	if counter.Writes() != 0 {
		t.Fatal("writes counted against no server")
	}
}

// BenchmarkReconcile1000 reconciles 1,000 declared entries: create them all, re-plan a converged server
// (no-op), then change the TTL of 10% and apply. Entries are deleted after each iteration, outside the timer.
func BenchmarkReconcile1000(b *testing.B) {
	const n = 1000
	var createNS, noopNS, updateNS, writes, noopWrites int64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		bd := newBed(b)
		decl := make([]spireentries.Entry, n)
		for j := range decl {
			decl[j] = bd.entry(fmt.Sprintf("w%d", j), fmt.Sprintf("docker:label:bench:%s-%d", bd.prefix, j))
			decl[j].X509SVIDTTL = 3600
		}
		ctx := context.Background()
		counter := calls.New()
		b.StartTimer()

		t0 := time.Now()
		s, _ := bd.step(counter, decl...)
		p, err := s.Plan(ctx)
		if err != nil || len(p.Changes) != n {
			b.Fatalf("plan: %v (%d changes)", err, len(p.Changes))
		}
		if err := p.Apply(ctx); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		createW := counter.Writes()
		p, err = s.Plan(ctx)
		if err != nil || !p.Empty() {
			b.Fatalf("no-op plan: %v (%d changes)", err, len(p.Changes))
		}
		p.Apply(ctx)
		t2 := time.Now()
		noopWrites += counter.Writes() - createW
		for j := 0; j < n; j += 10 {
			decl[j].X509SVIDTTL = 7200
		}
		s, _ = bd.step(counter, decl...)
		p, err = s.Plan(ctx)
		if err != nil || len(p.Changes) != n/10 {
			b.Fatalf("update plan: %v (%d changes)", err, len(p.Changes))
		}
		if err := p.Apply(ctx); err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()

		b.StopTimer()
		createNS += t1.Sub(t0).Nanoseconds()
		noopNS += t2.Sub(t1).Nanoseconds()
		updateNS += t3.Sub(t2).Nanoseconds()
		writes += counter.Writes()
		bd.cleanup()
		b.StartTimer()
	}
	N := float64(b.N)
	b.ReportMetric(float64(createNS)/N/1e6, "create-ms/op")
	b.ReportMetric(float64(noopNS)/N/1e6, "noop-ms/op")
	b.ReportMetric(float64(updateNS)/N/1e6, "update10%-ms/op")
	b.ReportMetric(float64(writes)/N, "calls/op")
	b.ReportMetric(float64(noopWrites)/N, "noop-calls/op")
}
