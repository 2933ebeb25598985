package liveview

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/progress"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
)

// golden compares frame with testdata/name (rewritten with -update) and checks no line would wrap on a terminal
// of cols columns.
func golden(t *testing.T, name, frame string, cols int) {
	t.Helper()
	testutil.Golden(t, "frame", "testdata/"+name, frame, *update)
	for _, l := range strings.Split(frame, "\n") {
		if n := len([]rune(l)); n >= cols {
			t.Errorf("line of %d runes on a %d-column terminal (it would wrap and break the redraw): %q", n, cols, l)
		}
	}
}

// events plays evs on a view whose clock advances by the given step before each event.
func events(v *View, c *clock, step time.Duration, evs ...progress.Event) {
	for _, e := range evs {
		c.t = c.t.Add(step)
		v.Progress(e)
	}
}

func newTestView(out *bytes.Buffer, title string, cols int) (*View, *clock) {
	c := &clock{t: time.Date(2026, 12, 5, 18, 0, 0, 0, time.UTC)}
	v := New(out, title, func() int { return cols })
	v.now = c.now
	v.start = c.t
	return v, c
}

// A backup half-way: ziti done (its stages and their times, the object's size), spire uploading (bytes so far),
// keycloak queued; the header names the set and the step that runs.
func TestBackupFrameGolden(t *testing.T) {
	var out bytes.Buffer
	v, c := newTestView(&out, "backup", 120)
	defer v.Close()
	events(v, c, 100*time.Millisecond,
		progress.Event{Stage: progress.Set, Detail: "20261205T180000Z-1a2b"},
		progress.Event{Source: "ziti", Stage: progress.Queued},
		progress.Event{Source: "spire", Stage: progress.Queued},
		progress.Event{Source: "keycloak", Stage: progress.Queued},
		progress.Event{Source: "ziti", Stage: progress.Snapshot},
		progress.Event{Source: "ziti", Stage: progress.Upload},
		progress.Event{Source: "ziti", Stage: progress.Upload, Bytes: 400 << 10},
		progress.Event{Source: "ziti", Stage: progress.Verify, Bytes: 1 << 20},
		progress.Event{Source: "ziti", Stage: progress.Done, Bytes: 1 << 20, Detail: "v1.7.2"},
		progress.Event{Source: "spire", Stage: progress.Snapshot},
		progress.Event{Source: "spire", Stage: progress.Upload},
		progress.Event{Source: "spire", Stage: progress.Upload, Bytes: 3 << 19},
	)
	c.t = c.t.Add(2 * time.Second)
	golden(t, "backup.golden", v.Frame(), 120)
}

// A restore: the set resolved, every object downloaded and verified, keycloak restored (its server stopped and
// started again), spire's server stopped and then waiting for its health check (the attempt and its error under
// the row), ziti queued; then spire failing: its row says so, with the error.
func TestRestoreFrameGolden(t *testing.T) {
	var out bytes.Buffer
	v, c := newTestView(&out, "restore", 120)
	defer v.Close()
	evs := []progress.Event{{Stage: progress.Recover}, {Stage: progress.Resolve, Detail: "latest"}, {Stage: progress.Set, Detail: "20261205T180000Z-1a2b"}}
	for _, s := range []string{"keycloak", "spire", "ziti"} {
		evs = append(evs, progress.Event{Source: s, Stage: progress.Queued})
	}
	for _, s := range []string{"keycloak", "spire", "ziti"} {
		evs = append(evs, progress.Event{Source: s, Stage: progress.Download, Total: 2 << 20},
			progress.Event{Source: s, Stage: progress.Download, Bytes: 2 << 20, Total: 2 << 20})
	}
	for _, s := range []string{"keycloak", "spire", "ziti"} {
		evs = append(evs, progress.Event{Source: s, Stage: progress.Verify, Total: 5 << 20})
	}
	for _, s := range []string{"keycloak", "spire", "ziti"} {
		evs = append(evs, progress.Event{Source: s, Stage: progress.Check}, progress.Event{Source: s, Stage: progress.Queued, Detail: "verified"})
	}
	evs = append(evs, progress.Event{Stage: progress.Restore},
		progress.Event{Source: "keycloak", Stage: progress.Restore, Detail: "pg_restore into keycloak_zb_restore"},
		progress.Event{Source: "keycloak", Stage: progress.Stop, Detail: "keycloak (stop: sh -c systemctl stop keycloak)"},
		progress.Event{Source: "keycloak", Stage: progress.Swap, Detail: "keycloak"},
		progress.Event{Source: "keycloak", Stage: progress.Start},
		progress.Event{Source: "keycloak", Stage: progress.Health},
		progress.Event{Source: "keycloak", Stage: progress.Done},
		progress.Event{Source: "spire", Stage: progress.Restore, Detail: "copy beside /var/lib/spire/datastore.sqlite3"},
		progress.Event{Source: "spire", Stage: progress.Stop},
		progress.Event{Source: "spire", Stage: progress.Swap, Detail: "/var/lib/spire/datastore.sqlite3"},
		progress.Event{Source: "spire", Stage: progress.Start},
		progress.Event{Source: "spire", Stage: progress.Health, Detail: "spire: attempt 3: dial unix /run/spire/api.sock: connect: no such file\nor directory"},
	)
	events(v, c, 200*time.Millisecond, evs...)
	c.t = c.t.Add(3 * time.Second)
	golden(t, "restore-health.golden", v.Frame(), 120)

	c.t = c.t.Add(time.Minute)
	v.Progress(progress.Event{Source: "spire", Stage: progress.Done, Err: errors.New("restore spire from set 20261205T180000Z-1a2b: spire did not answer in 2m0s (not attempted: ziti)")})
	v.Progress(progress.Event{Stage: progress.Done, Err: errors.New("restore failed")})
	golden(t, "restore-failed.golden", v.Frame(), 120)
}

// What the command prints while the view is on screen is held and follows its last frame; once the view is
// closed, it goes straight through.
func TestHold(t *testing.T) {
	var out bytes.Buffer
	v, _ := newTestView(&out, "restore", 80)
	stdout := v.Hold(&out)
	v.Progress(progress.Event{Source: "spire", Stage: progress.Queued})
	frame := v.Frame()
	stdout.Write([]byte("set X verified\n"))
	v.Progress(progress.Event{Source: "spire", Stage: progress.Done})
	last := v.Frame()
	stdout.Write([]byte("restored spire\n"))
	v.Close()
	stdout.Write([]byte("after\n"))
	want := frame + "\x1b[2A\r\x1b[J" + last + "\x1b[2A\r\x1b[J" + last + "set X verified\nrestored spire\nafter\n"
	if got := out.String(); got != want {
		t.Errorf("output:\n%q\nwant\n%q", got, want)
	}
}

// While the run waits for the tool's lock, the header says who holds it; the run's next event ends the wait.
func TestLockWait(t *testing.T) {
	var out bytes.Buffer
	v, _ := newTestView(&out, "backup", 120)
	defer v.Close()
	v.Progress(progress.Event{Stage: progress.Lock, Detail: "held by up run-1a2b on node1 (10s of 2m0s)"})
	if head, _, _ := strings.Cut(v.Frame(), "\n"); !strings.HasSuffix(head, "waiting for the lock, held by up run-1a2b on node1 (10s of 2m0s)") {
		t.Errorf("header while waiting for the lock: %q", head)
	}
	v.Progress(progress.Event{Stage: progress.Set, Detail: "20261205T180000Z-1a2b"})
	if strings.Contains(v.Frame(), "lock") {
		t.Errorf("the lock wait still shows once the run went on:\n%s", v.Frame())
	}
}
