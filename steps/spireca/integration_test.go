package spireca_test

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spire"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spire/spiretest"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/bedziti"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/spireca"
)

// These tests share the test bed's controller and SPIRE server with other packages. Each test owns the CAs of
// its own name prefix ("t-" + random; ownership is scoped by prefix) and deletes them, and the identities
// enrolled through them, when it ends. The controller accepts a certificate in one CA only, so tests that
// register the test bed's real SPIRE root claim it (bedziti.ClaimSpireRoot) for as long as they do.
// The shared SPIRE server is never restarted or reconfigured: a root rotation is simulated with a fake
// BundleSource.

type bed struct {
	t      *testing.T
	in     *testbed.Info
	prefix string
	roles  []string
	admin  *ziti.Client // not counted: for inspection and cleanup
}

func newBed(t *testing.T) *bed {
	t.Helper()
	in := testbed.Require(t, "ziti")
	b := &bed{t: t, in: in, prefix: "t-" + testutil.RandHex(t, 4), roles: []string{"spire-workloads", "zbt-" + testutil.RandHex(t, 3)}}
	b.admin = b.zitiClient(nil)
	t.Cleanup(b.cleanup)
	return b
}

func ctxFor(t *testing.T) context.Context { return testutil.Context(t, 3*time.Minute) }

func (b *bed) zitiClient(counter *calls.Counter) *ziti.Client {
	b.t.Helper()
	return bedziti.Client(b.t, counter)
}

func (b *bed) spireClient(counter *calls.Counter) *spire.Client {
	b.t.Helper()
	c, _ := spiretest.Dial(b.t, counter)
	return c
}

// realRoot locks the test bed's SPIRE root for this test and returns it with its key, after checking that it
// is what SPIRE's bundle holds.
func (b *bed) realRoot() (*x509.Certificate, crypto.Signer, string) {
	b.t.Helper()
	cert := bedziti.ClaimSpireRoot(b.t, b.admin)
	keyPEM, err := os.ReadFile(b.in.Spire.UpstreamKey)
	if err != nil {
		b.t.Fatal(err)
	}
	keys, err := spireca.ParseKeys(string(keyPEM))
	if err != nil || len(keys) != 1 {
		b.t.Fatalf("ParseKeys(%s) = %d keys, %v", b.in.Spire.UpstreamKey, len(keys), err)
	}
	sc := b.spireClient(nil)
	if err := sc.WaitHealthy(ctxFor(b.t), time.Minute, nil); err != nil {
		b.t.Fatal(err)
	}
	td, auths, err := sc.X509Bundle(ctxFor(b.t))
	if err != nil || td != b.in.Spire.TrustDomain || len(auths) != 1 || !auths[0].Equal(cert) {
		b.t.Fatalf("SPIRE bundle: td %q, %d authorities, %v; want %s and exactly the upstream root %s", td, len(auths), err,
			b.in.Spire.TrustDomain, b.in.Spire.UpstreamCert)
	}
	return cert, keys[0], string(keyPEM)
}

func (b *bed) settings(keys ...crypto.Signer) spireca.Settings {
	return spireca.Settings{NamePrefix: b.prefix, Roles: b.roles, NameFormat: spireca.DefaultNameFormat,
		TrustDomain: b.in.Spire.TrustDomain, Keys: keys}
}

// run runs the step (spireca.New) through a steps.Runner whose counter both clients report to; src nil reads
// the real SPIRE server's bundle. runWith makes the step with mk from the run's clients.
func (b *bed) run(mode steps.Mode, src spireca.BundleSource, s spireca.Settings) (*steps.Report, steps.Result) {
	return b.runWith(mode, func(src spireca.BundleSource, cas spireca.CAStore) steps.Step { return spireca.New(src, cas, s) }, src)
}

