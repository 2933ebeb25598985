package spireca

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
)

// fakeBundle is a BundleSource with fixed roots.
type fakeBundle struct {
	td    string
	roots []*x509.Certificate
	err   error
}

func (f fakeBundle) X509Bundle(context.Context) (string, []*x509.Certificate, error) {
	return f.td, f.roots, f.err
}

// fakeStore behaves like the controller for CAs: one CA per certificate, unique names, verification by a
// certificate with CN = token signed by the CA's key. It records writes; fail injects errors by "op name".
type fakeStore struct {
	cas    map[string]ziti.CA
	next   int
	writes []string
	fail   map[string]error
}

func newFakeStore(cas ...ziti.CA) *fakeStore {
	f := &fakeStore{cas: map[string]ziti.CA{}, fail: map[string]error{}}
	for _, ca := range cas {
		f.put(ca)
	}
	return f
}

func (f *fakeStore) put(ca ziti.CA) string {
	f.next++
	if ca.ID == "" {
		ca.ID = fmt.Sprintf("ca%d", f.next)
	}
	if ca.VerificationToken == "" {
		ca.VerificationToken = fmt.Sprintf("token-%d", f.next)
	}
	if ca.IdentityNameFormat == "" {
		ca.IdentityNameFormat = ziti.DefaultIdentityNameFormat
	}
	f.cas[ca.ID] = ca
	return ca.ID
}

func (f *fakeStore) ListCAs(context.Context, string) ([]ziti.CA, error) {
	var out []ziti.CA
	for _, id := range slices.Sorted(maps.Keys(f.cas)) {
		out = append(out, f.cas[id])
	}
	return out, f.fail["list"]
}

func (f *fakeStore) GetCA(_ context.Context, id string) (ziti.CA, error) {
	ca, ok := f.cas[id]
	if !ok {
		return ziti.CA{}, &ziti.APIError{Status: http.StatusNotFound, Code: "NOT_FOUND"}
	}
	return ca, nil
}

func (f *fakeStore) CreateCA(_ context.Context, ca ziti.CA) (string, error) {
	f.writes = append(f.writes, "create "+ca.Name)
	if err := f.fail["create "+ca.Name]; err != nil {
		return "", err
	}
	for _, c := range f.cas {
		if c.Name == ca.Name || c.CertPEM == ca.CertPEM {
			return "", &ziti.APIError{Status: http.StatusBadRequest, Code: "COULD_NOT_VALIDATE", Cause: "duplicate"}
		}
	}
	ca.ID, ca.IsVerified, ca.VerificationToken = "", false, ""
	return f.put(ca), nil
}

// write records op on the CA with id and returns that CA, or the error injected for it, or NOT_FOUND.
func (f *fakeStore) write(op, id string) (ziti.CA, error) {
	ca, ok := f.cas[id]
	f.writes = append(f.writes, op+" "+ca.Name)
	if err := f.fail[op+" "+ca.Name]; err != nil {
		return ca, err
	}
	if !ok {
		return ca, &ziti.APIError{Status: http.StatusNotFound, Code: "NOT_FOUND"}
	}
	return ca, nil
}

func (f *fakeStore) UpdateCA(_ context.Context, id string, ca ziti.CA) error {
	have, err := f.write("update", id)
	if err != nil {
		return err
	}
	ca.ID, ca.CertPEM, ca.IsVerified, ca.VerificationToken = id, have.CertPEM, have.IsVerified, have.VerificationToken
	f.cas[id] = ca
	return nil
}

func (f *fakeStore) VerifyCA(_ context.Context, id, proof string) error {
	ca, err := f.write("verify", id)
	if err != nil {
		return err
	}
	if ca.IsVerified {
		return &ziti.APIError{Status: http.StatusConflict, Code: "CA_ALREADY_VERIFIED"}
	}
	cert, err := parseCert(proof)
	root, err2 := parseCert(ca.CertPEM)
	if err != nil || err2 != nil || cert.Subject.CommonName != ca.VerificationToken || cert.CheckSignatureFrom(root) != nil {
		return &ziti.APIError{Status: http.StatusBadRequest, Code: "CA_VERIFICATION_FAILED"}
	}
	ca.IsVerified = true
	f.cas[id] = ca
	return nil
}

func (f *fakeStore) DeleteCA(_ context.Context, id string) error {
	if _, err := f.write("delete", id); err != nil {
		return err
	}
	delete(f.cas, id)
	return nil
}

func (f *fakeStore) byName(name string) (ziti.CA, bool) {
	for _, ca := range f.cas {
		if ca.Name == name {
			return ca, true
		}
	}
	return ziti.CA{}, false
}

// testRoot is a self-signed CA certificate and its key.
type testRoot struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newRoot(t *testing.T, cn string) testRoot {
	t.Helper()
	key := testutil.NewKey(t)
	return testRoot{cert: testutil.Issue(t, nil, nil, key, cn, "", true), key: key}
}

// testKeysPEM returns an EC key as PKCS#8, an RSA key as PKCS#1 and an EC key as SEC 1, in PEM.
func testKeysPEM(t *testing.T) (pkcs8EC, pkcs1RSA, sec1EC string) {
	t.Helper()
	ec := testutil.NewKey(t)
	der, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8EC = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1RSA = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)}))
	sec, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	sec1EC = string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec}))
	return pkcs8EC, pkcs1RSA, sec1EC
}
