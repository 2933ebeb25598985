package lock

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/errdefs"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/invalid"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
)

// The suite every store passes: take, refuse, wait, time out, release.

type storeFactory struct {
	name string
	new  func(t *testing.T) func() Store // returns a maker of stores on one and the same lock
}

func stores(t *testing.T) []storeFactory {
	return []storeFactory{
		{"swarm", func(t *testing.T) func() Store {
			c, name := swarmLock(t)
			return func() Store { return NewSwarm(c, name, "test engine") }
		}},
		{"file", func(t *testing.T) func() Store {
			p := filepath.Join(t.TempDir(), "zb.lock")
			return func() Store { return NewFile(p) }
		}},
	}
}

// swarmLock returns an uncounted client of the test bed's engine and a lock name of this test's own, removed
// when the test ends.
func swarmLock(t *testing.T) (*docker.Client, string) {
	t.Helper()
	in := testbed.Require(t, "docker")
	c, err := docker.New(in.Docker.Host, nil)
	testutil.Must(t, err)
	name := "zb-locktest-" + testutil.RandHex(t, 6)
	t.Cleanup(func() {
		if cur, err := c.InspectConfig(context.Background(), name); err == nil {
			c.RemoveConfig(context.Background(), cur.ID)
		}
		c.Close()
	})
	return c, name
}

func TestSuite(t *testing.T) {
	for _, f := range stores(t) {
		t.Run(f.name, func(t *testing.T) {
			t.Run("RefuseAtOnceNamingTheHolder", func(t *testing.T) {
				mk := f.new(t)
				ctx := testutil.Context(t, time.Minute)
				a := mustAcquire(t, ctx, mk(), Options{TTL: 30 * time.Second})
				defer a.Release(ctx)
				t0 := time.Now()
				_, err := Acquire(ctx, mk(), Options{TTL: 30 * time.Second})
				var he *HeldError
				if !errors.As(err, &he) || !errors.Is(err, ErrHeld) {
					t.Fatalf("second acquire: %v, want a HeldError", err)
				}
				if time.Since(t0) > 5*time.Second {
					t.Errorf("refusing took %s", time.Since(t0))
				}
				me := a.Holder()
				for _, want := range []string{me.Run, "pid " + strconv.Itoa(os.Getpid()), me.Host, "ZB_LOCK_WAIT=0"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("message lacks %q: %v", want, err)
					}
				}
			})
			t.Run("WaitForRelease", func(t *testing.T) {
				mk := f.new(t)
				ctx := testutil.Context(t, time.Minute)
				a := mustAcquire(t, ctx, mk(), Options{TTL: 30 * time.Second})
				time.AfterFunc(time.Second, func() { a.Release(context.Background()) })
				t0 := time.Now()
				b := mustAcquire(t, ctx, mk(), Options{TTL: 30 * time.Second, Wait: 20 * time.Second})
				defer b.Release(ctx)
				if d := time.Since(t0); d < 900*time.Millisecond || d > 10*time.Second {
					t.Errorf("took the lock after %s; want soon after the release at 1s", d)
				}
			})
			t.Run("WaitTimesOut", func(t *testing.T) {
				mk := f.new(t)
				ctx := testutil.Context(t, time.Minute)
				a := mustAcquire(t, ctx, mk(), Options{TTL: 30 * time.Second})
				defer a.Release(ctx)
				_, err := Acquire(ctx, mk(), Options{TTL: 30 * time.Second, Wait: 1500 * time.Millisecond})
				var he *HeldError
				if !errors.As(err, &he) || he.Waited < time.Second || !strings.Contains(err.Error(), "waited") {
					t.Fatalf("acquire: %v; want a HeldError after waiting", err)
				}
			})
			t.Run("HandOverFreesTheLockAndKeepsTheRunGoing", func(t *testing.T) {
				mk := f.new(t)
				ctx := testutil.Context(t, time.Minute)
				a := mustAcquire(t, ctx, mk(), Options{TTL: 30 * time.Second})
				run := a.Context()
				if FromContext(run) != a {
					t.Fatal("the lease is not found from its own context")
				}
				testutil.Must(t, HandOver(run))
				// the run that was started takes the lock at once, and the handing run's context lives on
				b := mustAcquire(t, ctx, mk(), Options{TTL: 30 * time.Second})
				if err := run.Err(); err != nil {
					t.Errorf("context of the handing run ended: %v", err)
				}
				// the handing run's final Release neither frees the new holder's lock nor fails
				testutil.Must(t, a.Release(ctx))
				if _, err := Acquire(ctx, mk(), Options{TTL: 30 * time.Second}); !errors.Is(err, ErrHeld) {
					t.Errorf("after the handing run's release, a third acquire: %v; want ErrHeld (the new holder keeps it)", err)
				}
				testutil.Must(t, b.Release(ctx))
				testutil.Must(t, HandOver(context.Background())) // no lease: nothing to do
			})
			t.Run("ReleaseTwiceIsHarmless", func(t *testing.T) {
				mk := f.new(t)
				ctx := testutil.Context(t, time.Minute)
				a := mustAcquire(t, ctx, mk(), Options{TTL: 30 * time.Second})
				testutil.Must(t, a.Release(ctx))
				testutil.Must(t, a.Release(ctx))
				b := mustAcquire(t, ctx, mk(), Options{TTL: 30 * time.Second})
				testutil.Must(t, b.Release(ctx))
			})
		})
	}
}

