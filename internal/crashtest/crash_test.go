package crashtest

import (
	"fmt"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
)

// TestCrashAtEveryWrite kills apply just before each write of a fresh run (at every step boundary and in the
// middle of every step that writes more than once). The next apply converges to the state of an uninterrupted
// run, without duplicates, taking over the lock the dead run left at once; a further apply writes nothing.
func TestCrashAtEveryWrite(t *testing.T) {
	b := newBed(t)
	b.reset()
	t0 := time.Now()
	ref, r := b.mustConverge("uninterrupted apply", runOpts{})
	want := b.state()
	w := int(ref.MutatingCalls)
	if w < 5 || len(want.Entries) != 2 || len(want.CAs) != 1 || len(want.Signers) != 1 || len(want.Policies) != 1 || want.Realm == "" {
		t.Fatalf("an uninterrupted apply made %d writes and this state:\n%s\n%s", w, want, r)
	}
	t.Logf("uninterrupted apply: %d writes in %s:\n  %s", w, r.duration.Round(time.Millisecond), strings.Join(ref.Writes, "\n  "))
	b.mustBeConverged("apply after an uninterrupted apply")
	t.Logf("reference: %s", time.Since(t0).Round(time.Millisecond))

	var rows []string
	for n := 0; n < w; n++ {
		t.Run(fmt.Sprintf("crash-before-write-%d", n+1), func(t *testing.T) {
			b.t = t
			defer func() { b.t = nil }()
			b.reset()
			crashed := b.apply(runOpts{env: []string{calls.CrashAfterWritesEnv + "=" + fmt.Sprint(n)}})
			if crashed.signal != syscall.SIGKILL {
				t.Fatalf("apply with %s=%d was not killed: %s", calls.CrashAfterWritesEnv, n, crashed)
			}
			if !strings.Contains(shape(crashed.stderr), shape(ref.Writes[n])) {
				t.Errorf("killed before %q? stderr:\n%s", ref.Writes[n], crashed.stderr)
			}
			rep, rerun := b.mustConverge("apply after the crash", runOpts{})
			got := b.state()
			diffStates(t, "after a crash before write "+fmt.Sprint(n+1), want, got)
			if rep.MutatingCalls > int64(w-n) {
				t.Errorf("re-run made %d writes, more than the %d left to do: %v", rep.MutatingCalls, w-n, rep.Writes)
			}
			// The dead run's lock was taken over at once (same host, process gone), not after its TTL.
			if rerun.duration > 30*time.Second {
				t.Errorf("re-run took %s: did it wait for the dead run's lock?", rerun.duration)
			}
			b.mustBeConverged("third apply")
			rows = append(rows, fmt.Sprintf("crash before write %2d (%s): re-run %d write(s) in %s, then 0",
				n+1, ref.Writes[n], rep.MutatingCalls, rerun.duration.Round(time.Millisecond)))
		})
		if t.Failed() {
			break
		}
	}
	b.t = t
	b.swarmLockGone()
	t.Logf("crash loop over %d writes: %s in all\n  %s", w, time.Since(t0).Round(time.Second), strings.Join(rows, "\n  "))
}

// serverID is a path segment the server chose: a UUID (Keycloak) or a short id (OpenZiti), 20 characters or
// more with a digit.
var serverID = regexp.MustCompile(`/[A-Za-z0-9_-]*[0-9][A-Za-z0-9_-]*`)

// shape is a write ("system METHOD path") with the server-chosen ids of its path replaced by {id}.
func shape(s string) string {
	return serverID.ReplaceAllStringFunc(s, func(seg string) string {
		if len(seg) > 20 {
			return "/{id}"
		}
		return seg
	})
}
