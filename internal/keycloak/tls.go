package keycloak

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/invalid"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/safefile"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
)

// pinnedTransport is an HTTP transport that trusts only the CA certificates of the PEM file caFile
// (KEYCLOAK_CA_FILE): the system's roots do not verify Keycloak then.
func pinnedTransport(caFile string) (http.RoundTripper, error) {
	b, err := safefile.ReadValue(caFile)
	if err != nil {
		return nil, badCA(fmt.Sprintf("cannot read %s: %v; point it at the PEM CA bundle of Keycloak's TLS certificate", caFile, errors.Unwrap(err)))
	}
	return pinnedTransportPEM(b, caFile)
}

// pinnedTransportPEM trusts only the CA certificates of pemData (read from where).
func pinnedTransportPEM(pemData []byte, where string) (http.RoundTripper, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		return nil, badCA(fmt.Sprintf("%s holds no PEM certificate; point it at the CA bundle of Keycloak's TLS certificate", where))
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	// HTTP/1.1: a run makes a few dozen requests at most, and on a Keycloak that has just started its HTTP/2
	// path is cold (measured in the bootstrap job, 3 runs each: keycloak/reachable 223-318 ms over HTTP/1.1
	// against 312-486 ms over HTTP/2, the realm's reads 235-369 against 311-435 ms)
	t.ForceAttemptHTTP2 = false
	return t, nil
}

func badCA(msg string) error {
	return wait.Permanent(&invalid.Error{Problems: []invalid.Problem{{Var: "KEYCLOAK_CA_FILE", Msg: msg}}})
}
