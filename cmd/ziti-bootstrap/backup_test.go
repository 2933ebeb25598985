package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/s3store"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
)

// backupCLI runs ziti-bootstrap with the backup and restore commands (added here if root.go does not have them
// yet) and returns the exit code, stdout and stderr.
func backupCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	g := &globals{stdout: &out, stderr: &errb, log: slog.New(slog.DiscardHandler)}
	root := newRootCommand(g)
	if c, _, err := root.Find([]string{"backup"}); err != nil || c == root {
		root.AddCommand(newBackupCommand(g), newRestoreCommand(g))
	}
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errb)
	err := root.ExecuteContext(context.Background())
	code := exitcode.OK
	var ee *exitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.code
	case config.IsInvalid(err):
		code = exitcode.InvalidConfig
	default:
		code = exitcode.Internal
	}
	if err != nil {
		errb.WriteString("error: " + err.Error() + "\n")
	}
	return code, out.String(), errb.String()
}

// The CLI against the test bed: SPIRE's datastore and Keycloak's database are only read (online copies), so the
// shared servers are not disturbed; the Ziti source is covered by the package's tests on a private controller.
func TestBackupCommandsOnTheTestBed(t *testing.T) {
	in := testbed.Require(t, "s3")
	testbed.Require(t, "spire")
	testbed.Require(t, "postgres")
	env, err := testbed.WriteEnv(in)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile, pwFile := filepath.Join(dir, "key"), filepath.Join(dir, "pgpw")
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	mustNoErr(t, os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(k)+"\n"), 0o600))
	mustNoErr(t, os.WriteFile(pwFile, []byte(in.Postgres.Password), 0o600))
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	prefix := "zb-cli-test-" + hex.EncodeToString(b)
	common := []string{"--env-file", env, "--prefix", prefix, "--encryption-key-file", keyFile, "--sources", "spire,keycloak",
		"--spire-datastore", filepath.Join(in.Spire.DataDir, "server-data", "datastore.sqlite3"),
		"--keycloak-db-host", in.Postgres.Host, "--keycloak-db-port", strconv.Itoa(in.Postgres.Port), "--keycloak-db-user", in.Postgres.User,
		"--keycloak-db-name", in.Postgres.Database, "--keycloak-db-password-file", pwFile, "--pg-bin-dir", in.Postgres.BinDir, "--tmp-dir", dir}
	run := func(want int, args ...string) string {
		t.Helper()
		code, out, errs := backupCLI(t, append(args, common...)...)
		if code != want {
			t.Fatalf("ziti-bootstrap %s: exit %d, want %d\n%s\n%s", strings.Join(args, " "), code, want, out, errs)
		}
		return out + errs
	}
	t.Cleanup(func() {
		run(exitcode.OK, "backup", "prune", "--keep-last", "1") // leaves the newest; remove it by hand below
		code, out, _ := backupCLI(t, append([]string{"backup", "list", "-o", "json"}, common...)...)
		var sets []setView
		if code == exitcode.OK && json.Unmarshal([]byte(out), &sets) == nil && len(sets) > 1 {
			t.Errorf("prune --keep-last 1 left %d sets", len(sets))
		}
	})

	out := run(exitcode.OK, "backup")
	t.Log("backup:\n" + out)
	for _, want := range []string{"complete: 2 object(s)", "spire.sqlite3.zst.enc", "keycloak.pgdump.zst.enc", "spire 1.13", "keycloak 26", "encrypted with key"} {
		if !strings.Contains(out, want) {
			t.Errorf("backup output lacks %q:\n%s", want, out)
		}
	}
	out = run(exitcode.OK, "backup", "list")
	t.Log("backup list:\n" + out)
	if !strings.Contains(out, "complete") || !strings.Contains(out, "spire,keycloak (encrypted)") || !strings.HasPrefix(out, "SET ") {
		t.Errorf("backup list:\n%s", out)
	}
	var sets []setView
	out = run(exitcode.OK, "backup", "list", "-o", "json")
	if err := json.Unmarshal([]byte(out), &sets); err != nil || len(sets) != 1 || sets[0].State != "complete" || sets[0].Bytes == 0 {
		t.Fatalf("backup list -o json: %v\n%s", err, out)
	}
	if out := run(exitcode.OK, "backup", "verify", "latest"); !strings.Contains(out, "verified: 2 object(s)") {
		t.Errorf("verify: %s", out)
	}
	out = run(exitcode.OK, "restore", sets[0].ID, "--dry-run", "--services-stopped")
	if !strings.Contains(out, "dry run: nothing changed") || !strings.Contains(out, "keycloak: restore keycloak.pgdump.zst.enc") {
		t.Errorf("restore --dry-run:\n%s", out)
	}
	if out := run(exitcode.InvalidConfig, "restore", "latest"); !strings.Contains(out, "--yes") {
		t.Errorf("restore without --yes: %s", out)
	}
	if out := run(exitcode.InvalidConfig, "restore", "latest", "--yes"); !strings.Contains(out, "--services-stopped") {
		t.Errorf("restore without a way to stop the servers: %s", out)
	}
	if out := run(exitcode.OK, "backup", "prune", "--dry-run"); !strings.Contains(out, "keep "+sets[0].ID) || !strings.Contains(out, "newest complete set") {
		t.Errorf("prune --dry-run: %s", out)
	}
	// a wrong key is refused before anything is downloaded
	other := filepath.Join(dir, "other")
	_, _ = rand.Read(k)
	mustNoErr(t, os.WriteFile(other, []byte(base64.StdEncoding.EncodeToString(k)), 0o600))
	code, out, errs := backupCLI(t, append(append([]string{"backup", "verify", "latest"}, common...), "--encryption-key-file", other)...)
	if code != exitcode.InvalidConfig || !strings.Contains(errs, "not with the configured key") {
		t.Errorf("verify with another key: exit %d\n%s%s", code, out, errs)
	}
	// prune never deletes the newest complete set: remove what is left under the prefix directly
	t.Cleanup(func() {
		u, _ := url.Parse(in.S3.Endpoint)
		c, err := s3store.New(s3store.Options{Endpoint: u, Region: in.S3.Region, Bucket: "ziti-bootstrap", AccessKey: in.S3.AccessKey,
			SecretKey: config.NewSecret(in.S3.SecretKey)})
		if err != nil {
			t.Error(err)
			return
		}
		objs, _ := c.List(context.Background(), prefix+"/")
		for _, o := range objs {
			_ = c.Remove(context.Background(), o.Key)
		}
		if len(objs) == 0 {
			t.Error("no set left to remove: the newest complete set should have survived prune")
		}
	})
}

func TestBackupFlagValidation(t *testing.T) {
	code, _, errs := backupCLI(t, "backup", "list", "--sources", "vault")
	if code != exitcode.InvalidConfig || !strings.Contains(errs, `unknown source "vault"`) {
		t.Fatalf("exit %d: %s", code, errs)
	}
}

func mustNoErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