func mustAcquire(t *testing.T, ctx context.Context, s Store, o Options) *Lease {
	t.Helper()
	l, err := Acquire(ctx, s, o)
	if err != nil {
		t.Fatalf("acquire %s: %v", s.Where(), err)
	}
	return l
}

// plant creates the lock config as held by h, as another run would have.
func plant(t *testing.T, c *docker.Client, name string, h Holder) {
	t.Helper()
	_, err := c.CreateConfig(context.Background(), name, []byte(lockData), labels(h))
	testutil.Must(t, err)
}

func TestSwarmExpiredLockIsTakenOver(t *testing.T) {
	c, name := swarmLock(t)
	ctx := testutil.Context(t, time.Minute)
	now := time.Now()
	other := Holder{Run: "0123456789abcdef", Host: "other-node", PID: 1, Acquired: now.Add(-time.Minute), Expires: now.Add(2 * time.Second),
		TTL: 2 * time.Second, Kernel: "another-kernel", PIDNS: "pid:[1]", PIDStart: "1"}
	plant(t, c, name, other)
	// Held until it expires: refused now...
	_, err := Acquire(ctx, NewSwarm(c, name, "e"), Options{TTL: 10 * time.Second})
	if !errors.Is(err, ErrHeld) || !strings.Contains(err.Error(), "other-node") {
		t.Fatalf("acquire before expiry: %v", err)
	}
	// ... and taken over once expired.
	l := mustAcquire(t, ctx, NewSwarm(c, name, "e"), Options{TTL: 10 * time.Second, Wait: 20 * time.Second})
	defer l.Release(ctx)
	if time.Now().Before(other.Expires) {
		t.Fatalf("took the lock before it expired")
	}
	cur, err := c.InspectConfig(ctx, name)
	testutil.Must(t, err)
	if got := holderOf(cur); got.Run != l.Holder().Run {
		t.Fatalf("config names %s, want this run %s", got, l.Holder())
	}
}

// A holder on this host and PID namespace whose process is gone is known to be dead: no need to wait for expiry.
func TestSwarmLockOfDeadLocalProcessIsTakenOverAtOnce(t *testing.T) {
	c, name := swarmLock(t)
	ctx := testutil.Context(t, time.Minute)
	cmd := exec.Command("true")
	testutil.Must(t, cmd.Start())
	pid := cmd.Process.Pid
	start := processStart(strconv.Itoa(pid))
	testutil.Must(t, cmd.Wait())
	if start == "" {
		start = "1" // exited before it could be read: any start time will do, the PID is free
	}
	me := Self()
	dead := Holder{Run: "deaddeaddeaddead", Host: me.Host, PID: pid, Acquired: time.Now(), Expires: time.Now().Add(time.Hour),
		TTL: time.Hour, Kernel: me.Kernel, PIDNS: me.PIDNS, PIDStart: start}
	if !dead.Dead() {
		t.Skipf("pid %d was reused already", pid)
	}
	plant(t, c, name, dead)
	t0 := time.Now()
	l := mustAcquire(t, ctx, NewSwarm(c, name, "e"), Options{TTL: 10 * time.Second})
	defer l.Release(ctx)
	if d := time.Since(t0); d > 5*time.Second {
		t.Fatalf("took %s to take over a dead holder's lock", d)
	}
	// A live local holder (this process) is not dead.
	if alive := (Holder{PID: os.Getpid(), Kernel: me.Kernel, PIDNS: me.PIDNS, PIDStart: me.PIDStart}); alive.Dead() {
		t.Fatal("this process looks dead")
	}
}

