// Package casigner is the SPIRE CA signer: a small service beside SPIRE's server that holds the private key(s)
// of SPIRE's UpstreamAuthority root, and the client of it.
//
// OpenZiti trusts a third-party CA only once it is verified, by a certificate whose subject CN is the CA's
// verificationToken, signed by the CA's own key. SPIRE's root key lives with SPIRE (the secret
// spire_upstream_ca_key of the SPIRE stack). The signer lets the OpenZiti side (the bootstrap job and the
// converge service) verify a new root without holding that key: a root rotation then changes the SPIRE stack
// only (the server, its signer and the agents' trust bundle), and the converge service binds the new root in
// OpenZiti on its own.
//
// The signer signs one kind of certificate and nothing else: subject CN = a verification token (letters,
// digits, '.', '_', '-'; at most 64), for a key pair it makes for the occasion and throws away (nobody ever
// holds the private key of what it signs: the certificate proves possession of the root's key to OpenZiti and
// cannot authenticate anyone), valid one hour, not a CA, no subject alternative name (so never an SVID), and
// only by a root whose key it holds. It serves HTTP on a unix socket only (mode 0600; the volume that holds it
// is mounted by the bootstrap job and the converge service):
//
//	GET  /v1/keys    {"keys": [base64 PKIX DER of each public key]}: which roots it can sign for
//	POST /v1/proof   {"token": "…", "root": "PEM"} → {"certificate": "PEM"}; 404 when it holds no key of root
//	GET  /healthz    200 with the number of keys held
package casigner

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"
)

// Paths of the API.
const (
	PathKeys   = "/v1/keys"
	PathProof  = "/v1/proof"
	PathHealth = "/healthz"
)

type keysDoc struct {
	Keys [][]byte `json:"keys"` // PKIX DER
}

type proofRequest struct {
	Token string `json:"token"`
	Root  string `json:"root"` // PEM
}

type proofResponse struct {
	Certificate string `json:"certificate"` // PEM
}

type errorDoc struct {
	Error string `json:"error"`
}

// ErrNoKey is the error of Prove when the signer holds no key of the root.
var ErrNoKey = errors.New("the SPIRE CA signer holds no key of this root")

var tokenPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// CheckToken refuses anything but a plausible verification token as the subject CN.
func CheckToken(token string) error {
	if !tokenPattern.MatchString(token) {
		return fmt.Errorf("verification token %q: want 1 to 64 letters, digits, '.', '_' or '-'", token)
	}
	return nil
}

// KeyFor returns the key among keys whose public key is cert's, or nil.
func KeyFor(cert *x509.Certificate, keys []crypto.Signer) crypto.Signer {
	pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok {
		return nil
	}
	for _, k := range keys {
		if k != nil && pub.Equal(k.Public()) {
			return k
		}
	}
	return nil
}

func parseRoot(s string) (*x509.Certificate, error) {
	b, _ := pem.Decode([]byte(s))
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("root: no PEM certificate")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("root: %w", err)
	}
	if !c.IsCA {
		return nil, errors.New("root: not a CA certificate")
	}
	return c, nil
}

func rootPEM(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}
