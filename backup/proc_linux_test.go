package backup

import (
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// RestoreIn finds a process whose command line is `ziti-bootstrap restore …` (here cat, named so, blocked on a
// FIFO), and no other.
func TestRestoreInFindsARestoreProcess(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"restore", "backup"} {
		if err := syscall.Mkfifo(filepath.Join(dir, f), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	start := func(args ...string) *exec.Cmd {
		cmd := &exec.Cmd{Path: "/bin/cat", Args: append([]string{"/usr/local/bin/ziti-bootstrap"}, args...), Dir: dir}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
	start("backup") // the scheduled job's own kind of run: not a restore
	if got := RestoreIn("/proc"); got != "" {
		t.Fatalf("with no restore running: %q", got)
	}
	cmd := start("restore")
	got := RestoreIn("/proc")
	if want := "pid " + strconv.Itoa(cmd.Process.Pid); !strings.Contains(got, "a restore") || !strings.Contains(got, want) {
		t.Fatalf("with a restore running as pid %d: %q", cmd.Process.Pid, got)
	}
}
