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
	return t, nil
}

func badCA(msg string) error {
	return wait.Permanent(&invalid.Error{Problems: []invalid.Problem{{Var: "KEYCLOAK_CA_FILE", Msg: msg}}})
}
