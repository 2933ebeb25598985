package backup

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
)

// secretCanaries puts the configuration's secrets in this process's environment, as an operator's shell may
// have them, and returns their values.
func secretCanaries(t *testing.T) []string {
	var vals []string
	for _, name := range []string{"ZITI_PWD", "KEYCLOAK_ADMIN_PASSWORD", "S3_SECRET_ACCESS_KEY", "BACKUP_ENCRYPTION_KEY", "KEYCLOAK_DB_PASSWORD"} {
		v := "canary-" + strings.ToLower(name)
		t.Setenv(name, v)
		vals = append(vals, v)
	}
	return vals
}

// The backup's child processes (the service hooks, and pg_dump/pg_restore/psql) inherit none of the
// configuration's secrets; the PostgreSQL tools get their own password (PGPASSWORD) and nothing else secret.
func TestChildrenGetNoSecrets(t *testing.T) {
	canaries := secretCanaries(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "hook.env")
	hook := &ExecService{Name: "ziti", StopCommand: []string{"sh", "-c", "env > " + out}, StartCommand: []string{"true"}}
	if err := hook.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	env, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// psql as the backup runs it: a script in BinDir that shows the environment it was given
	if err := os.WriteFile(filepath.Join(dir, "psql"), []byte("#!/bin/sh\nenv\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	pg := Postgres{BinDir: dir, Host: "127.0.0.1", Port: 5432, User: "keycloak", Database: "keycloak", Password: config.NewSecret("the-db-password")}
	penv, err := pg.Query(context.Background(), "select 1")
	if err != nil {
		t.Fatal(err)
	}
	for what, e := range map[string]string{"the stop hook": string(env), "psql": penv} {
		if !strings.Contains(e, "PATH=") {
			t.Errorf("%s got no PATH: %q", what, e)
		}
		for _, c := range canaries {
			if strings.Contains(e, c) {
				t.Errorf("%s inherited a secret (%s)", what, c)
			}
		}
	}
	if !strings.Contains(penv, "PGPASSWORD=the-db-password") {
		t.Errorf("psql did not get its own password")
	}
}
