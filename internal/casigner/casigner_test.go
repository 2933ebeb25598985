package casigner_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/casigner"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
)

// The signer signs, for the holders of its socket, OpenZiti's CA verification certificate and nothing else: CN =
// the token, signed by the root's key, for a key nobody holds, no CA, no SAN, an hour at most; a root whose key
// it does not hold, or a token that is no token, is refused.
func TestSignerSignsVerificationsOnly(t *testing.T) {
	ctx := testutil.Context(t, time.Minute)
	rootKey, otherKey := testutil.NewKey(t), testutil.NewKey(t)
	root := testutil.Issue(t, nil, nil, rootKey, "root A", "", true)
	other := testutil.Issue(t, nil, nil, otherKey, "root B", "", true)
	dir, err := os.MkdirTemp("", "zbsig") // short: a unix socket's path
	testutil.Must(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s", "api.sock")
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- casigner.Serve(sctx, sock, (&casigner.Server{Keys: []crypto.Signer{rootKey}}).Handler())
	}()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	c, err := casigner.Dial("unix://" + sock)
	testutil.Must(t, err)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := c.Health(ctx); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("signer not up: %v", err)
		}
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v %v; want 0600", fi.Mode(), err)
	}

	pubs, err := c.PublicKeys(ctx)
	testutil.Must(t, err)
	if len(pubs) != 1 || !rootKey.PublicKey.Equal(pubs[0]) {
		t.Errorf("public keys %v; want the root's only", pubs)
	}
	proof, err := c.Prove(ctx, "Tok3n_-.x", root)
	testutil.Must(t, err)
	b, _ := pem.Decode([]byte(proof))
	if b == nil {
		t.Fatalf("no PEM: %q", proof)
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	testutil.Must(t, err)
	if err := cert.CheckSignatureFrom(root); err != nil {
		t.Errorf("not signed by the root: %v", err)
	}
	if cert.Subject.CommonName != "Tok3n_-.x" || cert.IsCA || len(cert.URIs)+len(cert.DNSNames)+len(cert.IPAddresses)+len(cert.EmailAddresses) > 0 ||
		cert.NotAfter.Sub(cert.NotBefore) > 2*time.Hour || rootKey.PublicKey.Equal(cert.PublicKey) {
		t.Errorf("verification certificate: CN %q, CA %v, URIs %v, DNS %v, valid %s–%s", cert.Subject.CommonName, cert.IsCA,
			cert.URIs, cert.DNSNames, cert.NotBefore, cert.NotAfter)
	}

	if _, err := c.Prove(ctx, "tok", other); !errors.Is(err, casigner.ErrNoKey) {
		t.Errorf("a root whose key it does not hold: %v; want ErrNoKey", err)
	}
	for _, tok := range []string{"", "a b", "CN=x,O=y", string(make([]byte, 65))} {
		if _, err := c.Prove(ctx, tok, root); err == nil {
			t.Errorf("token %q signed", tok)
		}
	}
	if casigner.CheckToken("spiffe://td/x") == nil {
		t.Error("CheckToken accepts a SPIFFE ID")
	}
}
