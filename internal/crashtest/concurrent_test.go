package crashtest

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
)

// together starts two applies at the same moment and returns their results.
func together(b *bed, env ...string) [2]result {
	var (
		wg  sync.WaitGroup
		out [2]result
	)
	gun := make(chan struct{})
	for i := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gun
			out[i] = b.apply(runOpts{env: env})
		}()
	}
	close(gun)
	wg.Wait()
	return out
}

// TestConcurrentApplies starts two applies together from nothing. Exactly one writes; with a wait
// (ZB_LOCK_WAIT, default 2m) the other waits for it and then finds nothing to do, with ZB_LOCK_WAIT=0 it exits
// 5 at once naming the holder. The final state is that of one run.
func TestConcurrentApplies(t *testing.T) {
	b := newBed(t)
	b.reset()
	ref, _ := b.mustConverge("one apply", runOpts{})
	want := b.state()
	w := ref.MutatingCalls

	t.Run("second-waits", func(t *testing.T) {
		b.t = t
		defer func() { b.t = nil }()
		b.reset()
		rs := together(b)
		var writes []int64
		for _, r := range rs {
			if r.code != 0 {
				t.Fatalf("an apply failed: %s", r)
			}
			writes = append(writes, r.report(t).MutatingCalls)
		}
		if !(writes[0] == w && writes[1] == 0) && !(writes[0] == 0 && writes[1] == w) {
			t.Fatalf("writes %v; want one run with all %d writes and one with none", writes, w)
		}
		waiter := rs[0]
		if writes[0] == w {
			waiter = rs[1]
		}
		diffStates(t, "two applies with a wait", want, b.state())
		t.Logf("one run wrote %d times; the other waited and made 0 writes (it ran %s)", w, waiter.duration.Round(time.Millisecond))
	})

	t.Run("second-refuses", func(t *testing.T) {
		b.t = t
		defer func() { b.t = nil }()
		for attempt := 1; ; attempt++ {
			b.reset()
			rs := together(b, "ZB_LOCK_WAIT=0")
			holder, refused := rs[0], rs[1]
			if holder.code != 0 {
				holder, refused = refused, holder
			}
			if holder.code != 0 {
				t.Fatalf("neither apply succeeded:\n%s\n%s", rs[0], rs[1])
			}
			if refused.code == 0 && attempt < 3 {
				t.Logf("attempt %d: the runs did not overlap (both exit 0); again", attempt)
				continue
			}
			if refused.code != exitcode.Locked {
				t.Fatalf("second apply: exit %d, want %d (locked)\n%s", refused.code, exitcode.Locked, refused)
			}
			for _, want := range []string{"another run is writing", "ziti-bootstrap.lock", fmt.Sprintf("pid %d", holder.pid), "ZB_LOCK_WAIT=0"} {
				if !strings.Contains(refused.stderr, want) {
					t.Errorf("refusal does not say %q:\n%s", want, refused.stderr)
				}
			}
			if refused.stdout != "" {
				t.Errorf("a refused apply printed a report: %s", refused.stdout)
			}
			if got := holder.report(t).MutatingCalls; got != w {
				t.Errorf("the holder made %d writes, want %d", got, w)
			}
			diffStates(t, "two applies, one refused", want, b.state())
			t.Logf("refused after %s: %s", refused.duration.Round(time.Millisecond), strings.TrimSpace(refused.stderr))
			break
		}
	})
	// Without Docker the lock is a flock on a local file: the same on one host.
	t.Run("file-lock-refuses", func(t *testing.T) {
		b.t = t
		defer func() { b.t = nil }()
		file := filepath.Join(t.TempDir(), "apply.lock")
		for attempt := 1; ; attempt++ {
			b.reset()
			rs := together(b, "ZB_LOCK_WAIT=0", "ZB_DOCKER=false", "ZB_LOCK_FILE="+file)
			holder, refused := rs[0], rs[1]
			if holder.code != 0 {
				holder, refused = refused, holder
			}
			if refused.code == 0 && attempt < 3 {
				continue
			}
			if holder.code != 0 || refused.code != exitcode.Locked || !strings.Contains(refused.stderr, fmt.Sprintf("pid %d", holder.pid)) ||
				!strings.Contains(refused.stderr, "this host only") {
				t.Fatalf("want one run converged and one refused (5) naming it and the file lock:\n%s\n%s", holder, refused)
			}
			diffStates(t, "two applies with a file lock", want, b.state())
			break
		}
	})
	b.t = t
	b.mustBeConverged("apply after the concurrent ones")
	b.swarmLockGone()
}
