// Package lock keeps two ziti-bootstrap apply runs from writing at the same time: two bootstrap tasks of a
// Swarm service, or an operator's apply beside the service, on any nodes.
//
// # Where the lock lives
//
// With Docker (ZB_DOCKER=true) the lock is a Swarm config object, created and read through the Docker Engine
// API of a manager: every manager of the Swarm sees the same object, so the lock holds across nodes. Its name
// is Name ("ziti-bootstrap.lock"); its labels say who holds it (run id, host, pid, when) and until when. Swarm
// refuses a second config of the same name, so creating it is the atomic "take the lock"; a config's labels
// can only be changed together with the version that was read, so taking over an expired lock is a
// compare-and-swap: of two runs that both saw it expired, one wins and the other sees the winner. The holder
// renews it every third of the TTL while it runs, and marks it free when done (only if it is still its own).
//
// Without Docker (ZB_DOCKER=false) the lock is a flock(2) on a local file (ZB_LOCK_FILE). That keeps out runs
// on this host only: it is no protection between hosts. The kernel drops the lock when its holder dies, so it
// needs no expiry; the file holds the holder's description for the message of a waiting run.
//
// # A lock left by a dead run
//
// A run killed while holding the Swarm lock (SIGKILL, a lost node) cannot release it. The lock then expires
// one TTL (the holder's, a label) after its last renewal, and the next run takes it over. A run on the same host
// and in the same PID namespace as the dead holder (a re-run in the same container, an operator's re-run on the
// same machine) sees that the holder's process is gone and takes the lock over at once.
//
// Expiry reads no clock of the holder's: a renewal is an update of the config, which the Swarm stamps (UpdatedAt)
// and versions. A lock has expired when the engine's own time is a TTL past that stamp (both are Swarm
// managers' clocks, which Swarm needs in agreement for its certificates), or when the waiting run has watched
// the same version for a TTL on its own monotonic clock. The holder, for its part, counts a TTL less a margin
// from the start of its last successful renewal, on its monotonic clock.
//
// Releasing marks the config free (a label) at the version read: Docker cannot delete a config on condition
// of its version, and a read-then-delete could delete the lock of a run that took it over in between.
//
// # Losing the lock
//
// A holder that cannot renew before its lock expires (the Swarm is unreachable), or finds it taken over, has
// lost it: the context of its Lease is cancelled with a *LostError, so the run stops writing, and apply exits
// with code 5. Writers also check the lease before each write (Lease.Check, which the lease's context carries
// as a calls.Fence): a run whose renewal is late stops before its next write, even before the renewal gives up.
package lock

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
)

// Name is the name of the Swarm config that holds the lock.
const Name = "ziti-bootstrap.lock"

// Store is where a lock lives: a Swarm config (NewSwarm) or a local file (NewFile).
type Store interface {
	// Where names the lock for messages.
	Where() string
	// TryAcquire makes one attempt to take the lock for me. When another run holds it (alive and unexpired),
	// it returns that run's Holder and an error satisfying errors.Is(err, ErrHeld).
	TryAcquire(ctx context.Context, me Holder) (Holder, error)
	// Renew moves me's expiry to me.Expires. An error satisfying errors.Is(err, ErrLost) says the lock is no
	// longer me's; other errors may be transient.
	Renew(ctx context.Context, me Holder) error
	// Release frees the lock if it is still me's (ErrLost otherwise).
	Release(ctx context.Context, me Holder) error
	// Expires reports whether the lock expires unless renewed (a file lock does not: the kernel frees it).
	Expires() bool
}

// ErrHeld says another run holds the lock; ErrLost that this run no longer does.
var (
	ErrHeld = errors.New("held by another run")
	ErrLost = errors.New("lock lost")
)

