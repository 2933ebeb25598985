package spireca

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

const td = "zb.test"

func settings(keys ...crypto.Signer) Settings {
	return Settings{NamePrefix: "t", Roles: []string{"spire-workloads"}, Keys: keys}
}

func bundleOf(roots ...testRoot) fakeBundle {
	b := fakeBundle{td: td}
	for _, r := range roots {
		b.roots = append(b.roots, r.cert)
	}
	return b
}

// stepFor returns the step for a bundle of root a alone, with keys and no CA store, and the CA it wants for a.
func stepFor(a testRoot, keys ...crypto.Signer) (*Step, ziti.CA) {
	s := New(bundleOf(a), nil, settings(keys...))
	return s, desired(s.s, td, a.cert)
}

// onStore gives s a fake CA store holding cas, and returns it.
func onStore(s *Step, cas ...ziti.CA) *fakeStore {
	store := newFakeStore(cas...)
	s.cas = store
	return store
}

// plan plans with the fake store and checks that planning wrote nothing.
func plan(t *testing.T, s *Step, store *fakeStore) (*steps.Plan, error) {
	t.Helper()
	before := len(store.writes)
	p, err := s.Plan(context.Background())
	if len(store.writes) != before {
		t.Fatalf("Plan wrote: %v", store.writes[before:])
	}
	return p, err
}

// applyAfter plans, lets meanwhile change the store (as a concurrent run or an operator would), and then applies
// the plan, which must succeed.
func applyAfter(t *testing.T, s *Step, store *fakeStore, meanwhile func()) {
	t.Helper()
	p, err := plan(t, s, store)
	if err != nil {
		t.Fatal(err)
	}
	meanwhile()
	if err := p.Apply(context.Background()); err != nil {
		t.Errorf("Apply: %v", err)
	}
}

// convergedOnA returns roots A and B, and a fake store on which the CA of A alone is converged.
func convergedOnA(t *testing.T) (a, b testRoot, store *fakeStore) {
	t.Helper()
	a, b = newRoot(t, "root A"), newRoot(t, "root B")
	store = newFakeStore()
	converge(t, New(bundleOf(a), store, settings(a.key)), store)
	return a, b, store
}

// converge plans and applies, and returns the plan's changes as strings and the writes.
func converge(t *testing.T, s *Step, store *fakeStore) ([]string, []string) {
	t.Helper()
	p, err := plan(t, s, store)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	before := len(store.writes)
	if err := p.Apply(context.Background()); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	var ch []string
	for _, c := range p.Changes {
		ch = append(ch, string(c.Action)+" "+c.Key+" "+strings.Join(c.Fields, ","))
	}
	return ch, slices.Clone(store.writes[before:])
}

func TestNameAndDependencies(t *testing.T) {
	s := New(nil, nil, Settings{})
	if s.Name() != "spire/ziti-ca" || !slices.Equal(s.DependsOn(), []string{"spire/reachable", "ziti/reachable"}) {
		t.Errorf("Name %q, DependsOn %v", s.Name(), s.DependsOn())
	}
	if s.s.NamePrefix != DefaultNamePrefix || s.s.NameFormat != DefaultNameFormat {
		t.Errorf("defaults: %+v", s.s)
	}
}

func TestCreateVerifyThenNothing(t *testing.T) {
	a := newRoot(t, "root A")
	store := newFakeStore()
	s := New(bundleOf(a), store, settings(a.key))
	name := CAName("t", a.cert)
	if want := "t-" + Fingerprint(a.cert)[:12]; name != want || len(Fingerprint(a.cert)) != 64 {
		t.Fatalf("CAName = %q, want %q", name, want)
	}
	ch, writes := converge(t, s, store)
	if !slices.Equal(ch, []string{"create " + name + " "}) || !slices.Equal(writes, []string{"create " + name, "verify " + name}) {
		t.Errorf("changes %q, writes %q", ch, writes)
	}
	ca, ok := store.byName(name)
	if !ok || !ca.IsVerified || !ca.IsAuthEnabled || !ca.IsAutoCaEnrollmentEnabled || ca.IsOttCaEnrollmentEnabled ||
		!slices.Equal(ca.IdentityRoles, []string{"spire-workloads"}) || ca.IdentityNameFormat != DefaultNameFormat ||
		ca.ExternalIDClaim == nil || *ca.ExternalIDClaim != (ziti.ExternalIDClaim{Location: "SAN_URI", Matcher: "SCHEME", MatcherCriteria: "spiffe", Parser: "NONE"}) ||
		ca.Tags[TagOwner] != "spire-ca" || ca.Tags[TagInstance] != "t" || ca.Tags[TagTrustDomain] != td {
		t.Errorf("CA = %+v", ca)
	}
	ch, writes = converge(t, s, store)
	if len(ch) != 0 || len(writes) != 0 {
		t.Errorf("second run: changes %q, writes %q", ch, writes)
	}
	// a converged system needs no key
	ch, writes = converge(t, New(bundleOf(a), store, settings()), store)
	if len(ch) != 0 || len(writes) != 0 {
		t.Errorf("run without keys: changes %q, writes %q", ch, writes)
	}
}

