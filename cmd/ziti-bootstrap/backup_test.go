package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/app/backups"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/lock"
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

// Every backup setting is read from the environment, as a scheduled backup service is configured (which has
// neither Keycloak's admin password nor SPIRE's upstream key: backup does not need them); a flag beats the
// variable; a bad value is refused with exit code 2 naming the variable (or the flag), and nothing is written.
func TestBackupSettingsFromTheEnvironment(t *testing.T) {
	b := newBedBackup(t)
	b.env = containerEnv(t, b.in)
	for k, v := range map[string]string{
		"BACKUP_PREFIX": b.prefix, "BACKUP_SOURCES": "spire", "SPIRE_DATASTORE_PATH": b.spireDatastore, "BACKUP_ENCRYPTION_KEY": newKey(),
		"BACKUP_TMPDIR": b.dir, "BACKUP_KEEP_LAST": "1",
	} {
		t.Setenv(k, v)
	}
	onlyEnv := []string{"--env-file", b.env}

	out := b.run(t, exitcode.OK, []string{"backup"}, onlyEnv...)
	for _, want := range []string{"complete: 1 object(s)", "spire.sqlite3.zst.enc", "encrypted with key"} {
		if !strings.Contains(out, want) {
			t.Errorf("backup configured by the environment: output lacks %q:\n%s", want, out)
		}
	}
	first := b.sets(t, onlyEnv...)
	if len(first) != 1 || first[0].Manifest == nil || len(first[0].Manifest.Objects) != 1 || first[0].Manifest.Objects[0].Source != "spire" {
		t.Fatalf("sets under BACKUP_PREFIX: %+v; want one, of spire only", first)
	}
	// BACKUP_KEEP_LAST=1: the second run prunes the first set (set IDs are by the second: start it in the next one)
	time.Sleep(time.Until(first[0].Started.Truncate(time.Second).Add(time.Second)))
	out = b.run(t, exitcode.OK, []string{"backup"}, onlyEnv...)
	if !strings.Contains(out, "deleted set "+first[0].ID+" (retention)") {
		t.Errorf("second backup with BACKUP_KEEP_LAST=1 did not prune %s:\n%s", first[0].ID, out)
	}

	// flags beat the environment
	if sets := b.sets(t, "--env-file", b.env, "--prefix", b.prefix+"-other"); len(sets) != 0 {
		t.Errorf("--prefix did not beat BACKUP_PREFIX: %d sets listed", len(sets))
	}

	// bad values: every problem at once, each naming its variable; nothing written, nothing on stdout
	t.Setenv("BACKUP_KEEP_LAST", "-1")
	t.Setenv("BACKUP_PART_SIZE_MIB", "1")
	t.Setenv("BACKUP_SCHEDULE", "at three")
	before := b.sets(t, "--env-file", b.env, "--keep-last", "1", "--part-size-mib", "6", "--set", "BACKUP_SCHEDULE=") // flags beat bad values
	code, stdout, stderr := backupCLI(t, "backup", "--env-file", b.env)
	if code != exitcode.InvalidConfig || stdout != "" {
		t.Fatalf("backup with bad variables: exit %d, want %d; stdout %q\n%s", code, exitcode.InvalidConfig, stdout, stderr)
	}
	for _, want := range []string{`BACKUP_KEEP_LAST: "-1" is not a whole number`, `BACKUP_PART_SIZE_MIB: "1"`, `BACKUP_SCHEDULE: "at three"`} {
		if !strings.Contains(stderr, want) {
			t.Errorf("error lacks %q:\n%s", want, stderr)
		}
	}
	if after := b.sets(t, "--env-file", b.env, "--keep-last", "1", "--part-size-mib", "6", "--set", "BACKUP_SCHEDULE="); len(after) != len(before) {
		t.Errorf("a refused backup wrote a set: %d sets, before %d", len(after), len(before))
	}
	// a bad flag names the flag and its variable
	code, _, stderr = backupCLI(t, "backup", "list", "--env-file", b.env, "--keep-last", "1", "--part-size-mib", "6", "--set", "BACKUP_SCHEDULE=", "--keep-daily", "some")
	if code != exitcode.InvalidConfig || !strings.Contains(stderr, `--keep-daily (BACKUP_KEEP_DAILY): "some"`) {
		t.Errorf("bad --keep-daily: exit %d\n%s", code, stderr)
	}
}

