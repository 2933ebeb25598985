package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
)

// Bad stack input fails before any call, naming the variable or the file, line and key.
func TestUpRefusesBadInputBeforeAnyCall(t *testing.T) {
	none := filepath.Join(t.TempDir(), "none")
	for i, tc := range []struct {
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
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			code, _, errs := cli(t, tc.args...)
			mustExitSaying(t, code, exitcode.InvalidConfig, errs, tc.want...)
		})
	}
}

// With BACKUP_SCHEDULE set, up checks what the backup service will read before anything is deployed: every
// problem at once, naming its variable, exit code 2.
func TestUpChecksTheBackupServiceSettings(t *testing.T) {
	env := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(env, []byte("BACKUP_SCHEDULE=@daily\nBACKUP_KEEP_LAST=-1\nBACKUP_ENCRYPTION_KEY=short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs := cli(t, "up", "--dry-run", "--external-keycloak", "--env-file", env)
	mustExitSaying(t, code, exitcode.InvalidConfig, errs, "BACKUP_KEEP_LAST", "S3_ENDPOINT", "BACKUP_ENCRYPTION_KEY", "openssl rand", "BACKUP_SOURCES", "--external-keycloak")
	if strings.Contains(errs, "short") {
		t.Errorf("the key's value is printed:\n%s", errs)
	}
}
