package keycloak_test

import (
	"encoding/pem"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/invalid"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/keycloak"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/keycloak/keycloaktest"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
)

// The tool's Keycloak client trusts KEYCLOAK_CA_FILE alone (as the bootstrap job and the converge service do
// inside the Swarm): the test bed's Keycloak behind a TLS endpoint answers the admin login when that file holds
// the endpoint's CA; with the system's CA bundle in it the login fails on the certificate, and a file without a
// certificate is an invalid KEYCLOAK_CA_FILE.
func TestKeycloakClientTrustsItsCAFileOnly(t *testing.T) {
	opts := keycloaktest.Options(t, nil)
	front := httptest.NewTLSServer(httputil.NewSingleHostReverseProxy(opts.URL))
	t.Cleanup(front.Close)
	u, err := url.Parse(front.URL)
	testutil.Must(t, err)
	opts.URL = u
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		testutil.Must(t, os.WriteFile(p, []byte(data), 0o600))
		return p
	}
	ctx := testutil.Context(t, time.Minute)

	opts.CAFile = write("ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: front.Certificate().Raw})))
	if _, err := keycloak.New(ctx, opts); err != nil {
		t.Fatalf("admin login over TLS with KEYCLOAK_CA_FILE holding its CA: %v", err)
	}

	opts.CAFile = "/etc/ssl/certs/ca-certificates.crt"
	if _, err := keycloak.New(ctx, opts); err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Errorf("with another CA bundle: %v; want the certificate refused", err)
	}

	opts.CAFile = write("empty.pem", "no certificate\n")
	if _, err := keycloak.Dial(opts); !invalid.Is(err) || !strings.Contains(err.Error(), "KEYCLOAK_CA_FILE") {
		t.Errorf("a CA file without a certificate: %v; want an invalid KEYCLOAK_CA_FILE", err)
	}
}