func TestVerifyRepairsACrashAfterCreate(t *testing.T) {
	a := newRoot(t, "root A")
	s, ca := stepFor(a, a.key)
	store := onStore(s, ca) // created, never verified
	ch, writes := converge(t, s, store)
	if !slices.Equal(ch, []string{"update " + ca.Name + " isVerified"}) || !slices.Equal(writes, []string{"verify " + ca.Name}) {
		t.Errorf("changes %q, writes %q", ch, writes)
	}
	if got, _ := store.byName(ca.Name); !got.IsVerified {
		t.Error("not verified")
	}
}

func TestAlreadyVerifiedMeanwhileIsSuccess(t *testing.T) {
	a := newRoot(t, "root A")
	s, ca := stepFor(a, a.key)
	store := onStore(s, ca)
	applyAfter(t, s, store, func() {
		for id, c := range store.cas { // a concurrent run verifies it between plan and apply
			c.IsVerified = true
			store.cas[id] = c
		}
	})
}

func TestUpdateNamesFieldsAndKeepsOperatorTags(t *testing.T) {
	a := newRoot(t, "root A")
	s, ca := stepFor(a, a.key)
	ca.IsVerified = true
	ca.Name = "renamed-by-hand"
	ca.IdentityRoles = []string{"other"}
	ca.IsOttCaEnrollmentEnabled = true
	ca.ExternalIDClaim = nil
	ca.Tags = map[string]any{TagOwner: OwnerValue, TagInstance: "t", TagTrustDomain: "old.test", "team": "ops"}
	store := onStore(s, ca)
	ch, writes := converge(t, s, store)
	want := "update " + CAName("t", a.cert) + " name,identityRoles,isOttCaEnrollmentEnabled,externalIdClaim,tags"
	if !slices.Equal(ch, []string{want}) || len(writes) != 1 {
		t.Errorf("changes %q (want %q), writes %q", ch, want, writes)
	}
	got, _ := store.byName(CAName("t", a.cert))
	if got.Tags["team"] != "ops" || got.Tags[TagTrustDomain] != td || got.IsOttCaEnrollmentEnabled || got.ExternalIDClaim == nil {
		t.Errorf("after update: %+v", got)
	}
	// roles compare as sets
	s.s.Roles = []string{"b", "a", "a"}
	converge(t, s, store)
	s.s.Roles = []string{"a", "b"}
	if ch, _ := converge(t, s, store); len(ch) != 0 {
		t.Errorf("same role set in another order planned %q", ch)
	}
}

func TestRotationAddsBeforeItDeletes(t *testing.T) {
	a, b, store := convergedOnA(t)
	na, nb := CAName("t", a.cert), CAName("t", b.cert)

	// both roots in the bundle: add B, keep A
	ch, writes := converge(t, New(bundleOf(a, b), store, settings(a.key, b.key)), store)
	if !slices.Equal(ch, []string{"create " + nb + " "}) || !slices.Equal(writes, []string{"create " + nb, "verify " + nb}) {
		t.Errorf("A+B: changes %q, writes %q", ch, writes)
	}
	// only B: A goes
	ch, writes = converge(t, New(bundleOf(b), store, settings()), store)
	if !slices.Equal(ch, []string{"delete " + na + " "}) || !slices.Equal(writes, []string{"delete " + na}) {
		t.Errorf("B: changes %q, writes %q", ch, writes)
	}
	if ch, writes := converge(t, New(bundleOf(b), store, settings()), store); len(ch)+len(writes) != 0 {
		t.Errorf("after rotation: changes %q, writes %q", ch, writes)
	}
}

func TestDirectSwitchCreatesAndVerifiesBeforeDeleting(t *testing.T) {
	a, b, store := convergedOnA(t)
	na, nb := CAName("t", a.cert), CAName("t", b.cert)
	ch, writes := converge(t, New(bundleOf(b), store, settings(b.key)), store)
	if !slices.Equal(ch, []string{"create " + nb + " ", "delete " + na + " "}) ||
		!slices.Equal(writes, []string{"create " + nb, "verify " + nb, "delete " + na}) {
		t.Errorf("changes %q, writes %q", ch, writes)
	}
}