func (b *bed) runWith(mode steps.Mode, mk func(spireca.BundleSource, spireca.CAStore) steps.Step, src spireca.BundleSource) (*steps.Report, steps.Result) {
	b.t.Helper()
	counter := calls.New()
	zc := b.zitiClient(counter)
	spireProbe := func(context.Context) error { return nil }
	if src == nil {
		sc := b.spireClient(counter)
		src = sc
		spireProbe = func(ctx context.Context) error { return sc.WaitHealthy(ctx, time.Minute, nil) }
	}
	runner := &steps.Runner{Counter: counter, Steps: []steps.Step{
		mk(src, zc),
		testutil.StandIn("spire/reachable", spireProbe),
		testutil.StandIn("ziti/reachable", func(ctx context.Context) error { _, err := zc.Ping(ctx); return err }),
	}}
	rep, err := runner.Run(ctxFor(b.t), mode)
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("writes: %v", rep.Writes)
	return rep, testutil.StepResult(b.t, rep, spireca.Name)
}

// owned lists the CAs this test's step owns.
func (b *bed) owned() []ziti.CA {
	b.t.Helper()
	all, err := b.admin.ListCAs(ctxFor(b.t), "")
	if err != nil {
		b.t.Fatal(err)
	}
	var out []ziti.CA
	for _, ca := range all {
		if spireca.Owned(b.prefix, ca) {
			out = append(out, ca)
		}
	}
	return out
}

func (b *bed) ca(name string) (ziti.CA, bool) {
	b.t.Helper()
	cas, err := b.admin.ListCAs(ctxFor(b.t), ziti.FilterEq("name", name))
	if err != nil {
		b.t.Fatal(err)
	}
	if len(cas) == 0 {
		return ziti.CA{}, false
	}
	return cas[0], true
}

// cleanup deletes the test's CAs (owned, or named with its prefix) and the identities enrolled through them.
func (b *bed) cleanup() {
	ctx := context.Background()
	all, _ := b.admin.ListCAs(ctx, "")
	for _, ca := range all {
		if spireca.Owned(b.prefix, ca) || strings.HasPrefix(ca.Name, b.prefix) {
			if err := b.admin.DeleteCA(ctx, ca.ID); err != nil {
				b.t.Logf("cleanup: %v", err)
			}
		}
	}
	ids, _ := b.admin.ListIdentities(ctx, "name contains "+ziti.Quote(b.prefix))
	for _, i := range ids {
		_ = b.admin.DeleteIdentity(ctx, i.ID)
	}
}

// checkCA fails unless ca has every setting the step wants.
func (b *bed) checkCA(ca ziti.CA, root *x509.Certificate) {
	b.t.Helper()
	want := ziti.ExternalIDClaim{Location: "SAN_URI", Matcher: "SCHEME", MatcherCriteria: "spiffe", Parser: "NONE", Index: 0}
	if ca.Name != spireca.CAName(b.prefix, root) || !ca.IsVerified || !ca.IsAuthEnabled || !ca.IsAutoCaEnrollmentEnabled ||
		ca.IsOttCaEnrollmentEnabled || !ziti.EqualSets(ca.IdentityRoles, b.roles) || ca.IdentityNameFormat != "[caName]-[requestedName]" ||
		ca.ExternalIDClaim == nil || *ca.ExternalIDClaim != want ||
		ca.Tags["ziti-bootstrap"] != "spire-ca" || ca.Tags["ziti-bootstrap.caName"] != b.prefix || ca.Tags["spiffeTrustDomain"] != "zb.test" {
		b.t.Errorf("CA = %+v (claim %+v)", ca, ca.ExternalIDClaim)
	}
	got, err := parseFirstCert(ca.CertPEM)
	if err != nil || !got.Equal(root) {
		b.t.Errorf("CA %s holds another certificate (%v)", ca.Name, err)
	}
}

func parseFirstCert(s string) (*x509.Certificate, error) {
	blk, _ := pem.Decode([]byte(s))
	if blk == nil {
		return nil, os.ErrInvalid
	}
	return x509.ParseCertificate(blk.Bytes)
}

