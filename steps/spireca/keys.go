package spireca

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/casigner"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
)

// KeyVar is the variable (and Docker secret spire_upstream_ca_key) that holds the root keys.
const KeyVar = "SPIRE_UPSTREAM_CA_KEY"

// SignerVar is the variable that names the SPIRE CA signer's socket (Settings.Signer).
const SignerVar = "SPIRE_CA_SIGNER"

// proveFunc returns OpenZiti's verification certificate (PEM) for a verification token.
type proveFunc func(ctx context.Context, token string) (string, error)

// keyring finds who proves possession of a root's key: a key of Keys, else the signer, whose public keys it reads
// once, and only when a root needs it (a converged system does not call the signer); err is why that read failed.
type keyring struct {
	ctx     context.Context
	keys    []crypto.Signer
	signer  Signer
	fetched bool
	pubs    []crypto.PublicKey
	err     error
}

func (k *keyring) prover(cert *x509.Certificate) proveFunc {
	if key := keyFor(cert, k.keys); key != nil {
		return func(_ context.Context, token string) (string, error) { return ziti.VerificationCert(token, cert, key) }
	}
	if k.signer == nil {
		return nil
	}
	if !k.fetched {
		k.fetched = true
		k.pubs, k.err = k.signer.PublicKeys(k.ctx)
	}
	pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !slices.ContainsFunc(k.pubs, func(p crypto.PublicKey) bool { return pub.Equal(p) }) {
		return nil
	}
	signer := k.signer
	return func(ctx context.Context, token string) (string, error) { return signer.Prove(ctx, token, cert) }
}

// Keys are the private keys of SPIRE's UpstreamAuthority roots. They print as "**redacted**", so a Settings
// value can be logged.
type Keys []crypto.Signer

func (k Keys) String() string   { return fmt.Sprintf("**redacted** (%d key(s))", len(k)) }
func (k Keys) GoString() string { return k.String() }

// ParseKeys reads the PEM private keys in s: PKCS#8 ("PRIVATE KEY"), SEC 1 ("EC PRIVATE KEY") and PKCS#1
// ("RSA PRIVATE KEY") blocks, in any number and order. Certificate and EC-parameter blocks are skipped, so a
// file holding certificate and key together is accepted. An empty s gives no keys and no error (keys are only
// needed to register or verify a root). Errors are *config.Error naming KeyVar and the block; they never
// contain key material.
func ParseKeys(s string) ([]crypto.Signer, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var keys []crypto.Signer
	var problems []config.Problem
	fail := func(format string, args ...any) {
		problems = append(problems, config.Problem{Var: KeyVar, Msg: fmt.Sprintf(format, args...)})
	}
	rest := []byte(s)
	for n := 1; ; n++ {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if _, enc := b.Headers["Proc-Type"]; enc || b.Type == "ENCRYPTED PRIVATE KEY" {
			fail("PEM block %d (%s) is encrypted; give the key unencrypted (openssl pkey -in KEY -out PLAIN) and protect it as a secret", n, b.Type)
			continue
		}
		var key any
		var err error
		switch b.Type {
		case "CERTIFICATE", "EC PARAMETERS":
			continue
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		default:
			fail("PEM block %d has type %q; want PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY", n, b.Type)
			continue
		}
		if err != nil {
			fail("PEM block %d (%s) does not parse: %v", n, b.Type, err)
			continue
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			fail("PEM block %d (%s) holds a %T, which cannot sign certificates", n, b.Type, key)
			continue
		}
		keys = append(keys, signer)
	}
	if len(keys) == 0 && len(problems) == 0 {
		fail("holds no PEM private key; give the PEM key of SPIRE's disk UpstreamAuthority root (its key_file_path)")
	}
	if len(problems) > 0 {
		return nil, &config.Error{Problems: problems}
	}
	return keys, nil
}

// Fingerprint is the SHA-256 fingerprint of cert, in lower-case hex.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// CAName is the name of the OpenZiti CA that holds root: prefix, "-", and the first 12 hex digits of the
// root's SHA-256 fingerprint.
func CAName(prefix string, root *x509.Certificate) string {
	return prefix + "-" + Fingerprint(root)[:12]
}

// keyFor returns the key among keys whose public key is cert's, or nil.
func keyFor(cert *x509.Certificate, keys []crypto.Signer) crypto.Signer {
	return casigner.KeyFor(cert, keys)
}

// describe names a root for messages: subject and fingerprint.
func describe(cert *x509.Certificate) string {
	subj := cert.Subject.String()
	if subj == "" {
		subj = "(empty subject)"
	}
	return fmt.Sprintf("%q (SHA-256 %s)", subj, Fingerprint(cert))
}
