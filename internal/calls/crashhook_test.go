package calls

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The crash hook kills the process just before the (N+1)-th write: run this test binary as the victim.
func TestCrashHookKillsBeforeWriteNPlus1(t *testing.T) {
	if os.Getenv("ZB_CALLS_CRASH_VICTIM") != "" {
		beforeWrite, afterWrite = crashHook(os.Getenv(CrashAfterWritesEnv)) // as a binary built with the tag zbcrashhook does
		c := New()
		for i := 1; i <= 5; i++ {
			c.Write("sys", fmt.Sprintf("POST /%d", i))
			fmt.Printf("wrote %d\n", i)
			c.answered()
		}
		os.Exit(0)
	}
	out := crashVictim(t, "TestCrashHookKillsBeforeWriteNPlus1", 2)
	if !strings.Contains(out, "wrote 2\n") || strings.Contains(out, "wrote 3") ||
		!strings.Contains(out, "SIGKILL before write 3 (sys POST /3)") {
		t.Fatalf("output:\n%s", out)
	}
}

// Writes made at once: the write counted first is still sent and answered before the process dies, though the
// other goroutine counts the write the hook kills before while the first is on its way (CI's crash loop saw
// a re-run redo writes the dead run had counted but not sent); no later write is sent.
func TestCrashHookWaitsForTheWritesCountedBefore(t *testing.T) {
	if os.Getenv("ZB_CALLS_CRASH_VICTIM") != "" {
		beforeWrite, afterWrite = crashHook(os.Getenv(CrashAfterWritesEnv))
		c := New()
		counted := make(chan struct{})
		go func() {
			c.Write("sys", "POST /slow")
			close(counted)
			time.Sleep(300 * time.Millisecond) // on its way to the server
			fmt.Printf("answered /slow\n")
			c.answered()
		}()
		<-counted
		c.Write("sys", "POST /next")
		fmt.Printf("sent /next\n")
		os.Exit(0)
	}
	out := crashVictim(t, "TestCrashHookWaitsForTheWritesCountedBefore", 1)
	if !strings.Contains(out, "answered /slow\n") || strings.Contains(out, "sent /next") ||
		!strings.Contains(out, "SIGKILL before write 2 (sys POST /next)") {
		t.Fatalf("output:\n%s", out)
	}
}

// crashVictim runs the test named as the crash hook's victim with CrashAfterWritesEnv=n and returns its output,
// failing unless SIGKILL ended it.
func crashVictim(t *testing.T, test string, n int) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$")
	cmd.Env = append(os.Environ(), "ZB_CALLS_CRASH_VICTIM=1", CrashAfterWritesEnv+"="+fmt.Sprint(n))
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("victim ended with %v, want SIGKILL\n%s", err, out)
	}
	return string(out)
}

func TestCrashHookOffOrInvalidDoesNothing(t *testing.T) {
	for _, v := range []string{"", "x", "-1"} {
		before, after := crashHook(v)
		before("s", "w")
		after()
	}
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
