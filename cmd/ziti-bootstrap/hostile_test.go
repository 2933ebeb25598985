package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
)

// Files the user names are read bounded and only when regular: /dev/zero (once a Go "out of memory" crash), a
// FIFO (once a hang) and a file too large are refused at once with exit code 2, naming the variable.
func TestHostileFilesRefusedNamingTheVariable(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, 2<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	env := filepath.Join(dir, "ok.env")
	os.WriteFile(env, []byte("ZITI_CTRL_URL=https://127.0.0.1:1\nZITI_CA_TOFU=true\n"), 0o600)
	for _, tc := range []struct {
		args []string
		name string // the variable (or flag) the error must name
		why  string
	}{
		{[]string{"plan", "--env-file", env, "--set", "ZITI_PWD_FILE=/dev/zero"}, "ZITI_PWD_FILE", "not a regular file"},
		{[]string{"plan", "--env-file", env, "--set", "ZITI_PWD_FILE=" + fifo}, "ZITI_PWD_FILE", "a FIFO"},
		{[]string{"plan", "--env-file", env, "--set", "KEYCLOAK_ADMIN_PASSWORD_FILE=" + big}, "KEYCLOAK_ADMIN_PASSWORD_FILE", "larger than 1 MiB"},
		{[]string{"plan", "--env-file", env, "--set", "ZITI_CA_FILE=/dev/zero"}, "ZITI_CA_FILE", "not a regular file"},
		{[]string{"plan", "--env-file", env, "--set", "SPIRE_ENTRIES_FILE=" + fifo}, "SPIRE_ENTRIES_FILE", "a FIFO"},
		{[]string{"plan", "--env-file", env, "--set", "POLICIES_FILE=/dev/zero"}, "POLICIES_FILE", "not a regular file"},
		{[]string{"plan", "--env-file", "/dev/zero"}, "--env-file", "not a regular file"},
		{[]string{"plan", "--env-file", fifo}, "--env-file", "a FIFO"},
		{[]string{"up", "--dry-run", "--set", "ZITI_PWD_FILE=/dev/zero"}, "ZITI_PWD_FILE", "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			type result struct {
				code int
				errs string
			}
			done := make(chan result, 1)
			go func() {
				code, _, errs := cli(t, tc.args...)
				done <- result{code, errs}
			}()
			select {
			case r := <-done:
				if r.code != exitcode.InvalidConfig || !strings.Contains(r.errs, tc.name) || !strings.Contains(r.errs, tc.why) {
					t.Fatalf("%v: exit %d; want %d naming %s (%s):\n%s", tc.args, r.code, exitcode.InvalidConfig, tc.name, tc.why, r.errs)
				}
			case <-time.After(time.Minute):
				t.Fatalf("%v: still running after a minute (blocked on the file?)", tc.args)
			}
		})
	}
}

// A URL with credentials is refused (exit 2, naming the variable) and its password is printed nowhere: the
// error, the logs at debug level, in text and JSON.
func TestCredentialsInURLsRefusedAndNeverPrinted(t *testing.T) {
	for _, args := range [][]string{
		{"plan", "--log-level", "debug", "--set", "KEYCLOAK_URL=http://u:S3CR3T@127.0.0.1:1"},
		{"plan", "--log-level", "debug", "--set", "ZITI_CTRL_URL=https://u:S3CR3T@127.0.0.1:1"},
		{"plan", "--set", "S3_ENDPOINT=http://S3CR3T@127.0.0.1:1"},
		{"up", "--dry-run", "--set", "KEYCLOAK_PUBLIC_URL=https://u:S3CR3T@sso.example.com"},
	} {
		code, out, errs := cli(t, args...)
		name, _, _ := strings.Cut(args[len(args)-1], "=")
		if code != exitcode.InvalidConfig || !strings.Contains(errs, name) || !strings.Contains(errs, "holds credentials") {
			t.Errorf("%v: exit %d; want %d naming %s:\n%s", args, code, exitcode.InvalidConfig, name, errs)
		}
		if strings.Contains(out+errs, "S3CR3T") {
			t.Errorf("%v: the password is printed:\n%s%s", args, out, errs)
		}
	}
}

// A stack variable pasted into a configuration file (SPIRE's HCL) cannot add lines or close the quotes around
// it: up refuses it with exit 2 naming it, before anything is written.
func TestStackVariablesCannotInjectConfiguration(t *testing.T) {
	for _, tc := range []struct{ flag, name string }{
		{"TRUST_DOMAIN=example.org\"\n  bind_address = \"0.0.0.0", "TRUST_DOMAIN"},
		{"TRUST_DOMAIN=Example.ORG", "TRUST_DOMAIN"},
		{"SPIRE_LOG_LEVEL=INFO\"\nplugins {}", "SPIRE_LOG_LEVEL"},
		{"SPIRE_CA_TTL=24h\"\n  ca_key_type = \"rsa-2048", "SPIRE_CA_TTL"},
		{"SPIRE_X509_SVID_TTL=1h\" #", "SPIRE_X509_SVID_TTL"},
		{"ZITI_ROUTER_NAME=r\"; touch /tmp/x; \"", "ZITI_ROUTER_NAME"},
		{"KEYCLOAK_REALM=zt\nX=1", "KEYCLOAK_REALM"},
		{"ZITI_CTRL_ADVERTISED_ADDRESS=ctrl\" -x", "ZITI_CTRL_ADVERTISED_ADDRESS"},
		{"SPIRE_SERVER_CONSTRAINT=node.role == manager\nx", "SPIRE_SERVER_CONSTRAINT"},
		{"KEYCLOAK_PROXY_HEADERS=xforwarded --spi-x=y", "KEYCLOAK_PROXY_HEADERS"},
	} {
		code, _, errs := cli(t, "up", "--dry-run", "--set", tc.flag)
		if code != exitcode.InvalidConfig || !strings.Contains(errs, tc.name+":") {
			t.Errorf("%q: exit %d; want %d naming %s:\n%s", tc.flag, code, exitcode.InvalidConfig, tc.name, errs)
		}
	}
	if code, _, errs := cli(t, "up", "--dry-run", "--prefix", "a\nb"); code != exitcode.InvalidConfig || !strings.Contains(errs, "--prefix") {
		t.Errorf("--prefix with a newline: exit %d\n%s", code, errs)
	}
}
