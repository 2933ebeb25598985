package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
)

// Every variable the stack files read is part of the configuration (documented, in .env.example), and the
// defaults written in the stack files (for `docker stack deploy` users) are the configuration's.
func TestStackVariablesAreConfiguration(t *testing.T) {
	names, err := stackVariables()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if _, ok := config.Lookup(n); !ok {
			t.Errorf("stack variable %s is not documented in internal/config", n)
		}
	}
	def := regexp.MustCompile(`(?:^|[^$])\$\{([A-Z_][A-Z0-9_]*):-([^}]*)\}`)
	files := []string{"spire.yml", "keycloak.yml", "openziti.yml", "config/spire/server.conf", "config/spire/agent.conf",
		"config/openziti/router-entrypoint.bash"}
	seen := 0
	for _, f := range files {
		b, err := stacks.Read(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range def.FindAllStringSubmatch(string(b), -1) {
			if strings.HasPrefix(m[1], "ZB_STACK_") {
				continue
			}
			seen++
			if v, _ := config.Lookup(m[1]); v.Default != m[2] {
				t.Errorf("%s: ${%s:-%s}, but the configuration's default is %q", f, m[1], m[2], v.Default)
			}
		}
	}
	if seen < 30 {
		t.Errorf("found only %d ${NAME:-default} references: is the pattern right?", seen)
	}
}

func TestStackConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	devPwd, devDB, mine := write("dev-pwd", "dev-ziti\n"), write("dev-db", "dev-db\n"), write("my-db", "my-db\n")
	cert := write("agent.crt", "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n")
	env := write(".env", strings.Join([]string{
		"KEYCLOAK_DB_PASSWORD_FILE=" + mine, // the operator's secret wins over the dev default
		"ZB_ENDPOINT_MODE=vip",              // and so does a setting
		"SPIRE_NODE_CA_FILE=" + cert,        // PEM values from files
		"SPIRE_UPSTREAM_CA_CERT=",           // empty, as in a copy of .env.example: the dev default applies
		"ZB_SECRETS_DIR=" + filepath.Join(dir, "none"),
	}, "\n"))
	g := &globals{envFile: env, set: []string{"ZITI_CTRL_PUBLISHED_PORT=21280"}}
	sc, err := g.stackConfig(&stackOptions{}, map[string]string{
		"ZITI_PWD_FILE": devPwd, "KEYCLOAK_DB_PASSWORD_FILE": devDB, "ZB_ENDPOINT_MODE": "dnsrr", "ZB_PUBLISH_MODE": "host",
		"SPIRE_UPSTREAM_CA_CERT_FILE": cert,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"ZITI_PWD": "dev-ziti", "KEYCLOAK_DB_PASSWORD": "my-db", "ZB_ENDPOINT_MODE": "vip", "ZB_PUBLISH_MODE": "host",
		"ZITI_CTRL_PUBLISHED_PORT": "21280", "KEYCLOAK_PUBLISHED_PORT": "8080", "SPIRE_NODE_CA": strings.TrimSpace(readFile(t, cert)),
		"SPIRE_UPSTREAM_CA_CERT": strings.TrimSpace(readFile(t, cert)), "ZB_IMAGE": "ghcr.io/ziti-bootstrap/ziti-bootstrap:0.1.0",
	}
	for k, v := range want {
		if got := sc.Vars[k]; got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if _, ok := sc.Vars["SPIRE_UPSTREAM_CA_KEY"]; ok {
		t.Error("an unset secret has a value")
	}
	if sc.Docker.Host == "" || sc.WaitTimeout <= 0 {
		t.Errorf("docker settings: %+v %s", sc.Docker, sc.WaitTimeout)
	}
}

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

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
