//go:build !linux

package backup

import "os/exec"

// dieWithParent is Linux-only (Pdeathsig); elsewhere a killed restore's pg_restore runs on to its end.
func dieWithParent(*exec.Cmd) {}

// RestoreIn is Linux-only (it reads /proc): elsewhere it finds nothing.
func RestoreIn(string) string { return "" }
