package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/backup"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ptytest"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/redact"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
)

// onPTY runs ziti-bootstrap with args, its stderr a pseudo-terminal of cols columns (its stdout too with shared,
// as at a person's terminal), and returns the exit code, stdout (when not shared), and the screen (what the
// terminal received, \r\n as \n) split into the frames of the live view.
func onPTY(t *testing.T, cols uint16, shared bool, args ...string) (code int, stdout, screen string, frames []string) {
	t.Helper()
	master, slave := ptytest.Open(t, cols)
	var capture testutil.SyncBuffer
	copied := make(chan struct{})
	go func() { io.Copy(&capture, master); close(copied) }()
	var out bytes.Buffer
	var w io.Writer = &out
	if shared {
		w = slave
	}
	code = execute(context.Background(), args, w, slave)
	// the terminal is read to its end (EIO once the program's side is closed and drained), then closed: closing it
	// first would drop what the terminal holds unread, such as the report after the last frame
	slave.Close()
	<-copied
	master.Close()
	screen = strings.ReplaceAll(capture.String(), "\r\n", "\n")
	return code, out.String(), screen, redrawSeq.Split(screen, -1)
}

var (
	sizeRe   = regexp.MustCompile(`\d+(\.\d+)? (B|KiB|MiB|GiB)\b`)
	setIDRe  = regexp.MustCompile(`\b\d{8}T\d{6}Z-[0-9a-f]+\b`)
	detailRe = regexp.MustCompile(`(?m)^    ↳ .*$`)
)

// normFrame makes a frame comparable across runs: durations, sizes, set IDs and the notes under the rows (server
// versions, paths) masked, the columns' padding (which follows the durations' lengths) squeezed.
func normFrame(frame string, replace ...string) string {
	frame = strings.NewReplacer(replace...).Replace(frame)
	frame = detailRe.ReplaceAllString(frame, "    ↳ NOTE")
	frame = setIDRe.ReplaceAllString(sizeRe.ReplaceAllString(durationRe.ReplaceAllString(frame, "T"), "SIZE"), "SET")
	return spacesRe.ReplaceAllString(frame, " ")
}

// checkGolden compares got with testdata/name (ZB_UPDATE_GOLDEN=1 rewrites it).
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	testutil.Golden(t, "last frame (normalised)", filepath.Join("testdata", name), got, os.Getenv("ZB_UPDATE_GOLDEN") != "")
}

// frameShows reports whether a frame matches re.
func frameShows(frames []string, re string) bool {
	r := regexp.MustCompile(re)
	return slices.ContainsFunc(frames, r.MatchString)
}

