package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
)

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