// Options say how to take and keep the lock.
type Options struct {
	// Wait is how long to wait for another run to release the lock (ZB_LOCK_WAIT); 0 makes one attempt.
	Wait time.Duration
	// TTL is how long the lock lasts unless renewed (ZB_LOCK_TTL); it is renewed every third of it.
	TTL time.Duration
	// Waiting, when set, is told at each attempt that found the lock held, or the store unreachable.
	Waiting func(holder *Holder, waited time.Duration, err error)
	// What names the store's system in "unreachable" errors, e.g. "Docker Engine (apply lock)".
	What string
	// Parent, when set, is the run id of the run that started this one to act under its lock (ZB_LOCK_PARENT:
	// up runs a restore in the backup service's container during an upgrade's rollback and keeps holding the
	// lock meanwhile, so no scheduled backup or converge pass comes between). While that run holds the lock,
	// Acquire returns a borrowed lease at once: it neither renews nor releases, and is lost as soon as the lock
	// is no longer the parent's. When the lock is free or another run's, Acquire takes it as usual.
	Parent string
}

// HeldError says another run holds the lock and did not release it within Options.Wait.
type HeldError struct {
	Where  string
	Holder Holder
	Waited time.Duration // 0: refused at once (ZB_LOCK_WAIT=0)
	Expiry bool          // the lock expires (a Swarm lock); false for a file lock
	Remove string        // how to remove the lock by hand
}

func (e *HeldError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "another run is writing: the ziti-bootstrap lock (%s) is held by %s; ", e.Where, e.Holder)
	if e.Waited > 0 {
		fmt.Fprintf(&b, "waited %s (ZB_LOCK_WAIT) for it: ", e.Waited.Round(100*time.Millisecond))
	} else {
		b.WriteString("refusing to run (ZB_LOCK_WAIT=0): ")
	}
	b.WriteString("re-run when that run is done, or raise ZB_LOCK_WAIT to wait for it")
	if e.Expiry {
		b.WriteString(". A lock left by a run that died expires by itself at its expiry time")
	}
	if e.Remove != "" {
		fmt.Fprintf(&b, "; only if you are sure no apply is running, remove it: %s", e.Remove)
	}
	return b.String()
}

func (e *HeldError) Is(target error) bool { return target == ErrHeld }

// LostError says the lock was lost while the run held it.
type LostError struct {
	Where  string
	Reason string
	Err    error // the last error seen, if any
}

func (e *LostError) Error() string {
	s := fmt.Sprintf("the ziti-bootstrap lock (%s) was lost while this run held it: %s", e.Where, e.Reason)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s + "; writes were stopped: re-run apply"
}

func (e *LostError) Is(target error) bool { return target == ErrLost }
func (e *LostError) Unwrap() error        { return e.Err }

// Acquire takes the lock in store for this process, waiting up to opts.Wait while another run holds it, and
// keeps it renewed until the Lease is released. Errors: a *HeldError when another run kept it; a
// *wait.UnreachableError when the store did not answer before the deadline; ctx's error when ctx ended.
func Acquire(ctx context.Context, store Store, opts Options) (*Lease, error) {
	if opts.TTL <= 0 {
		return nil, fmt.Errorf("lock: TTL must be positive")
	}
	me := Self()
	me.TTL = opts.TTL
	start := time.Now()
	var lastHeld *Holder // the holder the last refused attempt named
	target := wait.Target{What: opts.What, Where: store.Where(), Deadline: opts.Wait, Initial: 250 * time.Millisecond, Max: 2 * time.Second}
	if target.What == "" {
		target.What = "apply lock store"
	}
	var confirmed time.Time // when the successful attempt started: the lock holds at least one TTL from then
	var borrowed Holder     // the parent's hold, when the lock is the parent's
	err := wait.For(ctx, target, func(ctx context.Context) error {
		var held *Holder
		confirmed = time.Now()
		me.Acquired = time.Now().UTC()
		me.Expires = me.Acquired.Add(opts.TTL)
		cctx, cancel := callCtx(ctx, opts.TTL)
		h, err := store.TryAcquire(cctx, me)
		cancel()
		if errors.Is(err, ErrHeld) && opts.Parent != "" && h.Run == opts.Parent {
			borrowed = h
			return nil
		}
		if errors.Is(err, ErrHeld) {
			held, lastHeld = &h, &h
		}
		if err != nil && opts.Waiting != nil {
			opts.Waiting(held, time.Since(start), err)
		}
		return err
	})
	if err != nil {
		// The error wait.For reports is the last attempt's, or the one before it when the deadline cut the last
		// short: the lock counts as held when that attempt found it held.
		var ue *wait.UnreachableError
		if errors.As(err, &ue) && errors.Is(ue.Last, ErrHeld) && lastHeld != nil {
			var waited time.Duration
			if opts.Wait > 0 {
				waited = time.Since(start)
			}
			he := &HeldError{Where: store.Where(), Holder: *lastHeld, Waited: waited, Expiry: store.Expires()}
			if r, ok := store.(interface{ RemoveHint() string }); ok {
				he.Remove = r.RemoveHint()
			}
			return nil, he
		}
		return nil, err
	}
	lctx, cancel := context.WithCancelCause(ctx)
	l := &Lease{store: store, me: me, ttl: opts.TTL, cancel: cancel, stop: make(chan struct{}), done: make(chan struct{}), confirmed: confirmed}
	if borrowed.Run != "" {
		l.me, l.parent = borrowed, me
		if borrowed.TTL > 0 {
			l.ttl = borrowed.TTL
		}
	}
	l.ctx = calls.WithFence(context.WithValue(lctx, leaseKey{}, l), l.Check)
	if store.Expires() {
		go l.renew()
	} else {
		close(l.done)
	}
	return l, nil
}