// 1. apply → a verified CA with the wanted settings for SPIRE's root; a second run writes nothing.
func TestBindsSPIRERootAndSecondRunWritesNothing(t *testing.T) {
	b := newBed(t)
	root, _, keyPEM := b.realRoot()
	// the path app takes: FromConfig with the configuration's SPIRE section
	fromConfig := func(src spireca.BundleSource, cas spireca.CAStore) steps.Step {
		s, err := spireca.FromConfig(src, cas, config.Spire{
			TrustDomain: "zb.test", UpstreamKey: config.NewSecret(keyPEM),
			ZitiCAName: b.prefix, ZitiCARoles: b.roles, ZitiCANameFormat: "[caName]-[requestedName]",
		})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	name := spireca.CAName(b.prefix, root)

	rep, res := b.runWith(steps.PlanOnly, fromConfig, nil)
	if res.Status != steps.Planned || rep.MutatingCalls != 0 || len(res.Changes) != 1 ||
		res.Changes[0].Action != steps.Create || res.Changes[0].Key != name || res.Changes[0].Kind != "ziti-ca" {
		t.Fatalf("plan: %s, %d writes, changes %v, %s", res.Status, rep.MutatingCalls, res.Changes, res.Error)
	}

	rep, res = b.runWith(steps.Apply, fromConfig, nil)
	if res.Status != steps.Changed || rep.MutatingCalls != 2 || rep.CallsBySystem["ziti"] != 2 || rep.CallsBySystem["spire"] != 0 {
		t.Fatalf("apply: %s, %d writes %v, %s", res.Status, rep.MutatingCalls, rep.Writes, res.Error)
	}
	if !strings.HasSuffix(rep.Writes[0], "POST /edge/management/v1/cas") || !strings.HasSuffix(rep.Writes[1], "/verify") {
		t.Errorf("writes %v; want create then verify", rep.Writes)
	}
	owned := b.owned()
	if len(owned) != 1 {
		t.Fatalf("owned CAs %+v; want one", owned)
	}
	b.checkCA(owned[0], root)

	rep, res = b.runWith(steps.Apply, fromConfig, nil)
	if res.Status != steps.Unchanged || rep.MutatingCalls != 0 || len(res.Changes) != 0 || !rep.Converged() {
		t.Errorf("second apply: %s, %d writes %v, changes %v", res.Status, rep.MutatingCalls, rep.Writes, res.Changes)
	}
	if len(res.Notes) != 1 || !strings.Contains(res.Notes[0], spireca.Fingerprint(root)) {
		t.Errorf("notes %q", res.Notes)
	}

	// a setting changed by hand is put back, with the field named
	ca := owned[0]
	ca.IdentityRoles = []string{"by-hand"}
	ca.IsOttCaEnrollmentEnabled = true
	ca.Tags["note"] = "kept"
	if err := b.admin.UpdateCA(ctxFor(t), ca.ID, ca); err != nil {
		t.Fatal(err)
	}
	rep, res = b.runWith(steps.Apply, fromConfig, nil)
	if res.Status != steps.Changed || rep.MutatingCalls != 1 || len(res.Changes) != 1 ||
		!slices.Equal(res.Changes[0].Fields, []string{"identityRoles", "isOttCaEnrollmentEnabled"}) {
		t.Errorf("repair: %s, %d writes, changes %v", res.Status, rep.MutatingCalls, res.Changes)
	}
	after, _ := b.ca(name)
	b.checkCA(after, root)
	if after.Tags["note"] != "kept" {
		t.Errorf("the operator's tag was dropped: %v", after.Tags)
	}
	if rep, res = b.runWith(steps.Apply, fromConfig, nil); rep.MutatingCalls != 0 || res.Status != steps.Unchanged {
		t.Errorf("after repair: %s, %d writes", res.Status, rep.MutatingCalls)
	}
}

// svid is an X509-SVID with its key, as a TLS client certificate (leaf first, then intermediates).
func svid(chain []*x509.Certificate, key crypto.Signer) tls.Certificate {
	c := tls.Certificate{PrivateKey: key, Leaf: chain[0]}
	for _, x := range chain {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	return c
}

// mint has the real SPIRE server sign an X509-SVID for id with a fresh key: leaf + SPIRE intermediate(s).
func (b *bed) mint(id string) tls.Certificate {
	b.t.Helper()
	key := testutil.NewKey(b.t)
	chain, err := b.spireClient(nil).MintX509SVID(ctxFor(b.t), id, key)
	if err != nil {
		b.t.Fatalf("MintX509SVID: %v", err)
	}
	if len(chain) < 2 {
		b.t.Fatalf("minted chain has %d certificate(s); want leaf + SPIRE intermediate", len(chain))
	}
	return svid(chain, key)
}

func (b *bed) identityByExternalID(id string) ziti.Identity {
	b.t.Helper()
	ids, err := b.admin.ListIdentities(ctxFor(b.t), ziti.FilterEq("externalId", id))
	if err != nil || len(ids) != 1 {
		b.t.Fatalf("ListIdentities(externalId=%s) = %+v, %v; want one", id, ids, err)
	}
	return ids[0]
}

// boundAndEnrolled binds the real SPIRE root (apply must create it) and enrols a device named prefix+random with
// an SVID minted by the real SPIRE: it returns the device name, its SPIFFE ID, the SVID and the enrolled identity.
func (b *bed) boundAndEnrolled(key crypto.Signer, prefix string) (string, string, tls.Certificate, ziti.Identity) {
	b.t.Helper()
	if _, res := b.run(steps.Apply, nil, b.settings(key)); res.Status != steps.Changed {
		b.t.Fatalf("apply: %s %s", res.Status, res.Error)
	}
	dev := prefix + testutil.RandHex(b.t, 4)
	id := "spiffe://zb.test/device/" + dev
	cert := b.mint(id)
	if err := b.admin.ClientAPI().EnrollWithCA(ctxFor(b.t), cert, dev); err != nil {
		b.t.Fatalf("EnrollWithCA with a SPIRE SVID: %v", err)
	}
	return dev, id, cert, b.identityByExternalID(id)
}

// 2. An SVID minted by the real SPIRE enrolls on its own, gets the configured roles, and logs in; a certificate
// of an unrelated CA is refused.
func TestSVIDHolderEnrollsAndLogsIn(t *testing.T) {
	b := newBed(t)
	root, key, _ := b.realRoot()
	dev, id, cert, ident := b.boundAndEnrolled(key, "device-")
	api := b.admin.ClientAPI()
	ctx := ctxFor(t)
	if want := spireca.CAName(b.prefix, root) + "-" + dev; ident.Name != want || !ziti.EqualSets(ident.RoleAttributes, b.roles) || ident.IsAdmin {
		t.Errorf("enrolled identity %+v; want name %s and roles %v", ident, want, b.roles)
	}
	s, err := api.AuthenticateCert(ctx, cert)
	if err != nil {
		t.Fatalf("AuthenticateCert with the SVID: %v", err)
	}
	if s.IdentityID != ident.ID || !s.Token.IsSet() {
		t.Errorf("session %+v; want identity %s", s, ident.ID)
	}
	// a renewed SVID (new key, same SPIFFE ID) logs in as the same identity
	s, err = api.AuthenticateCert(ctx, b.mint(id))
	if err != nil || s.IdentityID != ident.ID {
		t.Errorf("AuthenticateCert with a renewed SVID: %+v, %v", s, err)
	}

	// an unrelated self-signed CA: its certificate, with a SPIFFE ID of this trust domain, is refused
	sk := testutil.NewKey(t)
	stranger := testutil.Issue(t, nil, nil, sk, "stranger root", "", true)
	lk := testutil.NewKey(t)
	for _, sid := range []string{id, "spiffe://zb.test/device/stranger-" + testutil.RandHex(t, 3)} {
		alien := svid([]*x509.Certificate{testutil.Issue(t, stranger, sk, lk, "", sid, false)}, lk)
		if err := api.EnrollWithCA(ctx, alien, "stranger"); err == nil {
			t.Errorf("enrollment with a certificate of an unrelated CA (%s) succeeded", sid)
		} else {
			t.Logf("enroll with unrelated CA (%s): %v", sid, err)
		}
		if _, err := api.AuthenticateCert(ctx, alien); err == nil {
			t.Errorf("login with a certificate of an unrelated CA (%s) succeeded", sid)
		}
	}
}

// 3. Rotation, simulated with a fake bundle: old + new root → the new CA is created and verified and the old
// kept; new root only → the old CA is deleted; then nothing.
func TestRootRotation(t *testing.T) {
	b := newBed(t)
	oldRoot, oldKey, _ := b.realRoot()
	ctx := ctxFor(t)
	api := b.admin.ClientAPI()
	if _, res := b.run(steps.Apply, nil, b.settings(oldKey)); res.Status != steps.Changed {
		t.Fatalf("initial apply: %s %s", res.Status, res.Error)
	}
	oldName := spireca.CAName(b.prefix, oldRoot)
	oldCA, _ := b.ca(oldName)
	// a workload enrolled before the rotation
	oldID := "spiffe://zb.test/device/old-" + testutil.RandHex(t, 3)
	oldSVID := b.mint(oldID)
	if err := api.EnrollWithCA(ctx, oldSVID, "old-"+testutil.RandHex(t, 2)); err != nil {
		t.Fatalf("enroll before rotation: %v", err)
	}

	newRootKey := testutil.NewKey(t)
	newRoot := testutil.Issue(t, nil, nil, newRootKey, "zb rotated root "+b.prefix, "", true)
	newName := spireca.CAName(b.prefix, newRoot)
	both := fakeBundle{td: "zb.test", roots: []*x509.Certificate{oldRoot, newRoot}}
	rep, res := b.run(steps.Apply, both, b.settings(oldKey, newRootKey))
	if res.Status != steps.Changed || rep.MutatingCalls != 2 || len(res.Changes) != 1 ||
		res.Changes[0].Action != steps.Create || res.Changes[0].Key != newName {
		t.Fatalf("old+new: %s, %d writes, changes %v, %s", res.Status, rep.MutatingCalls, res.Changes, res.Error)
	}
	if got, ok := b.ca(oldName); !ok || got.ID != oldCA.ID || !got.IsVerified {
		t.Fatalf("old CA after adding the new root: %+v, %v", got, ok)
	}
	newCA, _ := b.ca(newName)
	b.checkCA(newCA, newRoot)

	// a leaf of the new root, via an intermediate (as SPIRE would issue after the rotation), enrolls and logs in
	ik := testutil.NewKey(t)
	inter := testutil.Issue(t, newRoot, newRootKey, ik, "zb rotated intermediate", "", true)
	lk := testutil.NewKey(t)
	newID := "spiffe://zb.test/device/new-" + testutil.RandHex(t, 3)
	leaf := svid([]*x509.Certificate{testutil.Issue(t, inter, ik, lk, "", newID, false), inter}, lk)
	if err := api.EnrollWithCA(ctx, leaf, "new-"+testutil.RandHex(t, 2)); err != nil {
		t.Fatalf("enroll with a leaf of the new root: %v", err)
	}
	if s, err := api.AuthenticateCert(ctx, leaf); err != nil || s.IdentityID != b.identityByExternalID(newID).ID {
		t.Errorf("login with a leaf of the new root: %+v, %v", s, err)
	}
	// the workload enrolled under the old root, renewed under the new one, is the same identity
	lk2 := testutil.NewKey(t)
	renewed := svid([]*x509.Certificate{testutil.Issue(t, inter, ik, lk2, "", oldID, false), inter}, lk2)
	if s, err := api.AuthenticateCert(ctx, renewed); err != nil || s.IdentityID != b.identityByExternalID(oldID).ID {
		t.Errorf("login of a workload enrolled under the old root with an SVID of the new root: %+v, %v", s, err)
	}

	// SPIRE dropped the old root: its CA goes
	only := fakeBundle{td: "zb.test", roots: []*x509.Certificate{newRoot}}
	rep, res = b.run(steps.Apply, only, b.settings())
	if res.Status != steps.Changed || rep.MutatingCalls != 1 || len(res.Changes) != 1 ||
		res.Changes[0].Action != steps.Delete || res.Changes[0].Key != oldName || !strings.Contains(rep.Writes[0], "DELETE") {
		t.Fatalf("new only: %s, %d writes %v, changes %v, %s", res.Status, rep.MutatingCalls, rep.Writes, res.Changes, res.Error)
	}
	if _, ok := b.ca(oldName); ok {
		t.Error("old CA still there")
	}
	if owned := b.owned(); len(owned) != 1 || owned[0].Name != newName {
		t.Errorf("owned CAs %+v; want only %s", owned, newName)
	}
	if _, err := api.AuthenticateCert(ctx, oldSVID); err == nil {
		t.Error("an SVID of the dropped root still logs in")
	}
	if _, err := api.AuthenticateCert(ctx, leaf); err != nil {
		t.Errorf("login with a leaf of the new root after the old went: %v", err)
	}

	if rep, res = b.run(steps.Apply, only, b.settings()); res.Status != steps.Unchanged || rep.MutatingCalls != 0 {
		t.Errorf("after rotation: %s, %d writes %v", res.Status, rep.MutatingCalls, rep.Writes)
	}
}

// 4. Foreign CAs (no ownership tag, or another instance's) are never updated or deleted, and one that holds a
// root of the bundle stops the plan.
func TestForeignCAsAreLeftAlone(t *testing.T) {
	b := newBed(t)
	ctx := ctxFor(t)
	fk, ok2 := testutil.NewKey(t), testutil.NewKey(t)
	foreignRoot := testutil.Issue(t, nil, nil, fk, "foreign root "+b.prefix, "", true)
	otherRoot := testutil.Issue(t, nil, nil, ok2, "other instance root "+b.prefix, "", true)
	var foreignIDs []string
	for _, ca := range []ziti.CA{
		// untagged, with settings the step would "fix" if it were ours
		{Name: b.prefix + "-by-hand", CertPEM: testutil.CertPEM(foreignRoot), IdentityRoles: []string{"x"}, IsAuthEnabled: true},
		// a ziti-bootstrap with another ZITI_SPIRE_CA_NAME
		{Name: b.prefix + "x-" + spireca.Fingerprint(otherRoot)[:12], CertPEM: testutil.CertPEM(otherRoot), IsAuthEnabled: true,
			Tags: map[string]any{spireca.TagOwner: spireca.OwnerValue, spireca.TagInstance: b.prefix + "x", spireca.TagTrustDomain: "zb.test"}},
	} {
		id, err := b.admin.CreateCA(ctx, ca)
		if err != nil {
			t.Fatal(err)
		}
		foreignIDs = append(foreignIDs, id)
	}
	snapshot := func() []ziti.CA {
		var out []ziti.CA
		for _, id := range foreignIDs {
			ca, err := b.admin.GetCA(ctx, id)
			if err != nil {
				t.Fatalf("foreign CA %s: %v", id, err)
			}
			out = append(out, ca)
		}
		return out
	}
	before := snapshot()

	ak, bk := testutil.NewKey(t), testutil.NewKey(t)
	rootA := testutil.Issue(t, nil, nil, ak, "root A "+b.prefix, "", true)
	rootB := testutil.Issue(t, nil, nil, bk, "root B "+b.prefix, "", true)
	for i, bundle := range [][]*x509.Certificate{{rootA}, {rootB}, {rootB}} {
		rep, res := b.run(steps.Apply, fakeBundle{td: "zb.test", roots: bundle}, b.settings(ak, bk))
		if res.Error != "" {
			t.Fatalf("run %d: %s", i, res.Error)
		}
		for _, c := range res.Changes {
			if !strings.HasPrefix(c.Key, b.prefix+"-") || c.Key == b.prefix+"-by-hand" {
				t.Errorf("run %d planned %v on a CA that is not ours", i, c)
			}
		}
		if want := []int64{2, 3, 0}[i]; rep.MutatingCalls != want { // create+verify A; create+verify B, delete A; nothing
			t.Errorf("run %d: %d writes %v, want %d", i, rep.MutatingCalls, rep.Writes, want)
		}
	}
	after := snapshot()
	for i := range before {
		if a, b := before[i], after[i]; a.Name != b.Name || !slices.Equal(a.IdentityRoles, b.IdentityRoles) || a.IsAuthEnabled != b.IsAuthEnabled ||
			a.IsAutoCaEnrollmentEnabled != b.IsAutoCaEnrollmentEnabled || a.IsVerified != b.IsVerified || a.IdentityNameFormat != b.IdentityNameFormat ||
			(a.ExternalIDClaim == nil) != (b.ExternalIDClaim == nil) || len(a.Tags) != len(b.Tags) {
			t.Errorf("foreign CA changed:\nbefore %+v\nafter  %+v", a, b)
		}
	}

	// a foreign CA holding a root of SPIRE's bundle: planning fails, naming it; nothing is written
	rep, res := b.run(steps.Apply, fakeBundle{td: "zb.test", roots: []*x509.Certificate{rootB, foreignRoot}}, b.settings(bk, fk))
	if res.Status != steps.Failed || rep.MutatingCalls != 0 || !strings.Contains(res.Error, b.prefix+"-by-hand") {
		t.Errorf("foreign CA holding a bundle root: %s, %d writes, %s", res.Status, rep.MutatingCalls, res.Error)
	}
}

// 5. A run that stopped between create and verify is repaired: the next plan verifies the CA.
func TestCrashBetweenCreateAndVerifyIsRepaired(t *testing.T) {
	b := newBed(t)
	root, key, _ := b.realRoot()
	ctx := ctxFor(t)
	name := spireca.CAName(b.prefix, root)
	b.createAsTheStep(ctx, name, root)
	rep, res := b.run(steps.PlanOnly, nil, b.settings(key))
	if res.Status != steps.Planned || rep.MutatingCalls != 0 || len(res.Changes) != 1 || res.Changes[0].Action != steps.Update ||
		res.Changes[0].Key != name || !slices.Equal(res.Changes[0].Fields, []string{"isVerified"}) {
		t.Fatalf("plan: %s, %d writes, changes %v, %s", res.Status, rep.MutatingCalls, res.Changes, res.Error)
	}
	rep, res = b.run(steps.Apply, nil, b.settings(key))
	if res.Status != steps.Changed || rep.MutatingCalls != 1 || !strings.HasSuffix(rep.Writes[0], "/verify") {
		t.Fatalf("apply: %s, %d writes %v, %s", res.Status, rep.MutatingCalls, rep.Writes, res.Error)
	}
	b.boundAndConverged(name, root, b.settings(key), "after repair")
}

// boundAndConverged checks that CA name holds root as the step leaves it (verified), and that the next apply
// writes nothing.
func (b *bed) boundAndConverged(name string, root *x509.Certificate, s spireca.Settings, when string) {
	b.t.Helper()
	ca, _ := b.ca(name)
	b.checkCA(ca, root)
	if rep, res := b.run(steps.Apply, nil, s); res.Status != steps.Unchanged || rep.MutatingCalls != 0 {
		b.t.Errorf("%s: %s, %d writes", when, res.Status, rep.MutatingCalls)
	}
}

// createAsTheStep creates the CA of root as the step's create leaves it (not verified yet).
func (b *bed) createAsTheStep(ctx context.Context, name string, root *x509.Certificate) {
	b.t.Helper()
	if _, err := b.admin.CreateCA(ctx, ziti.CA{
		Name: name, CertPEM: testutil.CertPEM(root),
		IdentityNameFormat: spireca.DefaultNameFormat, IdentityRoles: b.roles,
		IsAuthEnabled: true, IsAutoCaEnrollmentEnabled: true,
		ExternalIDClaim: &ziti.ExternalIDClaim{Location: ziti.ClaimLocationSANURI, Matcher: ziti.ClaimMatcherScheme, MatcherCriteria: "spiffe", Parser: ziti.ClaimParserNone},
		Tags:            map[string]any{spireca.TagOwner: spireca.OwnerValue, spireca.TagInstance: b.prefix, spireca.TagTrustDomain: "zb.test"},
	}); err != nil {
		b.t.Fatal(err)
	}
}

// 5b. A create that collides with an earlier run's create (killed while the write was in flight, carried out by
// the controller after this run's plan listed the CAs) takes that CA over and verifies it; a CA of the same
// name with another certificate keeps the error.
func TestCreateCollidingWithAnEarlierRunsCAIsVerified(t *testing.T) {
	b := newBed(t)
	root, key, _ := b.realRoot()
	ctx := ctxFor(t)
	name := spireca.CAName(b.prefix, root)
	earlier := func() { b.createAsTheStep(ctx, name, root) }
	rep, res := b.runWith(steps.Apply, func(src spireca.BundleSource, cas spireca.CAStore) steps.Step {
		return testutil.AfterPlan(spireca.New(src, cas, b.settings(key)), earlier)
	}, nil)
	if res.Status != steps.Changed || rep.MutatingCalls != 2 || !strings.HasSuffix(rep.Writes[1], "/verify") {
		t.Fatalf("apply with the CA created since the plan: %s, %d writes %v, %s", res.Status, rep.MutatingCalls, rep.Writes, res.Error)
	}
	b.boundAndConverged(name, root, b.settings(key), "after taking it over")
}

// 6. Without the root's key (none, or a key of another root) planning fails, naming SPIRE_UPSTREAM_CA_KEY and
// the root, and nothing is written.
func TestMissingOrWrongKeyFailsWithoutWriting(t *testing.T) {
	b := newBed(t)
	root, _, _ := b.realRoot()
	for name, keys := range map[string][]crypto.Signer{"no key": nil, "wrong key": {testutil.NewKey(t)}} {
		t.Run(name, func(t *testing.T) {
			rep, res := b.run(steps.Apply, nil, b.settings(keys...))
			if res.Status != steps.Failed || rep.MutatingCalls != 0 {
				t.Fatalf("%s, %d writes %v", res.Status, rep.MutatingCalls, rep.Writes)
			}
			for _, want := range []string{"SPIRE_UPSTREAM_CA_KEY", spireca.Fingerprint(root), root.Subject.String()} {
				if !strings.Contains(res.Error, want) {
					t.Errorf("error does not name %q: %s", want, res.Error)
				}
			}
			if !config.IsInvalid(res.Err()) {
				t.Errorf("error is not an invalid-configuration error: %v", res.Err())
			}
		})
	}
	if owned := b.owned(); len(owned) != 0 {
		t.Errorf("CAs created: %+v", owned)
	}
}

type fakeBundle struct {
	td    string
	roots []*x509.Certificate
}

func (f fakeBundle) X509Bundle(context.Context) (string, []*x509.Certificate, error) {
	return f.td, f.roots, nil
}
