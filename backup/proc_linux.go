package backup

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes cmd's process receive SIGKILL when this one dies.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
