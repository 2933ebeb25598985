package calls

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// The crash hook kills the process just before the (N+1)-th write: run this test binary as the victim.
func TestCrashHookKillsBeforeWriteNPlus1(t *testing.T) {
	if os.Getenv("ZB_CALLS_CRASH_VICTIM") != "" {
		beforeWrite = crashHook(os.Getenv(CrashAfterWritesEnv)) // as a binary built with the tag zbcrashhook does
		c := New()
		for i := 1; i <= 5; i++ {
			c.Write("sys", fmt.Sprintf("POST /%d", i))
			fmt.Printf("wrote %d\n", i)
		}
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHookKillsBeforeWriteNPlus1$")
	cmd.Env = append(os.Environ(), "ZB_CALLS_CRASH_VICTIM=1", CrashAfterWritesEnv+"=2")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("victim ended with %v, want SIGKILL\n%s", err, out)
	}
	if !strings.Contains(string(out), "wrote 2\n") || strings.Contains(string(out), "wrote 3") ||
		!strings.Contains(string(out), "SIGKILL before write 3 (sys POST /3)") {
		t.Fatalf("output:\n%s", out)
	}
}

func TestCrashHookOffOrInvalidDoesNothing(t *testing.T) {
	crashHook("")("s", "w")
	crashHook("x")("s", "w")
	crashHook("-1")("s", "w")
}

// A release build (no tags) holds neither the crash hook nor the fault injection; the crash tests' build
// (-tags zbcrashhook) holds the hook.
func TestReleaseBuildHasNoTestHooks(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary twice")
	}
	dir := t.TempDir()
	build := func(name string, tags ...string) []byte {
		out := dir + "/" + name
		args := append([]string{"build", "-trimpath", "-o", out}, tags...)
		cmd := exec.Command("go", append(args, "../../cmd/ziti-bootstrap")...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %v: %v\n%s", args, err, b)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	release := string(build("release"))
	for _, s := range []string{CrashAfterWritesEnv, "calls.crashHook", "callfaults."} {
		if strings.Contains(release, s) {
			t.Errorf("the release binary holds %q", s)
		}
	}
	if hooked := string(build("hooked", "-tags", "zbcrashhook")); !strings.Contains(hooked, CrashAfterWritesEnv) {
		t.Errorf("the -tags zbcrashhook binary lacks the crash hook (%s): the test would not see it", CrashAfterWritesEnv)
	}
}