// Runs that all see an expired lock race to take it over: the compare-and-swap lets exactly one win.
func TestSwarmTakeoverRaceHasOneWinner(t *testing.T) {
	c, name := swarmLock(t)
	ctx := testutil.Context(t, time.Minute)
	plant(t, c, name, Holder{Run: "expiredexpired00", Host: "gone", PID: 7, Expires: time.Now().Add(-time.Second), TTL: time.Second})
	// expired by the Swarm's clock: a TTL after the config's creation as the engine stamped it
	cur, err := c.InspectConfig(ctx, name)
	testutil.Must(t, err)
	testutil.Must(t, wait.For(ctx, wait.Target{What: "expiry", Where: name, Deadline: 30 * time.Second}, func(ctx context.Context) error {
		now, err := c.EngineTime(ctx)
		if err == nil && !now.After(cur.UpdatedAt.Add(time.Second)) {
			err = fmt.Errorf("engine time %s, updated %s", now, cur.UpdatedAt)
		}
		return err
	}))
	const n = 8
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []*Lease
		held    int
	)
	startGun := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-startGun
			l, err := Acquire(ctx, NewSwarm(c, name, "e"), Options{TTL: 30 * time.Second})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				winners = append(winners, l)
			case errors.Is(err, ErrHeld):
				held++
			default:
				t.Errorf("acquire: %v", err)
			}
		}()
	}
	close(startGun)
	wg.Wait()
	if len(winners) != 1 || held != n-1 {
		t.Fatalf("%d winners, %d refused; want 1 and %d", len(winners), held, n-1)
	}
	cur, err = c.InspectConfig(ctx, name)
	testutil.Must(t, err)
	if holderOf(cur).Run != winners[0].Holder().Run {
		t.Fatalf("config names %s, winner is %s", holderOf(cur), winners[0].Holder())
	}
	testutil.Must(t, winners[0].Release(ctx))
}

func TestSwarmRenewalKeepsTheLockPastItsTTL(t *testing.T) {
	c, name := swarmLock(t)
	ctx := testutil.Context(t, time.Minute)
	l := mustAcquire(t, ctx, NewSwarm(c, name, "e"), Options{TTL: 3 * time.Second})
	first := l.Holder().Expires
	time.Sleep(5 * time.Second)
	if _, err := Acquire(ctx, NewSwarm(c, name, "e"), Options{TTL: 3 * time.Second}); !errors.Is(err, ErrHeld) {
		t.Fatalf("after 5s with a 3s TTL: %v, want held (renewed)", err)
	}
	if !l.Holder().Expires.After(first) || l.Lost() != nil || l.Context().Err() != nil {
		t.Fatalf("not renewed: expires %s (first %s), lost %v", l.Holder().Expires, first, l.Lost())
	}
	testutil.Must(t, l.Release(ctx))
	if cur, err := c.InspectConfig(ctx, name); err != nil || !IsFree(cur.Labels) {
		t.Fatalf("released lock: %v %v; want it marked free", cur.Labels, err)
	}
}

