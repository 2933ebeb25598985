package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Sources.Read reads the .env file once: the section loaders given its result use what it read, even after the
// file changed or went away (one command sees one configuration).
func TestSourcesReadOnce(t *testing.T) {
	e := validEnv(t)
	dotenv := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(dotenv, []byte("ZITI_USER=from-file\nZB_LOCK_WAIT=7s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := Sources{Env: env(e), EnvFile: dotenv}.Read()
	if err := os.Remove(dotenv); err != nil {
		t.Fatal(err)
	}
	c, err := Load(src)
	if err != nil || c.Ziti.User != "from-file" {
		t.Fatalf("Load after the file went away: %v, user %q", err, c.Ziti.User)
	}
	l, err := LoadLock(src)
	if err != nil || l.Wait.String() != "7s" {
		t.Fatalf("LoadLock after the file went away: %v, wait %s", err, l.Wait)
	}
	// without Read, a loader reads the file itself: gone, it says so
	if _, err := Load(Sources{Env: env(e), EnvFile: dotenv}); err == nil || !strings.Contains(err.Error(), "--env-file") {
		t.Fatalf("Load of a missing .env: %v", err)
	}
}

// LoadWithout does not require the secrets a command never uses; Load does.
func TestLoadWithoutUnusedSecrets(t *testing.T) {
	e := validEnv(t)
	delete(e, "KEYCLOAK_ADMIN_PASSWORD")
	delete(e, "SPIRE_UPSTREAM_CA_KEY")
	if _, err := Load(Sources{Env: env(e)}); err == nil || !strings.Contains(err.Error(), "KEYCLOAK_ADMIN_PASSWORD") {
		t.Fatalf("Load without the Keycloak admin password: %v", err)
	}
	c, err := LoadWithout(Sources{Env: env(e)}, "KEYCLOAK_ADMIN_PASSWORD", "SPIRE_UPSTREAM_CA_KEY")
	if err != nil || c.Keycloak.AdminPassword.IsSet() || c.Ziti.Password.Value() != "zpass-SECRET-1" {
		t.Fatalf("LoadWithout: %v", err)
	}
	delete(e, "ZITI_PWD") // still required
	if _, err := LoadWithout(Sources{Env: env(e)}, "KEYCLOAK_ADMIN_PASSWORD"); err == nil || !strings.Contains(err.Error(), "ZITI_PWD") {
		t.Fatalf("LoadWithout without ZITI_PWD: %v", err)
	}
}

// Every section's variables are in Vars once.
func TestVarsHoldEverySectionOnce(t *testing.T) {
	seen := map[string]bool{}
	for _, v := range Vars {
		if seen[v.Name] {
			t.Errorf("%s listed twice", v.Name)
		}
		seen[v.Name] = true
	}
	for _, section := range [][]Var{BackupVars, ConvergeVars, IdentityVars, LockVars, ExtraVars, StackVars} {
		for _, v := range section {
			if !seen[v.Name] {
				t.Errorf("%s is not in Vars", v.Name)
			}
		}
	}
}
