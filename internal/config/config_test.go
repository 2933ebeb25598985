package config

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func validEnv(t *testing.T) map[string]string {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, []byte("pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"ZITI_PWD": "zpass-SECRET-1", "KEYCLOAK_ADMIN_PASSWORD": "kpass-SECRET-2", "ZITI_CA_FILE": ca, "SPIRE_UPSTREAM_CA_KEY": "key-SECRET-3",
		"ZB_SECRETS_DIR": filepath.Join(dir, "none"),
	}
}

func TestLoadDefaults(t *testing.T) {
	c, err := Load(Sources{Env: env(validEnv(t))})
	if err != nil {
		t.Fatal(err)
	}
	if c.Ziti.URL.String() != "https://ziti-controller:1280" || c.Spire.Socket != "/tmp/spire-server/private/api.sock" ||
		c.Keycloak.Realm != "openziti" || c.S3.Endpoint != nil || c.Ziti.Password.Value() != "zpass-SECRET-1" {
		t.Fatalf("unexpected defaults: %+v", c)
	}
}

func TestLoadReportsEveryProblemAtOnce(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(Sources{Env: env(map[string]string{
		"ZITI_CTRL_URL":                "not a url",
		"KEYCLOAK_ADMIN_PASSWORD_FILE": filepath.Join(dir, "missing"),
		"ZB_SECRETS_DIR":               dir,
		"S3_ENDPOINT":                  "http://127.0.0.1:8333",
		"ZB_WAIT_TIMEOUT":              "soon",
		"SPIRE_SERVER_ADDRESS":         "spire-server:8081",
	})})
	if !IsInvalid(err) {
		t.Fatalf("want invalid configuration, got %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"ZITI_CTRL_URL", "ZITI_PWD: required", "ziti_admin_password", "KEYCLOAK_ADMIN_PASSWORD_FILE: cannot read",
		"ZITI_CA_FILE", "SPIRE_UPSTREAM_CA_KEY: required", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "ZB_WAIT_TIMEOUT", "SPIRE_SERVER_ADDRESS"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not mention %q:\n%s", want, msg)
		}
	}
	if n := len(err.(*Error).Problems); n != 9 {
		t.Errorf("got %d problems, want 9:\n%s", n, msg)
	}
}

func TestSecretsFromFileAndDockerSecret(t *testing.T) {
	e := validEnv(t)
	dir := t.TempDir()
	delete(e, "ZITI_PWD")
	delete(e, "KEYCLOAK_ADMIN_PASSWORD")
	os.WriteFile(filepath.Join(dir, "ziti_admin_password"), []byte("from-docker-secret\n"), 0o600)
	kc := filepath.Join(dir, "kc")
	os.WriteFile(kc, []byte("from-file\n"), 0o600)
	e["ZB_SECRETS_DIR"] = dir
	e["KEYCLOAK_ADMIN_PASSWORD_FILE"] = kc
	c, err := Load(Sources{Env: env(e)})
	if err != nil {
		t.Fatal(err)
	}
	if c.Ziti.Password.Value() != "from-docker-secret" || c.Keycloak.AdminPassword.Value() != "from-file" {
		t.Fatalf("got %q %q", c.Ziti.Password.Value(), c.Keycloak.AdminPassword.Value())
	}
}

func TestPrecedenceFlagsEnvFile(t *testing.T) {
	e := validEnv(t)
	f := filepath.Join(t.TempDir(), ".env")
	os.WriteFile(f, []byte("# comment\nexport KEYCLOAK_REALM=fromfile\nZITI_USER='fileuser'\nTRUST_DOMAIN=file.org # trailing\n"), 0o600)
	e["ZITI_USER"] = "envuser"
	c, err := Load(Sources{Env: env(e), EnvFile: f, Flags: map[string]string{"KEYCLOAK_REALM": "fromflag"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Keycloak.Realm != "fromflag" || c.Ziti.User != "envuser" || c.Spire.TrustDomain != "file.org" {
		t.Fatalf("precedence wrong: realm=%s user=%s td=%s", c.Keycloak.Realm, c.Ziti.User, c.Spire.TrustDomain)
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	c, err := Load(Sources{Env: env(validEnv(t))})
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("cfg", "config", c, "pwd", c.Ziti.Password)
	j, _ := json.Marshal(c)
	out := fmt.Sprintf("%v %+v %#v %s %s", c, c, c, j, logs.String())
	for _, s := range []string{"zpass-SECRET-1", "kpass-SECRET-2", "key-SECRET-3"} {
		if strings.Contains(out, s) {
			t.Fatalf("secret %q leaked in: %s", s, out)
		}
	}
	if !strings.Contains(string(j), "**redacted**") {
		t.Fatalf("JSON does not show redaction: %s", j)
	}
}

func TestEnvExampleDocumentsEveryVariable(t *testing.T) {
	b, err := os.ReadFile("../../.env.example")
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseDotenv(strings.NewReader(string(b)), ".env.example")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, v := range Vars {
		if v.Secret {
			if !strings.Contains(text, v.Name) || !strings.Contains(text, v.SecretName) {
				t.Errorf(".env.example does not document secret %s (Docker secret %s)", v.Name, v.SecretName)
			}
			continue
		}
		if got, ok := m[v.Name]; !ok || got != v.Default {
			t.Errorf(".env.example: %s=%q, want the default %q", v.Name, got, v.Default)
		}
	}
}

func FuzzLoad(f *testing.F) {
	f.Add("ZITI_CTRL_URL=https://x:1\nZITI_PWD=a\n", "true")
	f.Add("export A='b'\n#c\nB=\"d\" # e", "2m")
	f.Add("=\n", "x")
	f.Fuzz(func(t *testing.T, dotenv, val string) {
		dir := t.TempDir()
		p := filepath.Join(dir, ".env")
		os.WriteFile(p, []byte(dotenv), 0o600)
		c, err := Load(Sources{EnvFile: p, Env: env(map[string]string{"ZB_WAIT_TIMEOUT": val, "ZITI_CA_TOFU": val, "ZB_SECRETS_DIR": dir})})
		if err == nil && c == nil {
			t.Fatal("nil config without error")
		}
		if err != nil && !IsInvalid(err) {
			t.Fatalf("error is not an invalid-configuration error: %v", err)
		}
	})
}

func TestChildEnvDropsSecrets(t *testing.T) {
	env := []string{"PATH=/bin", "ZITI_PWD=p1", "ZITI_PWD_FILE=/run/secrets/x", "KEYCLOAK_ADMIN_PASSWORD=p2", "S3_SECRET_ACCESS_KEY=p3", "PGHOST=db"}
	got := strings.Join(ChildEnv(env, "S3_SECRET_ACCESS_KEY"), " ")
	if got != "PATH=/bin ZITI_PWD_FILE=/run/secrets/x S3_SECRET_ACCESS_KEY=p3 PGHOST=db" {
		t.Errorf("ChildEnv = %s", got)
	}
}
