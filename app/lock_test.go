package app

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/lock"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
)

// A read-only pass stands only when it found everything as wanted and no run held the lock at any moment of it;
// within it every write is refused and every wait is one attempt. On the test bed's Swarm, with a lock of the
// test's own.
func TestReadOnlyPass(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the test bed's Swarm")
	}
	c, err := docker.New(testbed.Require(t, "docker").Docker.Host, nil)
	testutil.Must(t, err)
	defer c.Close()
	name := "zb-readonlytest-" + testutil.RandHex(t, 6)
	t.Cleanup(func() {
		if cur, err := c.InspectConfig(context.Background(), name); err == nil {
			c.RemoveConfig(context.Background(), cur.ID)
		}
	})
	ctx := testutil.Context(t, time.Minute)
	store := func() lock.Store { return lock.NewSwarm(c, name, "test engine") }
	log := slog.New(slog.DiscardHandler)
	other := func() *lock.Lease { // another run, taking the lock
		t.Helper()
		l, err := lock.Acquire(ctx, store(), lock.Options{TTL: 30 * time.Second})
		testutil.Must(t, err)
		return l
	}

	attempts := 0
	stood := readOnlyPass(ctx, log, store(), func(ctx context.Context) string {
		if err := calls.Fence(ctx); !errors.Is(err, lock.ErrNeedsLock) {
			t.Errorf("a write in the pass: fence says %v", err)
		}
		err := wait.For(ctx, wait.Target{What: "x", Deadline: time.Minute}, func(context.Context) error { attempts++; return errors.New("not yet") })
		if err == nil || attempts != 1 {
			t.Errorf("a wait in the pass: %d attempt(s), %v", attempts, err)
		}
		return ""
	})
	if !stood {
		t.Error("a pass that found everything as wanted, the lock free throughout: did not stand")
	}
	if readOnlyPass(ctx, log, store(), func(context.Context) string { return "x would write" }) {
		t.Error("a pass that needs a write stood")
	}
	if readOnlyPass(ctx, log, store(), func(context.Context) string { testutil.Must(t, other().Release(ctx)); return "" }) {
		t.Error("a pass during which another run took and released the lock stood")
	}
	held := other()
	defer held.Release(ctx)
	ran := false
	if readOnlyPass(ctx, log, store(), func(context.Context) string { ran = true; return "" }) || ran {
		t.Errorf("the lock held by another run: the pass stood or ran (%v)", ran)
	}
}
