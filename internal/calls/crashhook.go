package calls

import (
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// CrashAfterWritesEnv names the test-only crash hook: set to N, the process SIGKILLs itself just before its
// (N+1)-th mutating call (writes of every Counter of the process count; calls on a nil Counter do not), once
// its first N writes have their answers: a write counted by one goroutine just before another counts write N+1
// is still sent, so the dead run made exactly N writes whatever the order of writes made at once. No write after
// the N-th is sent. Tests of crash safety set it on a subprocess to interrupt apply at each write. Only a binary
// built with the tag zbcrashhook reads it (crashhook_on.go); in a release build crashHook is dead code the
// linker leaves out.
const CrashAfterWritesEnv = "ZB_TEST_CRASH_AFTER_WRITES"

// answerBound is how long the crash hook waits for the first N writes' answers before it kills anyway.
const answerBound = 30 * time.Second

// crashHook returns the hook called before each write and the one called once a write has its answer.
func crashHook(v string) (before func(system, what string), after func()) {
	none := func(string, string) {}
	if v == "" {
		return none, func() {}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		fmt.Fprintf(os.Stderr, "ziti-bootstrap: ignoring %s=%q: not a number of writes\n", CrashAfterWritesEnv, v)
		return none, func() {}
	}
	var counted, answered atomic.Int64
	before = func(system, what string) {
		k := counted.Add(1)
		if k <= n {
			return
		}
		if k == n+1 {
			for deadline := time.Now().Add(answerBound); answered.Load() < n && time.Now().Before(deadline); {
				time.Sleep(2 * time.Millisecond)
			}
			fmt.Fprintf(os.Stderr, "ziti-bootstrap: %s=%d: SIGKILL before write %d (%s %s)\n", CrashAfterWritesEnv, n, n+1, system, what)
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
		select {} // the signal is on its way; a later write is never sent
	}
	return before, func() { answered.Add(1) }
}