// backup and restore on a terminal draw the live view against the test bed's real servers: a backup of the Ziti
// controller (its snapshot API), SPIRE's datastore and Keycloak's PostgreSQL database into S3, each source's row
// going through snapshot, upload (with the bytes sent) and verify, redrawn in place, the last frame left on
// screen, then the report; then a restore of that set into copies of the test's own (the Ziti and SPIRE database
// files, a PostgreSQL database), the servers "stopped" and "started" by no-op commands and their health checked
// against the real servers: download (bytes of the total), verify, check, stop, restore, swap, start, health.
// No structured log line reaches the terminal. The last frames, normalised, are kept as golden files.
func TestBackupRestoreLiveViewPTY(t *testing.T) {
	b := newHostBedBackup(t)
	testbed.Require(t, "ziti")
	common := append(append(b.args(b.spireDatastore), b.hostLock()...), "--prefix", b.prefix, "--sources", "ziti,spire,keycloak",
		"--ziti-db", filepath.Join(b.in.Ziti.Home, "db", "ctrl.db"))
	code, _, screen, frames := onPTY(t, 140, true, append([]string{"backup"}, common...)...)
	if code != exitcode.OK {
		t.Fatalf("backup: exit %d\n%s", code, lastLines(screen, 30))
	}
	last, stdout := afterLastFrame(t, frames, regexp.MustCompile(`(?m)^set \S+ complete: `))
	t.Logf("backup: %d frame(s); the last:\n%s\nthen the report:\n%s", len(frames), last, stdout)
	set := setIDRe.FindString(stdout)
	if len(frames) < 5 || !strings.Contains(stdout, "complete: 3 object(s)") || set == "" {
		t.Fatalf("want the view redrawn in place as the three sources are backed up, then the report:\n%q\n%s", screen, stdout)
	}
	for _, src := range []string{"ziti", "spire", "keycloak"} {
		for _, stage := range []string{"snapshot", "upload", "verify"} {
			if !frameShows(frames, `▸ `+src+` +`+stage+`\b`) {
				t.Errorf("no frame shows %s's %s running:\n%s", src, stage, screen)
			}
		}
		if !frameShows(frames, `▸ `+src+` +upload +\S+ +\d+(\.\d)? (B|KiB|MiB)`) {
			t.Errorf("no frame shows the bytes of %s's upload:\n%s", src, screen)
		}
		if !regexp.MustCompile(`✓ ` + src + ` +done\b`).MatchString(last) {
			t.Errorf("the last frame does not show %s done:\n%s", src, last)
		}
	}
	if !strings.HasPrefix(last, "backup ") || !strings.Contains(last, "set "+set) || !strings.Contains(last, "✓ set") {
		t.Errorf("the last frame does not name set %s and show it done:\n%s", set, last)
	}
	noLogs(t, screen)
	checkGolden(t, "live-backup.golden", normFrame(last))

	// restore into the test's own copies: the shared servers keep their state
	dir := t.TempDir()
	zitiDB, spireDB, pgDB := filepath.Join(dir, "ctrl.db"), filepath.Join(dir, "datastore.sqlite3"), "zb_pty_"+randomHex(4)
	pg := backup.Postgres{BinDir: b.in.Postgres.BinDir, Host: b.in.Postgres.Host, Port: b.in.Postgres.Port, User: b.in.Postgres.User,
		Password: redact.NewSecret(b.in.Postgres.Password), Database: b.in.Postgres.Database}
	if _, err := pg.Query(context.Background(), "CREATE DATABASE "+pgDB); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropDatabases(t, pg, pgDB) })
	restore := append(append([]string{"restore", set, "--yes"}, common...), "--ziti-db", zitiDB, "--spire-datastore", spireDB,
		"--keycloak-db-name", pgDB)
	for _, s := range []string{"ziti", "spire", "keycloak"} {
		restore = append(restore, "--"+s+"-stop", "true", "--"+s+"-start", "true")
	}
	code, _, screen, frames = onPTY(t, 140, true, restore...)
	if code != exitcode.OK {
		t.Fatalf("restore: exit %d\n%s", code, lastLines(screen, 40))
	}
	last, stdout = afterLastFrame(t, frames, regexp.MustCompile(`(?m)^set \S+ verified `))
	t.Logf("restore: %d frame(s); the last:\n%s\nthen the report:\n%s", len(frames), last, stdout)
	for _, src := range []string{"ziti", "spire", "keycloak"} {
		for _, stage := range []string{"download", "verify", "check", `stop \(server stopped\)`, "restore", `swap \(server stopped\)`, `start \(server starting\)`, `health \(server starting\)`} {
			if src == "keycloak" && strings.HasPrefix(stage, "swap") && !frameShows(frames, `▸ keycloak +swap`) {
				continue // only a superuser restores aside and swaps; an owner restores in place
			}
			if !frameShows(frames, `▸ `+src+` +`+stage) {
				t.Errorf("no frame shows %s's %s:\n%s", src, stage, screen)
			}
		}
		if !regexp.MustCompile(`✓ ` + src + ` +done\b`).MatchString(last) {
			t.Errorf("the last frame does not show %s done:\n%s", src, last)
		}
	}
	if !strings.Contains(last, "✓ set") || !strings.Contains(stdout, "restored keycloak") || !strings.Contains(stdout, "restored ziti") {
		t.Errorf("the restore did not end with the set done and the report:\n%s\n%s", last, stdout)
	}
	noLogs(t, screen)
	checkGolden(t, "live-restore.golden", normFrame(last, dir, "DIR", pgDB, "PGDB"))
}

// afterLastFrame splits the last of frames where the report (report's match) begins: the frame, then the report.
// Nothing of the report may come before the last frame: the view redraws in place, then the report follows it.
func afterLastFrame(t *testing.T, frames []string, report *regexp.Regexp) (frame, rest string) {
	t.Helper()
	last := frames[len(frames)-1]
	loc := report.FindStringIndex(last)
	if loc == nil {
		t.Fatalf("the screen does not end with the report (%s):\n%s", report, last)
	}
	for _, f := range frames[:len(frames)-1] {
		if report.MatchString(f) {
			t.Errorf("the report comes before the last frame:\n%s", f)
		}
	}
	return last[:loc[0]], last[loc[0]:]
}

