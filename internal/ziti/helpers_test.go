package ziti

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/url"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/redact"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
)

// bed returns the test bed's controller (testbed.Require fails without one, skips with -short).
func bed(t *testing.T) testbed.ZitiInfo {
	t.Helper()
	return testbed.Require(t, "ziti").Ziti
}

func ctxFor(t *testing.T) context.Context { return testutil.Context(t, 2*time.Minute) }

func optionsFor(t *testing.T, z testbed.ZitiInfo, counter *calls.Counter) Options {
	t.Helper()
	u, err := url.Parse(z.URL)
	if err != nil {
		t.Fatal(err)
	}
	return Options{URL: u, User: z.User, Password: redact.NewSecret(z.Password), CAFile: z.CAFile, Counter: counter}
}

// login returns a logged-in client and its (fresh) counter.
func login(t *testing.T) (*Client, *calls.Counter) {
	t.Helper()
	counter := calls.New()
	c, err := New(ctxFor(t), optionsFor(t, bed(t), counter))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c, counter
}

// suffix makes names unique per test run.
func suffix(t *testing.T) string { return testutil.RandHex(t, 4) }

type keyPair struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func (k keyPair) pem() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k.cert.Raw}))
}

// newCert makes an EC P-256 certificate; parent nil means self-signed. isCA makes a CA certificate.
func newCert(t *testing.T, parent *keyPair, cn string, uris []string, isCA bool) keyPair {
	t.Helper()
	key, err := newKey()
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"ziti-bootstrap test"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	for _, s := range uris {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	if isCA {
		tmpl.IsCA = true
		tmpl.BasicConstraintsValid = true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	signerCert, signerKey := tmpl, crypto.Signer(key)
	if parent != nil {
		signerCert, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, key.Public(), signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return keyPair{cert: cert, key: key}
}

// tlsCert is leaf plus its intermediates, as a TLS client certificate.
func tlsCert(leaf keyPair, intermediates ...keyPair) tls.Certificate {
	c := tls.Certificate{Certificate: [][]byte{leaf.cert.Raw}, PrivateKey: leaf.key, Leaf: leaf.cert}
	for _, i := range intermediates {
		c.Certificate = append(c.Certificate, i.cert.Raw)
	}
	return c
}

// signJWT makes an ES256 JWT with the given kid and claims.
func signJWT(t *testing.T, key *ecdsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	input := enc(map[string]any{"alg": "ES256", "typ": "JWT", "kid": kid}) + "." + enc(claims)
	sum := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// writes returns the number of writes counted since the last call.
type writeMeter struct {
	c    *calls.Counter
	last int64
}

func (m *writeMeter) delta() int64 {
	n := m.c.Writes()
	d := n - m.last
	m.last = n
	return d
}

// onlyNamed returns the one object named name that list finds, and fails the test unless it finds exactly one.
func onlyNamed[T any](t *testing.T, ctx context.Context, name string, list func(context.Context, string) ([]T, error)) T {
	t.Helper()
	found, err := list(ctx, FilterEq("name", name))
	if err != nil || len(found) != 1 {
		t.Fatalf("list by name %q = %+v, %v; want one", name, found, err)
	}
	return found[0]
}
