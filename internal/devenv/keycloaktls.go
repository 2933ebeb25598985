package devenv

import (
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Keycloak's TLS inside the Swarm: a dev CA of its own and a server certificate it signs for the names services
// reach Keycloak at (the network alias keycloak, and localhost for its published port). The CA is what the tool's
// Keycloak client, the bootstrap job, the converge service and the OpenZiti controller (its JWKS fetch) trust.
const (
	KeycloakCAFile   = "keycloak_ca.crt"
	KeycloakCertFile = "keycloak_tls.crt"
	KeycloakKeyFile  = "keycloak_tls.key"
)

// KeycloakTLSNames are the DNS names and addresses of the dev server certificate.
var KeycloakTLSNames = []string{"keycloak", "localhost", "127.0.0.1", "::1"}

// keycloakTLSFiles are the files of Keycloak's TLS. A state made before they existed gets them on its next run
// (ensureKeycloakTLS): unlike the passwords, no volume holds data made with them.
var keycloakTLSFiles = []File{
	{KeycloakCAFile, "KEYCLOAK_CA_FILE", "CA of Keycloak's certificate inside the Swarm (the tool, the bootstrap job and OpenZiti's JWKS fetch trust it)"},
	{KeycloakCertFile, "KEYCLOAK_TLS_CERT_FILE", "Keycloak's TLS certificate (signed by that CA)"},
	{KeycloakKeyFile, "KEYCLOAK_TLS_KEY_FILE", "its private key"},
}

func init() { Files = append(Files, keycloakTLSFiles...) }

// keycloakTLS makes the CA, certificate and key of Keycloak's TLS.
func keycloakTLS(validity time.Duration) (map[string][]byte, error) {
	ca, err := newCert("ziti-bootstrap dev Keycloak CA", nil, validity)
	if err != nil {
		return nil, err
	}
	srv, err := newServerCert("keycloak", ca, KeycloakTLSNames, validity)
	if err != nil {
		return nil, err
	}
	return map[string][]byte{KeycloakCAFile: ca.certPEM, KeycloakCertFile: srv.certPEM, KeycloakKeyFile: srv.keyPEM}, nil
}

// newServerCert makes a TLS server certificate signed by ca for names (DNS names or IP addresses).
func newServerCert(cn string, ca *cert, names []string, validity time.Duration) (*cert, error) {
	return makeCert(cn, ca, validity, func(tmpl *x509.Certificate) {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		for _, n := range names {
			if ip := net.ParseIP(n); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, n)
			}
		}
	})
}

// ensureKeycloakTLS adds Keycloak's TLS files to a state made before they existed.
func (s *State) ensureKeycloakTLS() error {
	return s.addMissing([]string{KeycloakKeyFile, KeycloakCertFile, KeycloakCAFile}, func() (map[string][]byte, error) {
		return keycloakTLS(10 * 365 * 24 * time.Hour)
	})
}

// addMissing adds the files names, whose contents make returns, to a state made before they existed: unless the
// last of them exists, each is written to a temporary file first and renamed in place, the last one last, so that
// an interrupted run leaves either no last file (and the next run makes them all again) or a complete set.
func (s *State) addMissing(names []string, make func() (map[string][]byte, error)) error {
	if _, err := os.Stat(s.Path(names[len(names)-1])); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("dev state: %w", err)
	}
	data, err := make()
	if err != nil {
		return err
	}
	for _, f := range names {
		tmp := filepath.Join(s.Dir, "."+f+".new-"+randSuffix())
		if err := writePrivate(tmp, data[f]); err != nil {
			return err
		}
		if err := os.Rename(tmp, s.Path(f)); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("dev state: %w", err)
		}
	}
	return nil
}

func randSuffix() string {
	n, _ := rand.Int(rand.Reader, big.NewInt(1<<40))
	return n.Text(36)
}
