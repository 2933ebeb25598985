package lock

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
)

// A read-only pass stands only when no run held the lock at any moment of it: Peek finds the lock free (or
// missing), and Unchanged finds it so at the same version afterwards. On the test bed's Swarm.
func TestSwarmPeek(t *testing.T) {
	c, name := swarmLock(t)
	ctx := testutil.Context(t, time.Minute)
	store := NewSwarm(c, name, "e")
	peek := func(what string, want bool) Snapshot {
		t.Helper()
		s, ok, err := Peek(ctx, store)
		testutil.Must(t, err)
		if ok != want {
			t.Fatalf("%s: Peek ok = %v, want %v", what, ok, want)
		}
		return s
	}
	unchanged := func(what string, s Snapshot, want bool) {
		t.Helper()
		got, err := s.Unchanged(ctx)
		testutil.Must(t, err)
		if got != want {
			t.Errorf("%s: Unchanged = %v, want %v", what, got, want)
		}
	}
	missing := peek("no lock config yet", true)
	unchanged("nothing happened", missing, true)
	l := mustAcquire(t, ctx, NewSwarm(c, name, "e"), Options{TTL: 30 * time.Second})
	unchanged("taken by another run", missing, false)
	peek("held", false)
	testutil.Must(t, l.Release(ctx))
	unchanged("taken and released by another run", missing, false)
	free := peek("released", true)
	unchanged("nothing happened since the release", free, true)
	l = mustAcquire(t, ctx, NewSwarm(c, name, "e"), Options{TTL: 30 * time.Second})
	testutil.Must(t, l.Release(ctx))
	unchanged("taken and released again", free, false)
	if _, ok, err := Peek(ctx, NewFile(filepath.Join(t.TempDir(), "zb.lock"))); ok || err != nil {
		t.Errorf("a file lock cannot be peeked: ok %v, err %v", ok, err)
	}
	if err := calls.Fence(ReadOnly(ctx)); !errors.Is(err, ErrNeedsLock) {
		t.Errorf("a write in a read-only pass: fence says %v, want ErrNeedsLock", err)
	}
}
