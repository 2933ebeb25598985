package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLoadBackup(t *testing.T) {
	dir := t.TempDir()
	dotenv := filepath.Join(dir, ".env")
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write(".env", "BACKUP_PREFIX=from-file\nBACKUP_KEEP_LAST=3\nKEYCLOAK_DB_HOST=db.file\n")
	flagKey := write("flag-key", "flag-key-value\n")
	noSecrets := filepath.Join(dir, "no-secrets")

	t.Run("defaults", func(t *testing.T) {
		c, err := LoadBackup(Sources{Env: env(map[string]string{"ZB_SECRETS_DIR": noSecrets})})
		if err != nil {
			t.Fatal(err)
		}
		if c.Prefix != "ziti-bootstrap" || c.KeepLast != 7 || c.KeepDaily != 7 || c.KeepWeekly != 4 || c.IncompleteGrace != 6*time.Hour ||
			!slices.Equal(c.Sources, BackupSources) || c.PartSize != 6<<20 || c.ZitiDBPath != "/ziti-controller/bbolt.db" ||
			c.DB != (BackupDB{Host: "keycloak-db", Port: 5432, User: "keycloak", Name: "keycloak"}) || c.EncryptionKey.IsSet() ||
			c.Schedule != "" || c.Listen != "127.0.0.1:9108" {
			t.Fatalf("defaults: %+v", c)
		}
	})
	t.Run("env over file over default, flags over env", func(t *testing.T) {
		c, err := LoadBackup(Sources{EnvFile: dotenv, Env: env(map[string]string{
			"BACKUP_KEEP_LAST": "5", "BACKUP_SOURCES": "keycloak, spire", "KEYCLOAK_DB_PORT": "15432", "BACKUP_ENCRYPTION_KEY": "env-key",
			"KEYCLOAK_DB_PASSWORD": "env-pw", "BACKUP_SCHEDULE": "@every 6h", "BACKUP_TMPDIR": dir, "ZB_SECRETS_DIR": noSecrets,
		}), Flags: map[string]string{"BACKUP_KEEP_LAST": "1", "BACKUP_ENCRYPTION_KEY_FILE": flagKey}})
		if err != nil {
			t.Fatal(err)
		}
		if c.Prefix != "from-file" || c.KeepLast != 1 || c.DB.Host != "db.file" || c.DB.Port != 15432 || !slices.Equal(c.Sources, []string{"spire", "keycloak"}) ||
			c.Schedule != "@every 6h" || c.TempDir != dir || c.DB.Password.Value() != "env-pw" {
			t.Fatalf("got %+v", c)
		}
		if c.EncryptionKey.Value() != "flag-key-value" {
			t.Errorf("the key file given as a flag does not beat BACKUP_ENCRYPTION_KEY in the environment")
		}
	})
	t.Run("secrets from the Docker secrets directory", func(t *testing.T) {
		secrets := filepath.Join(dir, "secrets")
		_ = os.MkdirAll(secrets, 0o700)
		write("secrets/backup_encryption_key", "docker-key\n")
		write("secrets/keycloak_db_password", "docker-pw\n")
		c, err := LoadBackup(Sources{Env: env(map[string]string{"ZB_SECRETS_DIR": secrets})})
		if err != nil {
			t.Fatal(err)
		}
		if c.EncryptionKey.Value() != "docker-key" || c.DB.Password.Value() != "docker-pw" {
			t.Fatal("Docker secrets not read")
		}
	})
	t.Run("every problem at once, naming the variable", func(t *testing.T) {
		_, err := LoadBackup(Sources{Env: env(map[string]string{
			"BACKUP_KEEP_LAST": "-1", "BACKUP_KEEP_DAILY": "many", "BACKUP_INCOMPLETE_GRACE": "soon", "BACKUP_SOURCES": "ziti,vault",
			"BACKUP_PART_SIZE_MIB": "4", "KEYCLOAK_DB_PORT": "70000", "BACKUP_SCHEDULE": "daily at 3", "BACKUP_LISTEN": "9108",
			"BACKUP_TMPDIR": filepath.Join(dir, "missing"), "ZITI_DB_PATH": " ", "BACKUP_PREFIX": "/abs",
			"BACKUP_ENCRYPTION_KEY_FILE": filepath.Join(dir, "missing-key"), "ZB_SECRETS_DIR": noSecrets,
		})})
		if !IsInvalid(err) {
			t.Fatalf("want an invalid configuration, got %v", err)
		}
		for _, want := range []string{`BACKUP_KEEP_LAST: "-1"`, `BACKUP_KEEP_DAILY: "many"`, "BACKUP_INCOMPLETE_GRACE", `BACKUP_SOURCES: unknown source "vault"`,
			`BACKUP_PART_SIZE_MIB: "4" is not a whole number from 5 to 5120`, "KEYCLOAK_DB_PORT", "BACKUP_SCHEDULE", "BACKUP_LISTEN", "BACKUP_TMPDIR",
			"ZITI_DB_PATH: must not be empty", "BACKUP_PREFIX", "BACKUP_ENCRYPTION_KEY_FILE: cannot read"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error lacks %q:\n%v", want, err)
			}
		}
		if n := len(err.(*Error).Problems); n != 12 {
			t.Errorf("%d problems, want 12:\n%v", n, err)
		}
	})
}

