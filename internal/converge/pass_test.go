package converge

import (
	"context"
	"crypto/x509"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

// A pass's outcome counts the report's changes and writes; a report that did not converge is a failure naming
// its failed steps, even when the run returned no error.
func TestFromReport(t *testing.T) {
	rep := &steps.Report{MutatingCalls: 3, Steps: []steps.Result{
		{Name: "a", Status: steps.Changed, Changes: make([]steps.Change, 2)},
		{Name: "b", Status: steps.Failed, Error: "boom"},
		{Name: "c", Status: steps.Unchanged},
	}}
	o := FromReport(rep, nil)
	if o.Drift != 2 || o.Writes != 3 || !slices.Equal(o.FailedSteps, []string{"b"}) || o.Err == nil || !strings.Contains(o.Err.Error(), "boom") {
		t.Errorf("outcome %+v", o)
	}
	if o := FromReport(&steps.Report{Steps: []steps.Result{{Name: "a", Status: steps.Unchanged}}}, nil); o.Err != nil || o.Drift != 0 {
		t.Errorf("converged: %+v", o)
	}
	if o := FromReport(nil, errors.New("lock")); o.Err == nil || o.Drift != 0 {
		t.Errorf("no run: %+v", o)
	}
}

type bundle []*x509.Certificate

func (b bundle) X509Bundle(context.Context) (string, []*x509.Certificate, error) { return "td", b, nil }

// The bundle's fingerprint follows its roots: a root added or dropped changes it.
func TestBundleFingerprint(t *testing.T) {
	a, b := &x509.Certificate{Raw: []byte("a")}, &x509.Certificate{Raw: []byte("b")}
	fp := func(bs bundle) string {
		s, err := BundleFingerprint(bs)(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	one, two := fp(bundle{a}), fp(bundle{a, b})
	if one == two || fp(bundle{a}) != one || fp(bundle{b}) == one || !strings.HasPrefix(two, "2 root(s) ") {
		t.Errorf("fingerprints %q %q", one, two)
	}
}