// containerEnv writes an .env file for the test bed as the scheduled backup service is configured: the
// controller, SPIRE's socket, S3 and Docker, but neither Keycloak's admin password nor SPIRE's upstream key (only
// apply needs them), and an empty Docker secrets directory.
func containerEnv(t *testing.T, in *testbed.Info) string {
	t.Helper()
	dir := t.TempDir()
	ziti, s3 := filepath.Join(dir, "ziti_pwd"), filepath.Join(dir, "s3_secret")
	mustNoErr(t, os.WriteFile(ziti, []byte(in.Ziti.Password), 0o600))
	mustNoErr(t, os.WriteFile(s3, []byte(in.S3.SecretKey), 0o600))
	p := filepath.Join(dir, "backup.env")
	mustNoErr(t, os.WriteFile(p, []byte(strings.Join([]string{
		"ZB_SECRETS_DIR=" + t.TempDir(), "ZITI_CTRL_URL=" + in.Ziti.URL, "ZITI_USER=" + in.Ziti.User, "ZITI_CA_FILE=" + in.Ziti.CAFile,
		"ZITI_PWD_FILE=" + ziti, "SPIRE_SERVER_ADDRESS=unix://" + in.Spire.Socket, "TRUST_DOMAIN=" + in.Spire.TrustDomain,
		"KEYCLOAK_URL=" + in.Keycloak.URL, "S3_ENDPOINT=" + in.S3.Endpoint, "S3_REGION=" + in.S3.Region,
		"S3_ACCESS_KEY_ID=" + in.S3.AccessKey, "S3_SECRET_ACCESS_KEY_FILE=" + s3, "ZB_DOCKER=true", "DOCKER_HOST=" + in.Docker.Host,
	}, "\n")+"\n"), 0o600))
	if code, _, errs := cli(t, "status", "--env-file", p); code != exitcode.InvalidConfig || !strings.Contains(errs, "KEYCLOAK_ADMIN_PASSWORD") {
		t.Fatalf("the env file should lack Keycloak's admin password: status exit %d\n%s", code, errs)
	}
	return p
}

