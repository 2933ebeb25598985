package spireca

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"sort"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
)

// parseCert returns the first certificate of a PEM text.
func parseCert(s string) (*x509.Certificate, error) {
	rest := []byte(s)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("no PEM certificate")
		}
		if b.Type == "CERTIFICATE" {
			return x509.ParseCertificate(b.Bytes)
		}
	}
}

func certPEM(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

func sortCAs(cas []ziti.CA) {
	sort.Slice(cas, func(i, j int) bool {
		if cas[i].Name != cas[j].Name {
			return cas[i].Name < cas[j].Name
		}
		return cas[i].ID < cas[j].ID
	})
}
