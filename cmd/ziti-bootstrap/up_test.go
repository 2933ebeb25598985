package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/app/deploy"
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

// The summary names the URLs from the ports set, where the generated credentials are (never a secret), and the
// commands of an OIDC login and a first enrolment.
func TestWriteSummary(t *testing.T) {
	var b strings.Builder
	deploy.WriteSummary(&b, map[string]string{"ZITI_CTRL_PUBLISHED_PORT": "21280", "KEYCLOAK_PUBLISHED_PORT": "28080",
		"KEYCLOAK_PUBLIC_URL": "http://localhost:28080", "ZITI_PWD": "s3cret-value"}, "unix:///var/run/docker.sock", "/var/lib/zb/dev")
	out := b.String()
	for _, want := range []string{
		"https://localhost:21280/edge/management/v1", "https://localhost:21280/zac/", "http://localhost:28080/admin/",
		"/var/lib/zb/dev: ziti_admin_password, keycloak_admin_password", "/var/lib/zb/dev/dev.env",
		"http://localhost:28080/realms/openziti/protocol/openid-connect/auth/device", "client_id=openziti",
		"'https://localhost:21280/edge/client/v1/authenticate?method=ext-jwt'", "$(cat /var/lib/zb/dev/ziti_admin_password)",
		"ziti edge enroll device1.jwt", "SPIRE_ENTRIES_FILE",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "s3cret-value") {
		t.Errorf("the summary prints a secret:\n%s", out)
	}
}

// The README shows the summary of `up --dev` with its alternative ports as it is printed.
func TestREADMEShowsTheSummary(t *testing.T) {
	readme, m := readmeAltPorts(t)
	var b strings.Builder
	deploy.WriteSummary(&b, map[string]string{"ZITI_CTRL_PUBLISHED_PORT": m[1], "ZITI_ROUTER_PUBLISHED_PORT": m[2], "KEYCLOAK_PUBLISHED_PORT": m[3]},
		"unix:///var/run/docker.sock", "/var/lib/ziti-bootstrap/dev")
	_, after, _ := strings.Cut(readme, "### After up")
	_, block, _ := strings.Cut(after, "```text\n")
	block, _, _ = strings.Cut(block, "```")
	if got := strings.TrimLeft(b.String(), "\n"); got != block {
		t.Errorf("README's summary differs from the printed one; printed:\n%s\nREADME:\n%s", got, block)
	}
}

// readmeAltPorts returns the README and its alternative ports: the match of readmePorts (the controller's, the
// router's and Keycloak's from index 1).
func readmeAltPorts(t *testing.T) (string, []string) {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := readmePorts.FindStringSubmatch(string(readme))
	if m == nil {
		t.Fatal("README: no line with the alternative ports (ZITI_CTRL_PUBLISHED_PORT=… ZITI_ROUTER_PUBLISHED_PORT=… KEYCLOAK_PUBLISHED_PORT=…)")
	}
	return string(readme), m
}

var readmePorts = regexp.MustCompile(`ZITI_CTRL_PUBLISHED_PORT=(\d+) ZITI_ROUTER_PUBLISHED_PORT=(\d+) KEYCLOAK_PUBLISHED_PORT=(\d+)`)

// scripts/up.sh's usage suggests the README's alternative ports (it once gave 18080, which the test bed's SPIRE
// server holds).
func TestUpScriptSuggestsTheREADMEPorts(t *testing.T) {
	_, m := readmeAltPorts(t)
	script, err := os.ReadFile("../../scripts/up.sh")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(script), m[0]+" scripts/up.sh") {
		t.Errorf("scripts/up.sh does not suggest the README's ports %q", m[0])
	}
}