// callCtx bounds one call to the store: a third of the TTL, at most 10 s.
func callCtx(ctx context.Context, ttl time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, min(ttl/3, 10*time.Second))
}

// Lease is a held lock.
type Lease struct {
	store  Store
	ttl    time.Duration
	ctx    context.Context
	cancel context.CancelCauseFunc
	stop   chan struct{}
	done   chan struct{}

	mu        sync.Mutex
	me        Holder // the holder as the lock shows it: this run, or the parent of a borrowed lease
	parent    Holder // a borrowed lease's own description (Run empty: the lease is this run's own)
	lost      error
	freed     bool      // released or handed over
	confirmed time.Time // start of the last successful take or renewal (monotonic): others wait a TTL from there
	once      sync.Once
}

// Store is where the lock is held.
func (l *Lease) Store() Store { return l.store }

// Context is cancelled, with a *LostError as its cause, when the lock is lost; the run must use it.
func (l *Lease) Context() context.Context { return l.ctx }

// Holder describes the run the lock shows: this one, or the parent whose lock a borrowed lease acts under.
func (l *Lease) Holder() Holder {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.me
}

// Lost returns the *LostError when the lock was lost, else nil.
func (l *Lease) Lost() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost
}

// Check is the fence writers call before each write (calls.Fence does, for every counted mutating call): nil
// while this run holds the lock safely, an error once it has lost it, released or handed it over, or could not
// confirm it for so long that another run may take it over. A lease of a lock that does not expire (a file
// lock) stays safe until released.
func (l *Lease) Check() error {
	l.mu.Lock()
	lost, freed, since := l.lost, l.freed, time.Since(l.confirmed)
	l.mu.Unlock()
	switch {
	case lost != nil:
		return lost
	case freed:
		return &LostError{Where: l.store.Where(), Reason: "this run released it or handed it over, and writes no more"}
	case l.store.Expires() && since > l.safe():
		// the renewal is late: lose the lock now, as the renewal will when it gives up
		l.lose(&LostError{Where: l.store.Where(), Reason: fmt.Sprintf("it could not be renewed before it expired (last renewed %s ago, ZB_LOCK_TTL %s)",
			since.Round(time.Millisecond), l.ttl)})
		return l.Lost()
	}
	return nil
}

// safe is how long after its last confirmation the lock is surely still this run's: the TTL, less a margin
// (a sixth of it) for the renewal call's own time and the Swarm managers' clocks.
func (l *Lease) safe() time.Duration { return l.ttl - l.ttl/6 }

func (l *Lease) lose(err error) {
	l.mu.Lock()
	if l.lost == nil {
		l.lost = err
	}
	l.mu.Unlock()
	l.cancel(err)
}