// A holder whose lock was taken over (its clock lagged, or someone relabelled it) stops: its context ends.
func TestSwarmLockTakenOverIsLost(t *testing.T) {
	c, name := swarmLock(t)
	ctx := testutil.Context(t, time.Minute)
	l := mustAcquire(t, ctx, NewSwarm(c, name, "e"), Options{TTL: 3 * time.Second})
	cur, err := c.InspectConfig(ctx, name)
	testutil.Must(t, err)
	thief := Holder{Run: "thiefthiefthief0", Host: "elsewhere", PID: 9, Expires: time.Now().Add(time.Minute), TTL: time.Minute}
	testutil.Must(t, c.UpdateConfigLabels(ctx, cur.ID, name, cur.Version, labels(thief)))
	select {
	case <-l.Context().Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the run did not notice it lost the lock")
	}
	var le *LostError
	if !errors.As(context.Cause(l.Context()), &le) || !strings.Contains(le.Error(), "thiefthiefthief0") {
		t.Fatalf("cause %v, want a LostError naming the new holder", context.Cause(l.Context()))
	}
	if err := l.Release(ctx); err != nil {
		t.Fatalf("release of a lost lock: %v", err)
	}
	if cur, err := c.InspectConfig(ctx, name); err != nil || holderOf(cur).Run != thief.Run {
		t.Fatalf("release removed or changed the new holder's lock: %v %v", cur.Labels, err)
	}
}

func TestSwarmUnreachableEngineNamesIt(t *testing.T) {
	dead := "unix://" + filepath.Join(t.TempDir(), "no.sock")
	c, err := docker.New(dead, nil)
	testutil.Must(t, err)
	_, err = Acquire(testutil.Context(t, time.Minute), NewSwarm(c, Name, dead), Options{TTL: 10 * time.Second, Wait: time.Second, What: "Docker Engine (apply lock)"})
	var ue *wait.UnreachableError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "Docker Engine (apply lock)") || !strings.Contains(err.Error(), dead) {
		t.Fatalf("acquire: %v; want an UnreachableError naming the engine", err)
	}
}

// The kernel frees a file lock when its holder dies, so a SIGKILLed holder does not block the next run.
func TestFileLockOfKilledProcessIsFreeAtOnce(t *testing.T) {
	if os.Getenv("ZB_LOCK_HELPER") != "" {
		return
	}
	p := filepath.Join(t.TempDir(), "zb.lock")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldFileLock$")
	cmd.Env = append(os.Environ(), "ZB_LOCK_HELPER="+p)
	out, err := cmd.StdoutPipe()
	testutil.Must(t, err)
	testutil.Must(t, cmd.Start())
	buf := make([]byte, 64)
	n, _ := out.Read(buf) // "held\n" once the helper holds the lock
	if !strings.Contains(string(buf[:n]), "held") {
		t.Fatalf("helper: %q", buf[:n])
	}
	ctx := testutil.Context(t, time.Minute)
	_, err = Acquire(ctx, NewFile(p), Options{TTL: 10 * time.Second})
	if !errors.Is(err, ErrHeld) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", cmd.Process.Pid)) {
		t.Fatalf("while the helper holds it: %v; want held naming pid %d", err, cmd.Process.Pid)
	}
	testutil.Must(t, cmd.Process.Kill())
	cmd.Wait()
	l := mustAcquire(t, ctx, NewFile(p), Options{TTL: 10 * time.Second})
	testutil.Must(t, l.Release(ctx))
}

func TestHelperHoldFileLock(t *testing.T) {
	p := os.Getenv("ZB_LOCK_HELPER")
	if p == "" {
		t.Skip("helper process of TestFileLockOfKilledProcessIsFreeAtOnce")
	}
	if _, err := Acquire(context.Background(), NewFile(p), Options{TTL: 10 * time.Second}); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("held")
	time.Sleep(time.Minute)
	os.Exit(0)
}

func TestHolderParsesProcStat(t *testing.T) {
	me := Self()
	if me.PIDStart == "" || me.Kernel == "" || me.PIDNS == "" {
		t.Fatalf("Self() = %+v; want kernel, pid namespace and start time on Linux", me)
	}
	if me.Dead() {
		t.Fatal("this process looks dead")
	}
}

// notManager answers every call as an engine that is not a Swarm manager does (503).
type notManager struct{}

func (notManager) CreateConfig(context.Context, string, []byte, map[string]string) (string, error) {
	return "", errdefs.Unavailable(errors.New("This node is not a swarm manager."))
}
func (notManager) InspectConfig(context.Context, string) (docker.LabelledConfig, error) {
	return docker.LabelledConfig{}, errors.New("unused")
}
func (notManager) UpdateConfigLabels(context.Context, string, string, uint64, map[string]string) error {
	return errors.New("unused")
}
func (notManager) RemoveConfig(context.Context, string) error { return errors.New("unused") }

