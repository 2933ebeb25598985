package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
)

// Bad stack input fails before any call, naming the variable or the file, line and key.
func TestUpRefusesBadInputBeforeAnyCall(t *testing.T) {
	none := filepath.Join(t.TempDir(), "none")
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"up", "--set", "ZB_PUBLISH_MODE=mesh", "--set", "ZITI_PWD=x", "--set", "ZITI_CTRL_PUBLISHED_PORT=0"},
			[]string{"ZB_PUBLISH_MODE: \"mesh\": use ingress or host", "--set ZITI_PWD: secrets are not accepted", "ZITI_CTRL_PUBLISHED_PORT"}},
		{[]string{"up", "--set", "ZB_SECRETS_DIR=" + none, "--set", "NO_SUCH_VARIABLE=1"}, []string{"NO_SUCH_VARIABLE: unknown variable"}},
		// no secrets and no --dev: every stack names what it lacks
		{[]string{"up", "--set", "ZB_SECRETS_DIR=" + none, "--set", "DOCKER_HOST=tcp://127.0.0.1:1"},
			[]string{"spire.yml:", "secrets.spire_upstream_ca_key.environment: variable SPIRE_UPSTREAM_CA_KEY is not set", "SPIRE_UPSTREAM_CA_KEY_FILE",
				"keycloak.yml:", "openziti.yml:", "ZITI_PWD"}},
	} {
		code, _, errs := cli(t, tc.args...)
		if code != exitcode.InvalidConfig {
			t.Errorf("%v: exit %d, want %d\n%s", tc.args, code, exitcode.InvalidConfig, errs)
		}
		for _, w := range tc.want {
			if !strings.Contains(errs, w) {
				t.Errorf("%v: stderr lacks %q:\n%s", tc.args, w, errs)
			}
		}
	}
}