func TestFailedVerifyHoldsBackDeletes(t *testing.T) {
	a, b, store := convergedOnA(t)
	na, nb := CAName("t", a.cert), CAName("t", b.cert)
	store.fail["verify "+nb] = &ziti.APIError{Status: 500, Code: "UNHANDLED"}
	s := New(bundleOf(b), store, settings(b.key))
	p, err := plan(t, s, store)
	if err != nil {
		t.Fatal(err)
	}
	err = p.Apply(context.Background())
	if err == nil || !strings.Contains(err.Error(), "verify ziti-ca "+nb) || !strings.Contains(err.Error(), "held back") {
		t.Errorf("Apply error = %v; want the verify failure naming %s and held-back deletes", err, nb)
	}
	if _, ok := store.byName(na); !ok {
		t.Fatalf("old CA deleted although the new one is not verified; writes %q", store.writes)
	}
	// the re-run verifies the new CA, then deletes the old
	delete(store.fail, "verify "+nb)
	ch, writes := converge(t, s, store)
	if !slices.Equal(ch, []string{"update " + nb + " isVerified", "delete " + na + " "}) ||
		!slices.Equal(writes, []string{"verify " + nb, "delete " + na}) {
		t.Errorf("re-run: changes %q, writes %q", ch, writes)
	}
}

func TestForeignCAsAreNeverTouched(t *testing.T) {
	a, f1, f2 := newRoot(t, "root A"), newRoot(t, "foreign 1"), newRoot(t, "foreign 2")
	untagged := ziti.CA{Name: "hand-made", CertPEM: certPEM(f1.cert), IdentityRoles: []string{"x"}}
	otherInstance := desired(Settings{NamePrefix: "other", NameFormat: DefaultNameFormat}, td, f2.cert)
	otherInstance.IdentityRoles = []string{"differs"}
	store := newFakeStore(untagged, otherInstance)
	before, _ := store.ListCAs(context.Background(), "")
	s := New(bundleOf(a), store, settings(a.key))
	ch, writes := converge(t, s, store)
	if !slices.Equal(writes, []string{"create " + CAName("t", a.cert), "verify " + CAName("t", a.cert)}) {
		t.Errorf("changes %q, writes %q", ch, writes)
	}
	for _, ca := range before {
		if got := store.cas[ca.ID]; fmt.Sprint(got) != fmt.Sprint(ca) {
			t.Errorf("foreign CA changed:\n%+v\n%+v", ca, got)
		}
	}
}

func TestForeignCAHoldingARootIsAnError(t *testing.T) {
	a := newRoot(t, "root A")
	store := newFakeStore(ziti.CA{Name: "by-hand", CertPEM: certPEM(a.cert)})
	_, err := plan(t, New(bundleOf(a), store, settings(a.key)), store)
	if err == nil || !strings.Contains(err.Error(), `CA "by-hand"`) || !strings.Contains(err.Error(), Fingerprint(a.cert)) ||
		!strings.Contains(err.Error(), "delete") {
		t.Errorf("err = %v", err)
	}
}

func TestNameTakenIsAnError(t *testing.T) {
	a, other := newRoot(t, "root A"), newRoot(t, "other")
	store := newFakeStore(ziti.CA{ID: "x1", Name: CAName("t", a.cert), CertPEM: certPEM(other.cert)})
	_, err := plan(t, New(bundleOf(a), store, settings(a.key)), store)
	if err == nil || !strings.Contains(err.Error(), "taken by OpenZiti CA id x1") || !strings.Contains(err.Error(), "ZITI_SPIRE_CA_NAME") {
		t.Errorf("err = %v", err)
	}
}

func TestMissingOrMismatchedKeyIsAConfigError(t *testing.T) {
	a, b, stranger := newRoot(t, "root A"), newRoot(t, "root B"), newRoot(t, "stranger")
	for name, keys := range map[string][]crypto.Signer{"none": nil, "mismatched": {stranger.key}, "one of two": {a.key}} {
		t.Run(name, func(t *testing.T) {
			store := newFakeStore()
			_, err := plan(t, New(bundleOf(a, b), store, settings(keys...)), store)
			var cerr *config.Error
			if !errors.As(err, &cerr) || cerr.Problems[0].Var != "SPIRE_UPSTREAM_CA_KEY" {
				t.Fatalf("err = %v; want a *config.Error for SPIRE_UPSTREAM_CA_KEY", err)
			}
			if !strings.Contains(err.Error(), Fingerprint(b.cert)) || !strings.Contains(err.Error(), "CN=root B") {
				t.Errorf("err does not name root B's subject and fingerprint: %v", err)
			}
			if len(store.writes) != 0 {
				t.Errorf("writes %q", store.writes)
			}
		})
	}
	// an unverified owned CA needs the key too
	s, ca := stepFor(a)
	store := onStore(s, ca)
	if _, err := plan(t, s, store); err == nil || !strings.Contains(err.Error(), "must be verified") {
		t.Errorf("unverified CA without key: err = %v", err)
	}
}

