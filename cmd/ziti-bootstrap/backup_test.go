package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/app/backups"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/s3store"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
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
	carried, coded := exitcode.Carried(err)
	switch {
	case err == nil:
	case coded:
		code = carried
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

// bedBackup is the set-up of the backup CLI tests on the test bed: its .env file, an encryption key and the
// PostgreSQL password in files, a prefix of the bucket of their own (emptied at the end). The test bed's .env
// says ZB_DOCKER=true: backup and restore take the lock in its Swarm, so the test holds the test bed's Swarm lock.
type bedBackup struct {
	in                                                *testbed.Info
	env, dir, keyFile, pwFile, prefix, spireDatastore string
}

func newBedBackup(t *testing.T) *bedBackup {
	t.Helper()
	testbed.Require(t, "docker")
	testbed.LockSwarmApply(t)
	return newHostBedBackup(t)
}

// newHostBedBackup is newBedBackup for tests that take the tool's lock on this host (hostLock's flags), not in
// the Swarm: they need not wait for the Swarm tests.
func newHostBedBackup(t *testing.T) *bedBackup {
	t.Helper()
	in := testbed.Require(t, "s3")
	for _, s := range []string{"spire", "postgres"} {
		testbed.Require(t, s)
	}
	env, err := testbed.WriteEnv(in)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	b := &bedBackup{in: in, env: env, dir: dir, keyFile: filepath.Join(dir, "key"), pwFile: filepath.Join(dir, "pgpw"),
		prefix: "zb-cli-test-" + randomHex(4), spireDatastore: filepath.Join(in.Spire.DataDir, "server-data", "datastore.sqlite3")}
	mustNoErr(t, os.WriteFile(b.keyFile, []byte(newKey()+"\n"), 0o600))
	mustNoErr(t, os.WriteFile(b.pwFile, []byte(in.Postgres.Password), 0o600))
	t.Cleanup(func() { removeObjects(t, in, b.prefix+"/") })
	return b
}

// args are the flags that point the backup commands at the test bed and the datastore at spireDatastore (the
// test bed's to back up, never to restore into), without the S3 prefix.
func (b *bedBackup) args(spireDatastore string) []string {
	return []string{"--env-file", b.env, "--encryption-key-file", b.keyFile, "--sources", "spire,keycloak",
		"--spire-datastore", spireDatastore, "--keycloak-db-host", b.in.Postgres.Host, "--keycloak-db-port", strconv.Itoa(b.in.Postgres.Port),
		"--keycloak-db-user", b.in.Postgres.User, "--keycloak-db-name", b.in.Postgres.Database, "--keycloak-db-password-file", b.pwFile,
		"--pg-bin-dir", b.in.Postgres.BinDir, "--tmp-dir", b.dir}
}

// spireOnly are the flags of a backup or restore of the SPIRE datastore at datastore alone, under the test's prefix.
func (b *bedBackup) spireOnly(datastore string) []string {
	return append(b.args(datastore), "--prefix", b.prefix, "--sources", "spire")
}

// spireSet backs up the test bed's SPIRE datastore alone, one set under the test's prefix, and returns the flags
// that name it (spireOnly's).
func (b *bedBackup) spireSet(t *testing.T) []string {
	t.Helper()
	args := b.spireOnly(b.spireDatastore)
	b.run(t, exitcode.OK, []string{"backup"}, args...)
	return args
}

// hostLock are the flags that make backup and restore take the tool's lock in a file of the test's own instead of
// the test bed's Swarm.
func (b *bedBackup) hostLock() []string {
	return []string{"--set", "ZB_DOCKER=false", "--set", "ZB_LOCK_FILE=" + filepath.Join(b.dir, "lock")}
}

// run runs ziti-bootstrap with args and then the given flags, expects exit code want, and returns the output.
func (b *bedBackup) run(t *testing.T, want int, args []string, flags ...string) string {
	t.Helper()
	code, out, errs := backupCLI(t, append(args, flags...)...)
	if code != want {
		t.Fatalf("ziti-bootstrap %s: exit %d, want %d\n%s\n%s", strings.Join(args, " "), code, want, out, errs)
	}
	return out + errs
}

// sets lists the sets under prefix (backup list -o json with flags).
func (b *bedBackup) sets(t *testing.T, flags ...string) []backups.SetView {
	t.Helper()
	var sets []backups.SetView
	out := b.run(t, exitcode.OK, []string{"backup", "list", "-o", "json"}, flags...)
	if err := json.Unmarshal([]byte(out), &sets); err != nil {
		t.Fatalf("backup list -o json: %v\n%s", err, out)
	}
	return sets
}

func newKey() string {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return base64.StdEncoding.EncodeToString(k)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// bucket is a client of the test bed's ziti-bootstrap bucket.
func bucket(in *testbed.Info) (*s3store.Client, error) {
	u, _ := url.Parse(in.S3.Endpoint)
	return s3store.New(s3store.Options{Endpoint: u, Region: in.S3.Region, Bucket: "ziti-bootstrap", AccessKey: in.S3.AccessKey,
		SecretKey: config.NewSecret(in.S3.SecretKey)})
}

// removeObjects removes every object under prefix of the test bed's ziti-bootstrap bucket.
func removeObjects(t *testing.T, in *testbed.Info, prefix string) {
	c, err := bucket(in)
	if err != nil {
		t.Error(err)
		return
	}
	objs, _ := c.List(context.Background(), prefix)
	for _, o := range objs {
		_ = c.Remove(context.Background(), o.Key)
	}
}

// The CLI against the test bed: SPIRE's datastore and Keycloak's database are only read (online copies), so the
// shared servers are not disturbed; the Ziti source is covered by the package's tests on a private controller.
func TestBackupCommandsOnTheTestBed(t *testing.T) {
	b := newBedBackup(t)
	common := append(b.args(b.spireDatastore), "--prefix", b.prefix)
	run := func(want int, args ...string) string {
		t.Helper()
		return b.run(t, want, args, common...)
	}
	t.Cleanup(func() {
		run(exitcode.OK, "backup", "prune", "--keep-last", "1") // leaves the newest (removed with the prefix)
		if sets := b.sets(t, common...); len(sets) != 1 {
			t.Errorf("prune --keep-last 1 left %d sets, want the newest complete one", len(sets))
		}
	})

	out := run(exitcode.OK, "backup")
	t.Log("backup:\n" + out)
	versions, err := testbed.Versions()
	testutil.Must(t, err)
	spireVersion := "spire " + strings.TrimPrefix(versions["SPIRE_VERSION"], "v") // the test bed's server
	for _, want := range []string{"complete: 2 object(s)", "spire.sqlite3.zst.enc", "keycloak.pgdump.zst.enc", spireVersion, "keycloak 26", "encrypted with key"} {
		if !strings.Contains(out, want) {
			t.Errorf("backup output lacks %q:\n%s", want, out)
		}
	}
	out = run(exitcode.OK, "backup", "list")
	t.Log("backup list:\n" + out)
	if !strings.Contains(out, "complete") || !strings.Contains(out, "spire,keycloak (encrypted)") || !strings.HasPrefix(out, "SET ") {
		t.Errorf("backup list:\n%s", out)
	}
	sets := b.sets(t, common...)
	if len(sets) != 1 || sets[0].State != "complete" || sets[0].Bytes == 0 {
		t.Fatalf("backup list -o json: %+v", sets)
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
	if out := run(exitcode.InvalidConfig, "restore", "latest", "--yes"); !strings.Contains(out, "--services-stopped") || !strings.Contains(out, "--swarm") {
		t.Errorf("restore without a way to stop the servers: %s", out)
	}
	if out := run(exitcode.OK, "backup", "prune", "--dry-run"); !strings.Contains(out, "keep "+sets[0].ID) || !strings.Contains(out, "newest complete set") {
		t.Errorf("prune --dry-run: %s", out)
	}
	// a wrong key is refused before anything is downloaded
	other := filepath.Join(b.dir, "other")
	mustNoErr(t, os.WriteFile(other, []byte(newKey()), 0o600))
	code, out, errs := backupCLI(t, append(append([]string{"backup", "verify", "latest"}, common...), "--encryption-key-file", other)...)
	if code != exitcode.InvalidConfig || !strings.Contains(errs, "not with the configured key") {
		t.Errorf("verify with another key: exit %d\n%s%s", code, out, errs)
	}
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