// An engine that is not a Swarm manager fails at once (waiting cannot cure it), saying what to do.
func TestSwarmNotAManagerFailsAtOnce(t *testing.T) {
	t0 := time.Now()
	_, err := Acquire(context.Background(), NewSwarm(notManager{}, Name, "tcp://worker:2375"), Options{TTL: 10 * time.Second, Wait: time.Minute})
	if !errors.Is(err, docker.ErrNotManager) || !strings.Contains(err.Error(), "ZB_DOCKER=false") || time.Since(t0) > 5*time.Second {
		t.Fatalf("after %s: %v; want ErrNotManager at once", time.Since(t0), err)
	}
}

// A lock file that cannot be opened is a configuration problem naming ZB_LOCK_FILE, found at once.
func TestFileLockUnwritableIsInvalidConfig(t *testing.T) {
	t0 := time.Now()
	_, err := Acquire(context.Background(), NewFile(filepath.Join(t.TempDir(), "no", "such", "dir", "zb.lock")), Options{TTL: 10 * time.Second, Wait: time.Minute})
	if !invalid.Is(err) || !strings.Contains(err.Error(), "ZB_LOCK_FILE") || time.Since(t0) > 5*time.Second {
		t.Fatalf("after %s: %v; want an invalid configuration naming ZB_LOCK_FILE at once", time.Since(t0), err)
	}
}

func (notManager) EngineTime(context.Context) (time.Time, error) {
	return time.Time{}, errors.New("unused")
}

// Another run takes the lock over between the holder's read and its release (the holder's lease had run out):
// the release must not free, or delete, the new holder's lock.
func TestSwarmReleaseDoesNotFreeTheNextHoldersLock(t *testing.T) {
	e := newMemEngine()
	ctx := testutil.Context(t, time.Minute)
	store := NewSwarm(e, Name, "fake engine")
	a, err := store.TryAcquire(ctx, Holder{Run: "firstfirstfirst0", TTL: time.Minute})
	testutil.Must(t, err)
	thief := Holder{Run: "nextnextnextnext", Host: "elsewhere", PID: 9, TTL: time.Minute}
	e.afterInspect = func() { // a's lease expired and the next run took it over, right after a's read
		cur := *e.configs[Name]
		testutil.Must(t, e.UpdateConfigLabels(ctx, cur.ID, Name, cur.Version, labels(thief)))
	}
	err = store.Release(ctx, a)
	if !errors.Is(err, ErrLost) {
		t.Errorf("release after the takeover: %v; want ErrLost", err)
	}
	cur, err := e.InspectConfig(ctx, Name)
	if err != nil || IsFree(cur.Labels) || holderOf(cur).Run != thief.Run {
		t.Fatalf("after the old holder's release the lock is %v (labels %v); want it still held by %s", err, cur.Labels, thief.Run)
	}
	if _, err := NewSwarm(e, Name, "e").TryAcquire(ctx, Self()); !errors.Is(err, ErrHeld) {
		t.Fatalf("a third run: %v; want ErrHeld (the new holder keeps it)", err)
	}
}

// A released lock is free: the next run takes it at once, by compare-and-swap on the free config.
func TestSwarmReleasedLockIsTakenAtOnce(t *testing.T) {
	e := newMemEngine()
	ctx := testutil.Context(t, time.Minute)
	a := mustAcquire(t, ctx, NewSwarm(e, Name, "e"), Options{TTL: time.Minute})
	testutil.Must(t, a.Release(ctx))
	if cur, err := e.InspectConfig(ctx, Name); err != nil || !IsFree(cur.Labels) {
		t.Fatalf("released lock: %v %v; want a free config", cur.Labels, err)
	}
	b := mustAcquire(t, ctx, NewSwarm(e, Name, "e"), Options{TTL: time.Minute})
	testutil.Must(t, b.Release(ctx))
}

