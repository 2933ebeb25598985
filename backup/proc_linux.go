package backup

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// dieWithParent makes cmd's process receive SIGKILL when this one dies.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// RestoreIn names a ziti-bootstrap restore among the processes of procDir (a /proc), e.g. "a restore (pid 42)",
// or returns "". In a container's PID namespace these are the processes docker exec started there.
func RestoreIn(procDir string) string {
	entries, err := os.ReadDir(procDir)
	if err != nil {
		return ""
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(procDir, e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		argv := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(argv) >= 2 && filepath.Base(argv[0]) == "ziti-bootstrap" && argv[1] == "restore" {
			return fmt.Sprintf("a restore (pid %d)", pid)
		}
	}
	return ""
}
