package backup

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// A FileTarget restore killed (SIGKILL, in a child process) at each step leaves a whole database, and Recover
// completes or undoes it: before the rename the old database with its sidecars, after it the restored one.
func TestFileTargetKilledAtEachStep(t *testing.T) {
	if dir := os.Getenv("ZB_TEST_CRASH_DIR"); dir != "" { // the child: restore, dying at $ZB_RESTORE_CRASH_AT
		tg := &FileTarget{SourceName: "spire", Path: filepath.Join(dir, "db"), Sidecars: SQLiteSidecars, Service: Stopped{Name: "spire"}}
		_ = tg.Restore(context.Background(), filepath.Join(dir, "snapshot"), "20261126T033700Z-1a2b")
		os.Exit(0)
	}
	for step, restored := range map[string]bool{"after-stop": false, "mid-swap": false, "before-start": true, "": true} {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			db := filepath.Join(dir, "db")
			write := func(p, s string) {
				if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			write(db, "old")
			write(db+"-wal", "old wal")
			write(filepath.Join(dir, "snapshot"), "new")
			cmd := exec.Command(os.Args[0], "-test.run=^TestFileTargetKilledAtEachStep$")
			cmd.Env = append(os.Environ(), "ZB_TEST_CRASH_DIR="+dir, CrashEnv+"="+step)
			err := cmd.Run()
			var ee *exec.ExitError
			killed := errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL
			if killed != (step != "") {
				t.Fatalf("child: %v; want it killed at %q", err, step)
			}
			if b, err := os.ReadFile(db); err != nil || len(b) == 0 {
				t.Fatalf("the database is not whole after the kill: %q, %v", b, err)
			}
			tg := &FileTarget{SourceName: "spire", Path: db, Sidecars: SQLiteSidecars, Service: Stopped{Name: "spire"}}
			if _, err := tg.Recover(context.Background()); err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(db)
			wal, walErr := os.ReadFile(db + "-wal")
			switch {
			case restored && (string(got) != "new" || walErr == nil):
				t.Fatalf("after recovery: %q with wal %q; want the restored database without the old wal", got, wal)
			case !restored && (string(got) != "old" || string(wal) != "old wal"):
				t.Fatalf("after recovery: %q with wal %q (%v); want the old database and its wal", got, wal, walErr)
			}
			if _, err := os.Stat(db + restoreSuffix); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the copy is still there after recovery")
			}
			if did, err := tg.Recover(context.Background()); did != "" || err != nil {
				t.Fatalf("a second recovery: %q, %v; want nothing to do", did, err)
			}
		})
	}
}