func TestEmptyBundleAndErrors(t *testing.T) {
	a := newRoot(t, "root A")
	store := newFakeStore()
	converge(t, New(bundleOf(a), store, settings(a.key)), store)
	if _, err := plan(t, New(fakeBundle{td: td}, store, settings()), store); err == nil || !strings.Contains(err.Error(), "no X.509 authority") {
		t.Errorf("empty bundle: err = %v", err)
	}
	boom := errors.New("boom")
	if _, err := plan(t, New(fakeBundle{err: boom}, store, settings()), store); !errors.Is(err, boom) {
		t.Errorf("bundle error: %v", err)
	}
	s := New(bundleOf(a), store, settings())
	s.s.TrustDomain = "other.test"
	var cerr *config.Error
	if _, err := plan(t, s, store); !errors.As(err, &cerr) || cerr.Problems[0].Var != "TRUST_DOMAIN" {
		t.Errorf("trust domain mismatch: %v", err)
	}
	store.fail["list"] = boom
	if _, err := plan(t, New(bundleOf(a), store, settings()), store); !errors.Is(err, boom) {
		t.Errorf("list error: %v", err)
	}
}

func TestDeleteOfAVanishedCAIsSuccess(t *testing.T) {
	a, b := newRoot(t, "root A"), newRoot(t, "root B")
	store := newFakeStore()
	converge(t, New(bundleOf(a, b), store, settings(a.key, b.key)), store)
	applyAfter(t, New(bundleOf(b), store, settings()), store, func() {
		old, _ := store.byName(CAName("t", a.cert))
		delete(store.cas, old.ID) // deleted by someone else meanwhile
	})
}

func TestOwnedDuplicatesAndUnreadableAreDeleted(t *testing.T) {
	a := newRoot(t, "root A")
	s, good := stepFor(a, a.key)
	good.IsVerified = true
	broken := ziti.CA{Name: "t-broken", CertPEM: "garbage", Tags: ownerTags("t", td)}
	foreignBroken := ziti.CA{Name: "x-broken", CertPEM: "garbage"}
	store := onStore(s, good, broken, foreignBroken)
	ch, _ := converge(t, s, store)
	if !slices.Equal(ch, []string{"delete t-broken "}) {
		t.Errorf("changes %q", ch)
	}
}

func TestParseKeys(t *testing.T) {
	ec, rsaPEM, ecSEC1 := testKeysPEM(t)
	certBlock := certPEM(newRoot(t, "x").cert)
	for _, tc := range []struct {
		name, in string
		n        int
		err      string
	}{
		{"empty", "  \n", 0, ""},
		{"pkcs8", ec, 1, ""},
		{"sec1 and pkcs1", ecSEC1 + rsaPEM, 2, ""},
		{"with certificate", certBlock + ec, 1, ""},
		{"garbage", "not a key", 0, "holds no PEM private key"},
		{"only a certificate", certBlock, 0, "holds no PEM private key"},
		{"encrypted", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n", 0, "encrypted"},
		{"bad block", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", 0, "PEM block 1 (PRIVATE KEY) does not parse"},
		{"public key", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", 0, `type "PUBLIC KEY"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := ParseKeys(tc.in)
			if tc.err != "" {
				var cerr *config.Error
				if !errors.As(err, &cerr) || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "SPIRE_UPSTREAM_CA_KEY") {
					t.Fatalf("err = %v; want a *config.Error containing %q", err, tc.err)
				}
				return
			}
			if err != nil || len(keys) != tc.n {
				t.Fatalf("ParseKeys = %d keys, %v; want %d", len(keys), err, tc.n)
			}
		})
	}
}

func TestKeysAreRedacted(t *testing.T) {
	ec, _, _ := testKeysPEM(t)
	keys, err := ParseKeys(ec)
	if err != nil {
		t.Fatal(err)
	}
	s := Settings{NamePrefix: "p", Keys: keys}
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(f, s)
		if !strings.Contains(out, "**redacted**") || strings.Contains(out, "D:") || strings.Contains(out, "PrivateKey") {
			t.Errorf("%s of Settings = %s", f, out)
		}
	}
	st := New(nil, nil, s)
	if out := fmt.Sprintf("%+v", *st); strings.Contains(out, "D:") {
		t.Errorf("step prints its key: %s", out)
	}
}

func TestKeyMatchesByPublicKey(t *testing.T) {
	a, b := newRoot(t, "a"), newRoot(t, "b")
	if keyFor(a.cert, []crypto.Signer{b.key, a.key}) != a.key || keyFor(a.cert, []crypto.Signer{b.key}) != nil {
		t.Error("keyFor")
	}
}
