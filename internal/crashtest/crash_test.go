package crashtest

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

// TestCrashAtEveryWrite kills apply just before each write of a fresh run (at every step boundary and in the
// middle of every step that writes more than once). The next apply converges to the state of an uninterrupted
// run, without duplicates, taking over the lock the dead run left at once; a further apply writes nothing.
func TestCrashAtEveryWrite(t *testing.T) {
	b := newBed(t)
	b.crashLoop(t, crashCase{
		prepare: b.reset,
		// the runner runs independent steps at once: SPIRE's (spire/entries, then spire/ziti-ca) beside Keycloak's
		// (keycloak/realm), so the write killed before comes in either order
		anyOrder: true,
		check: func(ref steps.Report, want state) bool {
			return len(ref.Writes) >= 5 && len(want.Entries) == 2 && len(want.CAs) == 1 && len(want.Signers) == 1 &&
				len(want.Policies) == 1 && want.Realm != ""
		},
	})
}

// crashCase is one crash loop: the run that is crashed at its writes, and how each attempt starts.
type crashCase struct {
	// prepare brings the servers to the state the crashed run starts from (the same every time).
	prepare func()
	// extra are the arguments of the runs after prepare (crashed, re-run and the ones after).
	extra []string
	// check tells whether the uninterrupted run did what the test is about (its writes, its final state).
	check func(ref steps.Report, want state) bool
	// anyOrder: the run writes at once (steps that run at once, ziti/policies' policies.DefaultParallel
	// writes), so the write the process is killed before is one of the reference's kinds, not its n-th. The
	// crash hook still lets the n writes counted before it land (calls.CrashAfterWritesEnv), so exactly w-n
	// are left to do whatever their order.
	anyOrder bool
}

// crashLoop runs c uninterrupted once for reference, then, for each of its writes, prepares, kills apply just
// before that write, and checks that the next apply converges to the reference state without duplicates,
// writing no more than was left to do (without waiting for the dead run's lock), and the one after writes nothing.
func (b *bed) crashLoop(t *testing.T, c crashCase) {
	t0 := time.Now()
	c.prepare()
	ref, r := b.mustConverge("uninterrupted apply", runOpts{}, c.extra...)
	want := b.state()
	w := len(ref.Writes)
	if !c.check(ref, want) || int64(w) != ref.MutatingCalls {
		t.Fatalf("an uninterrupted apply made %d writes and this state:\n%s\n%s", ref.MutatingCalls, want, r)
	}
	t.Logf("uninterrupted apply: %d writes in %s:\n  %s", w, r.duration.Round(time.Millisecond), strings.Join(ref.Writes, "\n  "))
	b.mustBeConverged("apply after an uninterrupted apply", c.extra...)
	t.Logf("reference: %s", time.Since(t0).Round(time.Millisecond))
	var rows []string
	for n := range w {
		t.Run(fmt.Sprintf("crash-before-write-%d", n+1), func(t *testing.T) {
			b.t = t
			defer func() { b.t = nil }()
			c.prepare()
			crashed := b.apply(runOpts{env: []string{calls.CrashAfterWritesEnv + "=" + fmt.Sprint(n)}}, c.extra...)
			if crashed.signal != syscall.SIGKILL {
				t.Fatalf("apply with %s=%d was not killed: %s", calls.CrashAfterWritesEnv, n, crashed)
			}
			killed := killedBefore(crashed.stderr, n)
			// Writes made concurrently come in any order: then the write killed before is one of the same kinds.
			if !c.anyOrder && shape(killed) != shape(ref.Writes[n]) || !slices.ContainsFunc(ref.Writes, func(w string) bool { return kindOf(w) == kindOf(killed) }) {
				t.Errorf("killed before %q, want %q; stderr:\n%s", killed, ref.Writes[n], crashed.stderr)
			}
			rep, rerun := b.mustConverge("apply after the crash", runOpts{}, c.extra...)
			diffStates(t, "after a crash before write "+fmt.Sprint(n+1), want, b.state())
			if left := w - n; rep.MutatingCalls > int64(left) {
				t.Errorf("re-run made %d writes, more than the %d left to do: %v", rep.MutatingCalls, left, rep.Writes)
			}
			// The dead run's lock was taken over at once (same host, process gone), not after its TTL.
			if rerun.duration > 30*time.Second {
				t.Errorf("re-run took %s: did it wait for the dead run's lock?", rerun.duration)
			}
			b.mustBeConverged("third apply", c.extra...)
			rows = append(rows, fmt.Sprintf("crash before write %2d (%s): re-run %d write(s) in %s, then 0",
				n+1, killed, rep.MutatingCalls, rerun.duration.Round(time.Millisecond)))
		})
		if t.Failed() {
			break
		}
	}
	b.t = t
	b.swarmLockGone()
	t.Logf("crash loop over %d writes: %s in all\n  %s", w, time.Since(t0).Round(time.Second), strings.Join(rows, "\n  "))
}

// killedBefore is the write the crash hook named when it killed the process before write n+1 ("system METHOD
// path"), or "" when stderr does not say.
func killedBefore(stderr string, n int) string {
	marker := fmt.Sprintf(": SIGKILL before write %d (", n+1)
	for _, l := range strings.Split(stderr, "\n") {
		if _, w, ok := strings.Cut(l, marker); ok {
			return strings.TrimSuffix(w, ")")
		}
	}
	return ""
}

// kindOf is a write ("system METHOD path") without the object: the id a PUT, PATCH or DELETE names is dropped,
// and server-chosen ids anywhere else are replaced by {id}.
func kindOf(w string) string {
	w = shape(w)
	if f := strings.Fields(w); len(f) == 3 && f[1] != "POST" {
		if i := strings.LastIndex(w, "/"); i > 0 {
			w = w[:i]
		}
	}
	return w
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
