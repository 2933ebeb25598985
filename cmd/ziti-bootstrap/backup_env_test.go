package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
)

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
