package stacks

import (
	"strings"
	"testing"
)

func TestPlanSpireDatastore(t *testing.T) {
	for _, tc := range []struct {
		running, suffix, next string
		want                  SpireDatastore
		err                   string
	}{
		{"", "", "ghcr.io/spiffe/spire-server:1.15.3", SpireDatastore{}, ""},                                   // first deployment
		{"ghcr.io/spiffe/spire-server:1.13.3", "", "ghcr.io/spiffe/spire-server:1.13.3", SpireDatastore{}, ""}, // unchanged
		{"zb-local/spire-server:1.14.1", "", "zb-local/spire-server:1.15.3", SpireDatastore{}, ""},             // one minor: SPIRE migrates
		{"zb-local/spire-server:1.13.3", "", "zb-local/spire-server:1.15.3", SpireDatastore{Suffix: "-1.15", Fresh: true}, ""},
		{"localhost:5000/spire-server:v1.13.3", "-1.13", "localhost:5000/spire-server:v2.0.0", SpireDatastore{Suffix: "-2.0", Fresh: true}, ""},
		{"zb-local/spire-server:1.15.3", "-1.15", "zb-local/spire-server:1.15.4", SpireDatastore{Suffix: "-1.15"}, ""}, // patch: keep
		{"zb-local/spire-server:latest", "-1.15", "zb-local/spire-server:1.16.0", SpireDatastore{Suffix: "-1.15"}, ""}, // not a version: keep
		{"zb-local/spire-server:1.15.3", "", "zb-local/spire-server:1.13.3", SpireDatastore{}, "older than the running"},
	} {
		got, err := PlanSpireDatastore(tc.running, tc.suffix, tc.next)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s → %s: error %v, want %q", tc.running, tc.next, err, tc.err)
			}
			continue
		}
		if err != nil || got.Suffix != tc.want.Suffix || got.Fresh != tc.want.Fresh || got.Fresh != (got.Why != "") {
			t.Errorf("%s (%q) → %s: %+v, %v; want %+v", tc.running, tc.suffix, tc.next, got, err, tc.want)
		}
	}
}
