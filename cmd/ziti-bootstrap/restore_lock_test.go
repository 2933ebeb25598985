package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/lock"
)

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