func TestLoadBackupListen(t *testing.T) {
	for _, tc := range []struct{ env, want, problem string }{
		{"", "127.0.0.1:9108", ""},
		{"0.0.0.0:9200", "127.0.0.1:9200", ""},
		{"10.0.0.5:9300", "10.0.0.5:9300", ""},
		{"9108", "", "BACKUP_LISTEN"},
	} {
		e := map[string]string{}
		if tc.env != "" {
			e["BACKUP_LISTEN"] = tc.env
		}
		got, err := LoadBackupListen(Sources{Env: env(e)})
		if got != tc.want || (tc.problem == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.problem)) {
			t.Errorf("BACKUP_LISTEN=%q: %q, %v; want %q, problem %q", tc.env, got, err, tc.want, tc.problem)
		}
	}
}

func TestBackupVarsAreKnownOnce(t *testing.T) {
	seen := map[string]int{}
	for _, v := range Vars {
		seen[v.Name]++
	}
	for name, n := range seen {
		if n > 1 {
			t.Errorf("%s is defined %d times", name, n)
		}
	}
	for _, v := range BackupVars {
		if got, ok := Lookup(v.Name); !ok || got != v {
			t.Errorf("Lookup(%s) = %+v, %v", v.Name, got, ok)
		}
	}
}

func TestParseRouterIDs(t *testing.T) {
	got, problems := ParseRouterIDs(" spiffe://zb.test/ziti-router=ziti-edge-router:public;\n spiffe://zb.test/r2=r2:a,b-c spiffe://zb.test/r3=r3 ")
	if len(problems) != 0 || len(got) != 3 {
		t.Fatalf("ParseRouterIDs = %+v, %v", got, problems)
	}
	if got[0].SpiffeID.String() != "spiffe://zb.test/ziti-router" || got[0].Name != "ziti-edge-router" || !slices.Equal(got[0].RoleAttributes, []string{"public"}) ||
		!slices.Equal(got[1].RoleAttributes, []string{"a", "b-c"}) || got[2].Name != "r3" || got[2].RoleAttributes != nil {
		t.Errorf("ParseRouterIDs = %+v", got)
	}

	for in, want := range map[string]string{
		"spiffe://zb.test/r":                             "has no =",
		"zb.test/r=r":                                    "is not a SPIFFE ID",
		"spiffe://zb.test/r=":                            `router name ""`,
		"spiffe://zb.test/r=a/b":                         `router name "a/b"`,
		"spiffe://zb.test/r=r:#public":                   `role attribute "#public"`,
		"spiffe://zb.test/r=r:a,,b":                      `role attribute ""`,
		"spiffe://zb.test/r=r1;spiffe://zb.test/r=r2":    "mapped twice",
		"spiffe://zb.test/r=r1;spiffe://zb.test/s=r1:x":  "router r1 is mapped twice",
		"spiffe://zb.test/r=r1 spiffe://Zb.test/s=r2:x=": "is not a SPIFFE ID",
	} {
		_, problems := ParseRouterIDs(in)
		if len(problems) != 1 || !strings.Contains(problems[0], want) {
			t.Errorf("ParseRouterIDs(%q) problems %q; want one containing %q", in, problems, want)
		}
	}
}

func TestLoadRouterEnrolServerNamesEveryProblem(t *testing.T) {
	_, err := LoadRouterEnrolServer(Sources{Env: env(map[string]string{
		"ZITI_CTRL_URL": "http://ctrl:1280", "ZB_ROUTER_IDS": "nonsense", "SPIFFE_ENDPOINT_SOCKET": "unix://relative/api.sock",
		"ZB_SECRETS_DIR": t.TempDir(),
	})})
	if !IsInvalid(err) {
		t.Fatalf("err = %v", err)
	}
	for _, v := range []string{"ZITI_CTRL_URL", "ZITI_PWD", "ZITI_CA_FILE", "ZB_ROUTER_IDS", "SPIFFE_ENDPOINT_SOCKET"} {
		if !strings.Contains(err.Error(), "- "+v+":") {
			t.Errorf("error does not name %s:\n%v", v, err)
		}
	}

	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	pwd := filepath.Join(dir, "pwd")
	os.WriteFile(ca, []byte("pem"), 0o600)
	os.WriteFile(pwd, []byte("secret\n"), 0o600)
	c, err := LoadRouterEnrolServer(Sources{Env: env(map[string]string{
		"ZITI_CTRL_URL": "https://ctrl:1280", "ZITI_CA_FILE": ca, "ZITI_PWD_FILE": pwd,
		"ZB_ROUTER_IDS": "spiffe://zb.test/ziti-router=ziti-edge-router:public",
	})})
	if err != nil {
		t.Fatal(err)
	}
	if c.Ziti.User != "admin" || c.Ziti.Password.Value() != "secret" || c.Socket != "unix:///run/spire/agent/public/api.sock" ||
		c.Listen != ":8443" || len(c.Routers) != 1 || c.WaitTimeout <= 0 {
		t.Errorf("config %+v", c)
	}
}