// A holder whose clock is far behind the Swarm's writes an "expires" label in the past; one whose clock is
// far ahead, one in the future. Neither matters: a lock renewed (updated) within its TTL by the Swarm's own
// stamps is held, and one not updated for a TTL is expired.
func TestSwarmExpiryReadsTheSwarmsClockNotTheHolders(t *testing.T) {
	ctx := testutil.Context(t, time.Minute)
	skewed := func(skew time.Duration) Holder {
		now := time.Now().Add(skew)
		return Holder{Run: "skewedskewedskew", Host: "other-node", PID: 1, Acquired: now, Expires: now.Add(time.Minute), TTL: time.Minute}
	}
	// behind by an hour, renewed a second ago by the Swarm's clock: held
	e := newMemEngine()
	_, err := e.CreateConfig(ctx, Name, nil, labels(skewed(-time.Hour)))
	testutil.Must(t, err)
	e.advance(time.Second)
	if _, err := NewSwarm(e, Name, "e").TryAcquire(ctx, Self()); !errors.Is(err, ErrHeld) {
		t.Errorf("holder's clock an hour behind, renewed 1s ago: %v; want ErrHeld", err)
	}
	// ahead by an hour, not renewed for two minutes by the Swarm's clock (TTL one minute): expired
	e = newMemEngine()
	_, err = e.CreateConfig(ctx, Name, nil, labels(skewed(time.Hour)))
	testutil.Must(t, err)
	e.advance(2 * time.Minute)
	me := Self()
	if h, err := NewSwarm(e, Name, "e").TryAcquire(ctx, me); err != nil || h.Run != me.Run {
		t.Errorf("holder's clock an hour ahead, silent for 2m with a 1m TTL: %v %v; want it taken over", h, err)
	}
}

// Even with the managers' clock standing still, a waiter that has watched the same version for a TTL on its own
// monotonic clock takes the lock over.
func TestSwarmUnchangedVersionExpiresByTheWaitersWatch(t *testing.T) {
	e := newMemEngine()
	ctx := testutil.Context(t, time.Minute)
	_, err := e.CreateConfig(ctx, Name, nil, labels(Holder{Run: "stillstillstill0", Host: "gone", PID: 1, TTL: time.Second}))
	testutil.Must(t, err)
	t0 := time.Now()
	l := mustAcquire(t, ctx, NewSwarm(e, Name, "e"), Options{TTL: 10 * time.Second, Wait: 30 * time.Second})
	defer l.Release(ctx)
	if d := time.Since(t0); d < time.Second {
		t.Fatalf("took the lock after %s, before a TTL (1s) of watching", d)
	}
}