// renew moves the expiry forward every third of the TTL, and sooner after a failed attempt. It gives up (the
// lock is lost) when the lock is no longer ours, or when it could not be renewed before it expired.
func (l *Lease) renew() {
	defer close(l.done)
	every := l.ttl / 3
	next := every
	for {
		select {
		case <-l.stop:
			return
		case <-l.ctx.Done():
			return
		case <-time.After(next):
		}
		me := l.Holder()
		started := time.Now()
		me.Expires = started.UTC().Add(l.ttl)
		cctx, cancel := callCtx(l.ownCtx(), l.ttl)
		var err error
		if l.borrowed() {
			err = l.confirmParent(cctx)
			me.Expires = l.Holder().Expires
		} else {
			err = l.store.Renew(cctx, me)
		}
		cancel()
		switch {
		case err == nil:
			l.mu.Lock()
			l.me.Expires = me.Expires
			l.confirmed = started
			l.mu.Unlock()
			next = every
		case errors.Is(err, ErrLost):
			reason := "another run took it over"
			if l.borrowed() {
				reason = "the run it acted under no longer holds it"
			}
			l.lose(&LostError{Where: l.store.Where(), Reason: reason, Err: err})
			return
		default:
			// Keep trying while the lock still stands; stop writing before it expires (others may take it
			// over from then on).
			l.mu.Lock()
			since := time.Since(l.confirmed)
			l.mu.Unlock()
			if since >= l.safe() {
				l.lose(&LostError{Where: l.store.Where(), Reason: "it could not be renewed before it expired", Err: err})
				return
			}
			next = min(time.Second, every/3)
		}
	}
}

// Release stops the renewal and frees the lock if it is still ours. It is safe to call more than once; only
// the first call (of Release and HandOver) releases.
func (l *Lease) Release(ctx context.Context) error {
	err := l.free(ctx)
	l.cancel(context.Canceled)
	return err
}

// HandOver frees the lock for a run this one starts and then waits for (up hands it to the bootstrap job, which
// takes it itself), but, unlike Release, leaves the lease's context alive: the run goes on, no longer holding
// the lock, and so no longer writes what the lock protects.
func (l *Lease) HandOver(ctx context.Context) error {
	return l.free(ctx)
}

func (l *Lease) free(ctx context.Context) error {
	var err error
	l.once.Do(func() {
		close(l.stop)
		<-l.done
		l.mu.Lock()
		l.freed = true
		l.mu.Unlock()
		if l.Lost() == nil && !l.borrowed() { // a borrowed lock stays the parent's
			err = l.store.Release(calls.WithFence(ctx, nil), l.Holder())
		}
	})
	return err
}

// borrowed reports whether the lease acts under its parent's lock (Options.Parent).
func (l *Lease) borrowed() bool { return l.parent.Run != "" }

// confirmParent checks that the lock is still the parent's: ErrLost when it is free (then taken by this attempt,
// and released at once) or another run's.
func (l *Lease) confirmParent(ctx context.Context) error {
	parent := l.Holder()
	h, err := l.store.TryAcquire(ctx, l.parent)
	switch {
	case errors.Is(err, ErrHeld) && h.Run == parent.Run:
		l.mu.Lock()
		l.me.Expires = h.Expires
		l.mu.Unlock()
		return nil
	case errors.Is(err, ErrHeld):
		return fmt.Errorf("%w: the lock of run %s, which this one acts under, is now held by %s", ErrLost, parent.Run, h)
	case err == nil: // free: the parent released it or lost it; do not keep what this attempt took
		_ = l.store.Release(ctx, l.parent)
		return fmt.Errorf("%w: run %s, which this one acts under, no longer holds the lock", ErrLost, parent.Run)
	}
	return err
}

// ownCtx is the context of the lease's own calls (renewals): never cancelled with the run, and not fenced.
func (l *Lease) ownCtx() context.Context {
	return calls.WithFence(context.WithoutCancel(l.ctx), nil)
}

type leaseKey struct{}

// FromContext returns the lease whose Context ctx is (or derives from), or nil.
func FromContext(ctx context.Context) *Lease {
	l, _ := ctx.Value(leaseKey{}).(*Lease)
	return l
}

// HandOver hands over the lock of the lease in ctx (see Lease.HandOver); without one it does nothing.
func HandOver(ctx context.Context) error {
	if l := FromContext(ctx); l != nil {
		if err := l.HandOver(ctx); err != nil {
			return fmt.Errorf("hand over %s: %w", l.store.Where(), err)
		}
	}
	return nil
}