// noLogs fails when structured log lines (JSON or text) reached the terminal.
func noLogs(t *testing.T, screen string) {
	t.Helper()
	if strings.Contains(screen, `{"time"`) || strings.Contains(screen, "level=INFO") {
		t.Errorf("structured log lines on the terminal:\n%s", screen)
	}
}

// dropDatabases drops db and what a restore may have left beside it.
func dropDatabases(t *testing.T, pg backup.Postgres, db string) {
	names, err := pg.Query(context.Background(), fmt.Sprintf("SELECT string_agg(datname, ' ') FROM pg_database WHERE datname LIKE '%s%%'", db))
	if err != nil {
		t.Error(err)
		return
	}
	for _, n := range strings.Fields(names) {
		if _, err := pg.Query(context.Background(), "DROP DATABASE IF EXISTS "+n+" WITH (FORCE)"); err != nil {
			t.Error(err)
		}
	}
}

// Off a terminal, backup and restore log as before the live view: JSON lines on stderr (a backup's started, one
// stored per object, complete; a restore's verified objects, started and done per source), no escape sequence,
// the report on stdout. On a terminal with -o json likewise (text log lines, the JSON report): no view.
func TestBackupOffTerminalLogs(t *testing.T) {
	b := newHostBedBackup(t)
	common := append(append(b.args(b.spireDatastore), b.hostLock()...), "--prefix", b.prefix, "--sources", "spire,keycloak")
	var stdout, stderr bytes.Buffer
	if code := execute(context.Background(), append([]string{"backup"}, common...), &stdout, &stderr); code != exitcode.OK {
		t.Fatalf("backup: exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	want := []string{"backup started", "backup object stored", "backup object stored", "backup complete"}
	if got := logMessages(t, stderr.String(), "backup "); !slices.Equal(got, want) {
		t.Errorf("log messages %q, want %q:\n%s", got, want, stderr.String())
	}
	if strings.Contains(stderr.String(), "\x1b[") || !strings.Contains(stdout.String(), "complete: 2 object(s)") {
		t.Errorf("off a terminal: escape sequences or no report\nstdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}

	stdout.Reset()
	stderr.Reset()
	target := restoreTarget(t)
	restore := append(append(append([]string{"restore", "latest", "--yes", "--services-stopped"}, b.args(target)...), b.hostLock()...), "--prefix", b.prefix, "--sources", "spire")
	if code := execute(context.Background(), restore, &stdout, &stderr); code != exitcode.OK {
		t.Fatalf("restore: exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	want = []string{"restore object verified", "restore started", "restore done"}
	if got := logMessages(t, stderr.String(), "restore "); !slices.Equal(got, want) {
		t.Errorf("log messages %q, want %q:\n%s", got, want, stderr.String())
	}
	if strings.Contains(stderr.String(), "\x1b[") || !strings.Contains(stdout.String(), "restored spire") {
		t.Errorf("off a terminal: escape sequences or no report\nstdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}

	code, out, screen, _ := onPTY(t, 140, false, append([]string{"backup", "-o", "json", "--no-prune"}, common...)...)
	if code != exitcode.OK {
		t.Fatalf("backup -o json on a terminal: exit %d\n%s\n%s", code, screen, out)
	}
	var report struct{ Manifest backup.Manifest }
	if err := json.Unmarshal([]byte(out), &report); err != nil || len(report.Manifest.Objects) != 2 {
		t.Errorf("backup -o json: %v\n%s", err, out)
	}
	if strings.Contains(screen, "\x1b[") || !strings.Contains(screen, "level=INFO msg=\"backup complete\"") {
		t.Errorf("backup -o json on a terminal: a view, or not the text logs:\n%q", screen)
	}
}

// logMessages are the msg of the JSON log lines in logs that start with prefix.
func logMessages(t *testing.T, logs, prefix string) []string {
	t.Helper()
	var msgs []string
	for _, l := range strings.Split(strings.TrimSpace(logs), "\n") {
		var rec struct{ Msg string }
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Errorf("not a JSON log line: %q", l)
			continue
		}
		if strings.HasPrefix(rec.Msg, prefix) {
			msgs = append(msgs, rec.Msg)
		}
	}
	return msgs
}