// The fence: a lease whose renewal is late fails its Check (and so every counted write) before the renewal
// gives up; a released or handed-over lease fails it too.
func TestLeaseFenceStopsWritesOfALateOrFreedLease(t *testing.T) {
	e := newMemEngine()
	ctx := testutil.Context(t, time.Minute)
	l := mustAcquire(t, ctx, NewSwarm(e, Name, "e"), Options{TTL: time.Hour})
	if err := calls.Fence(l.Context()); err != nil {
		t.Fatalf("fresh lease: %v", err)
	}
	l.mu.Lock()
	l.confirmed = time.Now().Add(-l.safe() - time.Second) // the last renewal was that long ago
	l.mu.Unlock()
	err := calls.Fence(l.Context())
	if !errors.Is(err, ErrLost) || !strings.Contains(err.Error(), "could not be renewed before it expired") || l.Lost() == nil {
		t.Fatalf("late lease: %v; want a LostError", err)
	}
	// a write through a counted transport is not sent
	sent := false
	rt := calls.Transport(calls.New(), "test", roundTripFunc(func(*http.Request) (*http.Response, error) { sent = true; return nil, errors.New("sent") }))
	req, _ := http.NewRequestWithContext(l.Context(), http.MethodPost, "http://127.0.0.1:1/x", nil)
	if _, err := rt.RoundTrip(req); !errors.Is(err, ErrLost) || sent {
		t.Fatalf("write under a late lease: sent %v, %v; want ErrLost and nothing sent", sent, err)
	}
	testutil.Must(t, l.Release(ctx))
	h := mustAcquire(t, ctx, NewSwarm(newMemEngine(), Name, "e"), Options{TTL: time.Hour})
	testutil.Must(t, h.HandOver(ctx))
	if err := calls.Fence(h.Context()); !errors.Is(err, ErrLost) || h.Context().Err() != nil {
		t.Fatalf("handed over: fence %v, context %v; want the fence closed and the context alive", err, h.Context().Err())
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A run started by the holder to act under its lock (Options.Parent: up's restore during an upgrade's rollback)
// gets it at once while the parent holds it, frees nothing when done, and loses it when the parent lets go; a
// run naming a parent that does not hold the lock waits like any other.
func TestSwarmChildActsUnderItsParentsLock(t *testing.T) {
	c, name := swarmLock(t)
	ctx := testutil.Context(t, time.Minute)
	parent := mustAcquire(t, ctx, NewSwarm(c, name, "e"), Options{TTL: 3 * time.Second})
	run := parent.Holder().Run
	if _, err := Acquire(ctx, NewSwarm(c, name, "e"), Options{TTL: 3 * time.Second, Parent: "notmyparent00000"}); !errors.Is(err, ErrHeld) {
		t.Fatalf("a run naming another parent: %v, want held", err)
	}
	child := mustAcquire(t, ctx, NewSwarm(c, name, "e"), Options{TTL: 3 * time.Second, Parent: run})
	if child.Holder().Run != run || child.Check() != nil {
		t.Fatalf("the child's lease: holder %s, check %v; want its parent's lock, usable", child.Holder(), child.Check())
	}
	time.Sleep(4 * time.Second) // past a TTL: the parent renews, the child confirms
	if err := child.Check(); err != nil {
		t.Fatalf("the child's lease after a TTL under a live parent: %v", err)
	}
	testutil.Must(t, child.Release(ctx))
	if cur, err := c.InspectConfig(ctx, name); err != nil || holderOf(cur).Run != run || IsFree(cur.Labels) {
		t.Fatalf("the child's release changed its parent's lock: %v %v", cur.Labels, err)
	}
	if parent.Check() != nil {
		t.Fatalf("the parent after its child's release: %v", parent.Check())
	}

	child = mustAcquire(t, ctx, NewSwarm(c, name, "e"), Options{TTL: 3 * time.Second, Parent: run})
	testutil.Must(t, parent.Release(ctx))
	select {
	case <-child.Context().Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the child did not notice its parent let the lock go")
	}
	if err := child.Check(); !errors.Is(err, ErrLost) || !strings.Contains(err.Error(), run) {
		t.Fatalf("the child's fence after its parent let go: %v, want lost naming run %s", err, run)
	}
	if cur, err := c.InspectConfig(ctx, name); err != nil || !IsFree(cur.Labels) {
		t.Fatalf("the lock after the parent's release and the child's check: %v %v; want it free", cur.Labels, err)
	}
}

// slowHeldStore refuses every attempt, naming its holder; attempts after the first answer only when their
// context ends, as a loaded engine does when the wait's deadline cuts the last attempt short.
type slowHeldStore struct {
	holder   Holder
	attempts int
}

func (s *slowHeldStore) Where() string { return "slow store" }
func (s *slowHeldStore) TryAcquire(ctx context.Context, _ Holder) (Holder, error) {
	s.attempts++
	if s.attempts > 1 {
		<-ctx.Done()
		return Holder{}, ctx.Err()
	}
	return s.holder, fmt.Errorf("config zb-lock: %w", ErrHeld)
}
func (s *slowHeldStore) Renew(context.Context, Holder) error   { return nil }
func (s *slowHeldStore) Release(context.Context, Holder) error { return nil }
func (s *slowHeldStore) Expires() bool                         { return true }

// A wait whose last attempt the deadline cut short still reports the holder the attempt before it found (CI saw
// "unreachable ... last error: held by another run" here, on a loaded machine).
func TestWaitCutShortStillNamesTheHolder(t *testing.T) {
	s := &slowHeldStore{holder: Holder{Run: "run-other", PID: 42, Host: "elsewhere"}}
	_, err := Acquire(testutil.Context(t, time.Minute), s, Options{TTL: 30 * time.Second, Wait: 600 * time.Millisecond})
	var he *HeldError
	if !errors.As(err, &he) || he.Holder.Run != "run-other" || he.Waited < 500*time.Millisecond {
		t.Fatalf("acquire: %v; want a HeldError naming run-other after waiting", err)
	}
	if s.attempts < 2 {
		t.Fatalf("%d attempts; the test needs the deadline to cut a second one short", s.attempts)
	}
}
