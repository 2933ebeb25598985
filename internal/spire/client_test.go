package spire_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spire"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spire/spiretest"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
)

// server connects to the test bed's SPIRE server (skipped with -short, fails when the test bed is absent).
func server(t testing.TB) (*spire.Client, *calls.Counter, testbed.SpireInfo) {
	t.Helper()
	counter := calls.New()
	c, in := spiretest.Connect(t, counter)
	return c, counter, in
}

func ctxT(t testing.TB) context.Context { return testutil.Context(t, 2*time.Minute) }

func byID(entries []spire.Entry) map[string]spire.Entry {
	m := map[string]spire.Entry{}
	for _, e := range entries {
		m[e.ID] = e
	}
	return m
}

func TestHealthyAndBundle(t *testing.T) {
	c, counter, in := server(t)
	ctx := ctxT(t)
	if err := c.Healthy(ctx); err != nil {
		t.Fatal(err)
	}
	td, auth, err := c.X509Bundle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if td != in.TrustDomain || len(auth) == 0 {
		t.Fatalf("bundle: trust domain %q (want %q), %d authorities", td, in.TrustDomain, len(auth))
	}
	if in.UpstreamCert != "" {
		pemBytes, err := os.ReadFile(in.UpstreamCert)
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode(pemBytes)
		if !slices.ContainsFunc(auth, func(c *x509.Certificate) bool { return string(c.Raw) == string(blk.Bytes) }) {
			t.Errorf("the bundle does not hold the disk UpstreamAuthority root %s", in.UpstreamCert)
		}
	}
	if counter.Writes() != 0 {
		t.Fatalf("health and bundle reads counted %d writes", counter.Writes())
	}
}

func TestEntryBatchesPerItemStatuses(t *testing.T) {
	c, counter, in := server(t)
	ctx := ctxT(t)
	r := testutil.RandHex(t, 6)
	td := "spiffe://" + in.TrustDomain
	parent := td + "/test/parent-" + r
	mk := func(n int) spire.Entry {
		return spire.Entry{
			ID: fmt.Sprintf("clienttest-%s-%d", r, n), SpiffeID: fmt.Sprintf("%s/test/%s/w%d", td, r, n), ParentID: parent,
			Selectors:   []spire.Selector{{Type: "docker", Value: "label:test:" + r}, {Type: "unix", Value: fmt.Sprintf("uid:%d", 1000+n)}},
			X509SVIDTTL: 600, JWTSVIDTTL: 300, DNSNames: []string{fmt.Sprintf("w%d.example", n), "a.example"}, Hint: "h",
		}
	}
	want := []spire.Entry{mk(1), mk(2), mk(3)}
	bad := spire.Entry{SpiffeID: "spiffe://other.test/x", ParentID: parent, Selectors: want[0].Selectors} // wrong trust domain
	input := []spire.Entry{want[0], bad, want[1], want[2]}
	t.Cleanup(func() { c.BatchDelete(context.Background(), []string{want[0].ID, want[1].ID, want[2].ID}) })

	errs := c.BatchCreate(ctx, input)
	if len(errs) != 4 || errs[0] != nil || errs[2] != nil || errs[3] != nil {
		t.Fatalf("create: %v", errs)
	}
	if status.Code(errs[1]) != codes.InvalidArgument || !strings.Contains(errs[1].Error(), "other.test") {
		t.Fatalf("create with a foreign trust domain: %v (code %s)", errs[1], status.Code(errs[1]))
	}
	if w := counter.Writes(); w != 1 {
		t.Fatalf("4 entries took %d write calls, want 1 batch", w)
	}

	list, err := c.ListEntries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := byID(list)
	for _, w := range want {
		g, ok := got[w.ID]
		if !ok {
			t.Fatalf("entry %s not listed", w.ID)
		}
		spire.SortSelectors(g.Selectors)
		if g.SpiffeID != w.SpiffeID || g.ParentID != w.ParentID || !slices.Equal(g.Selectors, w.Selectors) ||
			g.X509SVIDTTL != 600 || g.JWTSVIDTTL != 300 || g.Hint != "h" || !slices.Equal(g.DNSNames, w.DNSNames) {
			t.Errorf("listed %+v\nwant       %+v", g, w)
		}
	}

	// The same SPIFFE ID, parent and selectors again (under another ID): ALREADY_EXISTS naming the existing entry.
	dup := want[0]
	dup.ID = "clienttest-" + r + "-dup"
	errs = c.BatchCreate(ctx, []spire.Entry{dup})
	var ie *spire.ItemError
	if !spire.IsAlreadyExists(errs[0]) || !errors.As(errs[0], &ie) || ie.ExistingID != want[0].ID {
		t.Fatalf("duplicate create: %v", errs[0])
	}

	// Update one field of one entry; an unknown ID is NotFound and does not stop the other.
	upd := want[1]
	upd.X509SVIDTTL = 1200
	upd.Selectors = []spire.Selector{{Type: "docker", Value: "label:test:" + r + "-changed"}}
	ghost := want[2]
	ghost.ID = "clienttest-" + r + "-ghost"
	errs = c.BatchUpdate(ctx, []spire.Entry{ghost, upd})
	if !spire.IsNotFound(errs[0]) || errs[1] != nil {
		t.Fatalf("update: %v", errs)
	}
	list, _ = c.ListEntries(ctx)
	if g := byID(list)[upd.ID]; g.X509SVIDTTL != 1200 || len(g.Selectors) != 1 || g.Selectors[0] != upd.Selectors[0] {
		t.Fatalf("after update: %+v", g)
	}

	errs = c.BatchDelete(ctx, []string{want[0].ID, want[1].ID, "clienttest-" + r + "-nope", want[2].ID})
	if errs[0] != nil || errs[1] != nil || !spire.IsNotFound(errs[2]) || errs[3] != nil {
		t.Fatalf("delete: %v", errs)
	}
	list, _ = c.ListEntries(ctx)
	for _, w := range want {
		if _, ok := byID(list)[w.ID]; ok {
			t.Errorf("%s still listed after delete", w.ID)
		}
	}
}

