package converge

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

// FromReport sums up an apply's report (nil when the run did not happen) and error as the Outcome of a pass: an
// apply that ended without error but did not converge is a failed pass, naming its failed steps' errors.
func FromReport(rep *steps.Report, err error) Outcome {
	var o Outcome
	if rep != nil {
		o.Writes = rep.MutatingCalls
		var msgs []string
		for _, s := range rep.Steps {
			o.Drift += len(s.Changes)
			if s.Status == steps.Failed {
				o.FailedSteps = append(o.FailedSteps, s.Name)
				msgs = append(msgs, s.Error)
			}
		}
		if err == nil && !rep.Converged() {
			err = fmt.Errorf("apply did not converge: %s", strings.Join(msgs, "; "))
		}
	}
	o.Err = err
	return o
}

// BundleSource reads SPIRE's X.509 trust bundle (*spire.Client).
type BundleSource interface {
	X509Bundle(ctx context.Context) (trustDomain string, authorities []*x509.Certificate, err error)
}

// BundleFingerprint returns the Config.Bundle of src: the number of X.509 authorities of SPIRE's trust bundle and
// the SHA-256 of their DER, in order.
func BundleFingerprint(src BundleSource) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		_, auths, err := src.X509Bundle(ctx)
		if err != nil {
			return "", err
		}
		h := sha256.New()
		for _, a := range auths {
			h.Write(a.Raw)
		}
		return fmt.Sprintf("%d root(s) %s", len(auths), hex.EncodeToString(h.Sum(nil))[:16]), nil
	}
}
