package spireca

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"strings"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
)

// fakeSigner holds keys as the SPIRE CA signer does, and counts its calls.
type fakeSigner struct {
	keys  []crypto.Signer
	calls []string
	err   error
}

func (f *fakeSigner) PublicKeys(context.Context) ([]crypto.PublicKey, error) {
	f.calls = append(f.calls, "keys")
	var out []crypto.PublicKey
	for _, k := range f.keys {
		out = append(out, k.Public())
	}
	return out, f.err
}

func (f *fakeSigner) Prove(_ context.Context, token string, root *x509.Certificate) (string, error) {
	f.calls = append(f.calls, "prove")
	key := keyFor(root, f.keys)
	if key == nil {
		return "", errors.New("no key")
	}
	return ziti.VerificationCert(token, root, key)
}

// Without the root's key, the step has the signer prove possession: a new root is registered and verified (the
// rotation the converge service makes in the Swarm, where the OpenZiti stack holds no key); on a converged system
// the signer is not called at all.
func TestSignerVerifiesRootsWithoutTheKey(t *testing.T) {
	a, b := newRoot(t, "root A"), newRoot(t, "root B")
	signer := &fakeSigner{keys: []crypto.Signer{a.key, b.key}}
	s := settings()
	s.Signer = signer
	store := newFakeStore()
	converge(t, New(bundleOf(a), store, s), store)
	ch, _ := converge(t, New(bundleOf(a, b), store, s), store)
	if len(ch) != 1 || !strings.HasPrefix(ch[0], "create "+CAName("t", b.cert)) {
		t.Errorf("rotation: %v; want root B's CA created", ch)
	}
	for _, r := range []testRoot{a, b} {
		if ca, ok := store.byName(CAName("t", r.cert)); !ok || !ca.IsVerified {
			t.Errorf("CA of %s: %+v %v; want it verified", r.cert.Subject, ca, ok)
		}
	}
	signer.calls = nil
	if ch, writes := converge(t, New(bundleOf(a, b), store, s), store); len(ch)+len(writes)+len(signer.calls) != 0 {
		t.Errorf("converged: changes %v, writes %v, signer calls %v; want none", ch, writes, signer.calls)
	}
	// a local key is used before the signer
	signer.calls = nil
	c := newRoot(t, "root C")
	s.Keys = Keys{c.key}
	converge(t, New(bundleOf(a, b, c), store, s), store)
	if len(signer.calls) != 0 {
		t.Errorf("signer called for a root whose key is local: %v", signer.calls)
	}
}

// A root the signer holds no key of is the missing-key configuration error, naming the signer too; a signer that
// does not answer fails the plan, naming SPIRE_CA_SIGNER; neither writes.
func TestSignerWithoutTheKey(t *testing.T) {
	a, stranger := newRoot(t, "root A"), newRoot(t, "stranger")
	s := settings()
	s.Signer = &fakeSigner{keys: []crypto.Signer{stranger.key}}
	store := newFakeStore()
	_, err := plan(t, New(bundleOf(a), store, s), store)
	var cerr *config.Error
	if !errors.As(err, &cerr) || !strings.Contains(err.Error(), SignerVar) || !strings.Contains(err.Error(), Fingerprint(a.cert)) {
		t.Errorf("err = %v; want the missing key, naming %s and root A", err, SignerVar)
	}
	s.Signer = &fakeSigner{err: errors.New("connection refused")}
	if _, err := plan(t, New(bundleOf(a), store, s), store); err == nil || !strings.Contains(err.Error(), SignerVar+": connection refused") {
		t.Errorf("err = %v; want the signer's failure", err)
	}
	if len(store.writes) != 0 {
		t.Errorf("writes %v", store.writes)
	}
}
