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