// BACKUP_SCHEDULE and BACKUP_LISTEN from the environment make `backup` the scheduled job, serving its metrics
// and health on that address until it is stopped.
func TestScheduledJobFromTheEnvironment(t *testing.T) {
	b := newBedBackup(t)
	addr := testutil.FreeAddr(t)
	for k, v := range map[string]string{"BACKUP_PREFIX": b.prefix, "BACKUP_SOURCES": "spire", "SPIRE_DATASTORE_PATH": b.spireDatastore,
		"BACKUP_SCHEDULE": "@every 24h", "BACKUP_LISTEN": addr} {
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	var out, errb bytes.Buffer
	go func() { done <- execute(ctx, []string{"backup", "--env-file", b.env}, &out, &errb) }()

	var metrics string
	deadline := time.Now().Add(30 * time.Second)
	for metrics == "" && time.Now().Before(deadline) {
		select {
		case code := <-done:
			t.Fatalf("the job exited (%d) instead of serving:\n%s%s", code, out.String(), errb.String())
		case <-time.After(200 * time.Millisecond):
		}
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		metrics = string(body)
	}
	if !strings.Contains(metrics, "ziti_bootstrap_backup_next_run_timestamp_seconds") {
		t.Fatalf("no job metrics on BACKUP_LISTEN %s:\n%.500s", addr, metrics)
	}
	if code, hout, herr := backupCLI(t, "backup", "healthcheck"); code != exitcode.OK { // at BACKUP_LISTEN
		t.Errorf("healthcheck of the job: exit %d %s%s", code, hout, herr)
	}
	cancel()
	select {
	case code := <-done:
		if code != exitcode.OK {
			t.Errorf("the job stopped with exit %d:\n%s", code, errb.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the job did not stop when its context ended")
	}
	if sets := b.sets(t, "--env-file", b.env); len(sets) != 0 {
		t.Errorf("the job ran before its schedule: %d sets", len(sets))
	}
}

// holdLock takes ziti-bootstrap's lock in the test bed's Swarm, as another run would (the caller holds the test
// bed's Swarm lock); release frees it (also at the end of the test).
func (b *bedBackup) holdLock(t *testing.T) (holder lock.Holder, release func()) {
	t.Helper()
	c, err := docker.New(b.in.Docker.Host, nil)
	mustNoErr(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lease, err := lock.Acquire(ctx, lock.NewSwarm(c, lock.Name, b.in.Docker.Host), lock.Options{TTL: 30 * time.Second, Wait: time.Minute})
	mustNoErr(t, err)
	release = func() {
		_ = lease.Release(context.Background())
		c.Close()
	}
	t.Cleanup(release)
	return lease.Holder(), release
}

// restoreTarget is a file of the test's own to restore SPIRE's datastore into (never the test bed's).
func restoreTarget(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "datastore.sqlite3")
	mustNoErr(t, os.WriteFile(p, []byte("the state before any restore"), 0o600))
	return p
}

// fileState identifies the file the way a restore changes it: a new inode, the old one kept aside.
func fileState(t *testing.T, path string) string {
	t.Helper()
	st, err := os.Stat(path)
	mustNoErr(t, err)
	kept, _ := filepath.Glob(path + ".before-restore-*")
	return fmt.Sprintf("inode %d, kept %v", st.Sys().(*syscall.Stat_t).Ino, kept)
}

// restore and backup take the lock apply, up and down take: a restore is refused at once (ZB_LOCK_WAIT=0) while
// another run holds it, naming the holder and changing nothing; a backup waits and proceeds once it is released.
func TestRestoreAndBackupTakeTheLock(t *testing.T) {
	b := newBedBackup(t)
	backupArgs := b.spireSet(t)
	target := restoreTarget(t)
	restoreArgs := b.spireOnly(target) // the datastore flag is the test's file
	restore := []string{"restore", "latest", "--yes", "--services-stopped"}

	t.Run("restore refused while the lock is held", func(t *testing.T) {
		holder, release := b.holdLock(t)
		defer release()
		before := fileState(t, target)
		code, out, errs := backupCLI(t, append(append(restore, restoreArgs...), "--set", "ZB_LOCK_WAIT=0")...)
		if code != exitcode.Locked || !strings.Contains(errs, holder.Run) || !strings.Contains(errs, "ZB_LOCK_WAIT=0") {
			t.Fatalf("restore while another run holds the lock: exit %d, want %d naming the holder %s\n%s%s", code, exitcode.Locked, holder.Run, out, errs)
		}
		t.Logf("refused: %s", strings.TrimSpace(errs))
		if after := fileState(t, target); after != before {
			t.Errorf("the target was changed: %s, before %s", after, before)
		}
		if strings.Contains(out, "restored") {
			t.Errorf("output claims a restore:\n%s", out)
		}
	})

	t.Run("backup waits for the lock and runs once it is released", func(t *testing.T) {
		_, release := b.holdLock(t)
		type result struct {
			code     int
			out, err string
		}
		done := make(chan result, 1)
		start := time.Now()
		go func() {
			code, out, errs := backupCLI(t, append([]string{"backup", "--set", "ZB_LOCK_WAIT=2m"}, backupArgs...)...)
			done <- result{code, out, errs}
		}()
		select {
		case r := <-done:
			t.Fatalf("backup ran while the lock was held: exit %d\n%s%s", r.code, r.out, r.err)
		case <-time.After(4 * time.Second):
		}
		released := time.Now()
		release()
		var r result
		select {
		case r = <-done:
		case <-time.After(2 * time.Minute):
			t.Fatal("backup did not run after the lock was released")
		}
		if r.code != exitcode.OK {
			t.Fatalf("backup after waiting: exit %d\n%s%s", r.code, r.out, r.err)
		}
		sets := b.sets(t, backupArgs...)
		newest := sets[len(sets)-1]
		if newest.Started.Before(released.Add(-time.Second)) {
			t.Errorf("the set %s started at %s, before the lock was released at %s", newest.ID, newest.Started, released)
		}
		t.Logf("backup done %s after its start, %s after the lock was released", time.Since(start).Round(100*time.Millisecond),
			time.Since(released).Round(100*time.Millisecond))
	})

	t.Run("restore runs when the lock is free", func(t *testing.T) {
		before := fileState(t, target)
		out := b.run(t, exitcode.OK, restore, append(restoreArgs, "--set", "ZB_LOCK_WAIT=0")...)
		if !strings.Contains(out, "restored spire") {
			t.Errorf("restore output:\n%s", out)
		}
		if after := fileState(t, target); after == before {
			t.Errorf("the target was not replaced: %s", after)
		}
	})
}
