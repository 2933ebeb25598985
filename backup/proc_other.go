//go:build !linux

package backup

import "os/exec"

// dieWithParent is Linux-only (Pdeathsig); elsewhere a killed restore's pg_restore runs on to its end.
func dieWithParent(*exec.Cmd) {}
