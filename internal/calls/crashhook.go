package calls

import (
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
)

// CrashAfterWritesEnv names the test-only crash hook: set to N, the process SIGKILLs itself just before its
// (N+1)-th mutating call (writes of every Counter of the process count; calls on a nil Counter do not). Tests
// of crash safety set it on a subprocess to interrupt apply at each write. Only a binary built with the tag
// zbcrashhook reads it (crashhook_on.go); in a release build crashHook is dead code the linker leaves out.
const CrashAfterWritesEnv = "ZB_TEST_CRASH_AFTER_WRITES"

func crashHook(v string) func(system, what string) {
	if v == "" {
		return func(string, string) {}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		fmt.Fprintf(os.Stderr, "ziti-bootstrap: ignoring %s=%q: not a number of writes\n", CrashAfterWritesEnv, v)
		return func(string, string) {}
	}
	var writes atomic.Int64
	return func(system, what string) {
		if writes.Add(1) <= n {
			return
		}
		fmt.Fprintf(os.Stderr, "ziti-bootstrap: %s=%d: SIGKILL before write %d (%s %s)\n", CrashAfterWritesEnv, n, n+1, system, what)
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}