func TestListEntriesReadsAllPagesAndBatchesChunk(t *testing.T) {
	c, counter, in := server(t)
	ctx := ctxT(t)
	r := testutil.RandHex(t, 6)
	n := spire.PageSize + spire.BatchSize/2 // more than one page, and not a whole number of batches
	entries := make([]spire.Entry, n)
	ids := make([]string, n)
	for i := range entries {
		ids[i] = fmt.Sprintf("pagetest-%s-%d", r, i)
		entries[i] = spire.Entry{ID: ids[i], SpiffeID: fmt.Sprintf("spiffe://%s/test/%s/w%d", in.TrustDomain, r, i),
			ParentID: "spiffe://" + in.TrustDomain + "/test/parent", Selectors: []spire.Selector{{Type: "unix", Value: "uid:" + r + fmt.Sprint(i)}}}
	}
	t.Cleanup(func() { c.BatchDelete(context.Background(), ids) })
	for i, err := range c.BatchCreate(ctx, entries) {
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
	}
	wantCalls := int64((n + spire.BatchSize - 1) / spire.BatchSize)
	if w := counter.Writes(); w != wantCalls {
		t.Fatalf("%d creates took %d calls, want %d", n, w, wantCalls)
	}
	list, err := c.ListEntries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := byID(list)
	for _, id := range ids {
		if _, ok := got[id]; !ok {
			t.Fatalf("entry %s missing from a %d-entry listing", id, len(list))
		}
	}
	for i, err := range c.BatchDelete(ctx, ids) {
		if err != nil {
			t.Fatalf("delete %d: %v", i, err)
		}
	}
}

func TestJoinTokenAliasAndMintX509SVID(t *testing.T) {
	c, _, in := server(t)
	ctx := ctxT(t)
	r := testutil.RandHex(t, 6)
	alias := "spiffe://" + in.TrustDomain + "/test/node-" + r
	tok, err := c.CreateJoinToken(ctx, time.Minute, alias)
	if err != nil || tok == "" {
		t.Fatalf("token %q: %v", tok, err)
	}
	list, err := c.ListEntries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	agent := "spiffe://" + in.TrustDomain + "/spire/agent/join_token/" + tok
	var aliasEntry *spire.Entry
	for i, e := range list {
		if e.SpiffeID == alias {
			aliasEntry = &list[i]
		}
	}
	if aliasEntry == nil || aliasEntry.ParentID != agent || len(aliasEntry.Selectors) != 1 ||
		aliasEntry.Selectors[0] != (spire.Selector{Type: "spiffe_id", Value: agent}) {
		t.Fatalf("node alias entry for %s: %+v", alias, aliasEntry)
	}
	c.BatchDelete(ctx, []string{aliasEntry.ID})

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := "spiffe://" + in.TrustDomain + "/test/mint-" + r
	chain, err := c.MintX509SVID(ctx, id, key)
	if err != nil {
		t.Fatal(err)
	}
	if len(chain[0].URIs) != 1 || chain[0].URIs[0].String() != id {
		t.Fatalf("leaf URIs %v, want %s", chain[0].URIs, id)
	}
	_, roots, err := c.X509Bundle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pool, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r)
	}
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Fatalf("minted SVID does not chain to the bundle: %v", err)
	}
}

func TestUnreachableErrorNamesSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "no-server", "api.sock")
	c, err := spire.Dial(context.Background(), "unix://"+sock, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := ctxT(t)
	for name, err := range map[string]error{
		"healthy": c.Healthy(ctx),
		"list":    func() error { _, err := c.ListEntries(ctx); return err }(),
		"create":  c.BatchCreate(ctx, []spire.Entry{{SpiffeID: "spiffe://x.test/a", ParentID: "spiffe://x.test/b", Selectors: []spire.Selector{{Type: "unix", Value: "uid:0"}}}})[0],
	} {
		if err == nil || !strings.Contains(err.Error(), sock) || status.Code(err) != codes.Unavailable {
			t.Errorf("%s: %v (code %s), want Unavailable naming %s", name, err, status.Code(err), sock)
		}
	}
	err = c.WaitHealthy(ctx, 300*time.Millisecond, nil)
	var ue *wait.UnreachableError
	if !errors.As(err, &ue) || ue.Where != "unix://"+sock || ue.What != "SPIRE server" {
		t.Fatalf("WaitHealthy: %v", err)
	}
}

func TestDialRejectsNonUnixAddresses(t *testing.T) {
	for _, s := range []string{"", "tcp://127.0.0.1:8081", "http://spire-server:8081"} {
		if _, err := spire.Dial(context.Background(), s, nil); err == nil {
			t.Errorf("Dial(%q) accepted", s)
		}
	}
	for s, want := range map[string]string{
		"/run/spire/api.sock":         "/run/spire/api.sock",
		"unix:///run/spire/api.sock":  "/run/spire/api.sock",
		"unix:///run/spire/../x.sock": "/run/x.sock",
	} {
		c, err := spire.Dial(context.Background(), s, nil)
		if err != nil {
			t.Errorf("Dial(%q): %v", s, err)
			continue
		}
		if c.Socket() != want || c.Target() != "unix://"+want {
			t.Errorf("Dial(%q): socket %q target %q, want %q", s, c.Socket(), c.Target(), want)
		}
		c.Close()
	}
}

func TestParseSelector(t *testing.T) {
	for in, want := range map[string]spire.Selector{
		"docker:label:app:ziti-router": {Type: "docker", Value: "label:app:ziti-router"},
		"unix:uid:0":                   {Type: "unix", Value: "uid:0"},
		"spiffe_id:spiffe://td/x":      {Type: "spiffe_id", Value: "spiffe://td/x"},
	} {
		got, err := spire.ParseSelector(in)
		if err != nil || got != want || got.String() != in {
			t.Errorf("ParseSelector(%q) = %+v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "docker", ":value", "docker:", " docker:x", "dock er:x"} {
		if _, err := spire.ParseSelector(in); err == nil {
			t.Errorf("ParseSelector(%q) accepted", in)
		}
	}
}

// The test bed's agent (attested with a join token) is listed with its ID, attestor and SVID expiry.
func TestListAgents(t *testing.T) {
	c, in := spiretest.Connect(t, nil)
	agents, err := c.ListAgents(testutil.Context(t, time.Minute))
	testutil.Must(t, err)
	for _, a := range agents {
		if a.ID == in.AgentID {
			if a.AttestationType != "join_token" || a.Banned || !a.SVIDExpires.After(time.Now()) {
				t.Errorf("agent %+v: want join_token, not banned, SVID valid", a)
			}
			return
		}
	}
	t.Fatalf("agent %s not among %+v", in.AgentID, agents)
}