func TestLoadWorkloadAndRouterEnrolClient(t *testing.T) {
	w, err := LoadWorkload(Sources{Env: env(map[string]string{"ZITI_CTRL_URL": "https://ctrl:1280", "ZITI_CA_TOFU": "true",
		"ZB_WORKLOAD_SPIFFE_ID": "spiffe://zb.test/app", "SPIFFE_ENDPOINT_SOCKET": "tcp://127.0.0.1:8082"})})
	if err != nil || w.SpiffeID.String() != "spiffe://zb.test/app" || !w.Ziti.CATOFU || w.Listen != "127.0.0.1:9109" {
		t.Errorf("LoadWorkload = %+v, %v", w, err)
	}
	_, err = LoadWorkload(Sources{Env: env(map[string]string{"ZB_WORKLOAD_SPIFFE_ID": "app"})})
	if !IsInvalid(err) || !strings.Contains(err.Error(), "ZB_WORKLOAD_SPIFFE_ID") || !strings.Contains(err.Error(), "ZITI_CA_FILE") {
		t.Errorf("LoadWorkload with a bad SPIFFE ID and no CA: %v", err)
	}

	_, err = LoadRouterEnrolClient(Sources{Env: env(map[string]string{})})
	if !IsInvalid(err) || !strings.Contains(err.Error(), "ZB_ROUTER_ENROL_URL") || !strings.Contains(err.Error(), "ZB_ROUTER_ENROL_SERVER_ID") {
		t.Errorf("LoadRouterEnrolClient without URL and server ID: %v", err)
	}
	c, err := LoadRouterEnrolClient(Sources{Env: env(map[string]string{"ZB_ROUTER_ENROL_URL": "https://enrol:8443",
		"ZB_ROUTER_ENROL_SERVER_ID": "spiffe://zb.test/ziti-bootstrap/router-enrol"})})
	if err != nil || c.URL.Host != "enrol:8443" || c.ServerID.Path() != "/ziti-bootstrap/router-enrol" {
		t.Errorf("LoadRouterEnrolClient = %+v, %v", c, err)
	}
}

func TestLoadLock(t *testing.T) {
	dotenv := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(dotenv, []byte("ZB_LOCK_WAIT=5m\nZB_LOCK_TTL=90s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		src   Sources
		want  Lock
		probs []string
	}{
		{"defaults", Sources{Env: env(nil)}, Lock{Wait: 2 * time.Minute, TTL: time.Minute, File: "/tmp/ziti-bootstrap.lock"}, nil},
		{"env file", Sources{Env: env(nil), EnvFile: dotenv}, Lock{Wait: 5 * time.Minute, TTL: 90 * time.Second, File: "/tmp/ziti-bootstrap.lock"}, nil},
		{"env over file, flags over env", Sources{EnvFile: dotenv, Env: env(map[string]string{"ZB_LOCK_WAIT": "1m", "ZB_LOCK_TTL": "10s"}),
			Flags: map[string]string{"ZB_LOCK_WAIT": "0", "ZB_LOCK_FILE": "/run/zb.lock"}},
			Lock{Wait: 0, TTL: 10 * time.Second, File: "/run/zb.lock"}, nil},
		{"every problem at once", Sources{Env: env(map[string]string{"ZB_LOCK_WAIT": "-1s", "ZB_LOCK_TTL": "1s", "ZB_LOCK_FILE": "rel.lock"})},
			Lock{}, []string{"ZB_LOCK_FILE", "ZB_LOCK_TTL: 1s is too short", "ZB_LOCK_WAIT"}},
		{"not durations", Sources{Env: env(map[string]string{"ZB_LOCK_WAIT": "soon", "ZB_LOCK_TTL": "long"})},
			Lock{}, []string{"ZB_LOCK_TTL: \"long\" is not a duration", "ZB_LOCK_WAIT: \"soon\" is not a duration"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := LoadLock(tc.src)
			if len(tc.probs) == 0 {
				if err != nil || got != tc.want {
					t.Fatalf("LoadLock = %+v, %v; want %+v", got, err, tc.want)
				}
				return
			}
			if !IsInvalid(err) {
				t.Fatalf("LoadLock error %v, want an invalid configuration", err)
			}
			for _, p := range tc.probs {
				if !strings.Contains(err.Error(), p) {
					t.Errorf("error lacks %q:\n%v", p, err)
				}
			}
		})
	}
}

func TestLockVarsAreKnown(t *testing.T) {
	for _, v := range LockVars {
		if got, ok := Lookup(v.Name); !ok || got != v {
			t.Errorf("Lookup(%s) = %+v, %v", v.Name, got, ok)
		}
	}
}
