package lock

import (
	"context"
	"errors"
	"fmt"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
)

// A run that finds nothing to change (up on a converged system) reads the servers and writes nothing: it need
// not take the lock, whose take and release are two writes to the Swarm's Raft store. It must not conclude from
// a state that another run is changing, though. Every writer holds the lock while it writes, and each take,
// renewal and release of the lock changes its config's version; so when the lock is free (or missing) both
// before and after such a read-only pass, at the same version, no run held it at any moment of the pass, and
// what the pass read was no state under change. Peek reads the lock before the pass, Snapshot.Unchanged after
// it, and ReadOnly fences the pass so that a write it would make is refused (ErrNeedsLock): a pass that needs a
// write gives way to a run under the lock.

// ErrNeedsLock is the error of a write refused in a read-only pass.
var ErrNeedsLock = errors.New("a write needs the lock, which this read-only pass does not hold")

// ReadOnly returns ctx with the fence of a read-only pass: every counted write fails with ErrNeedsLock before it
// is sent.
func ReadOnly(ctx context.Context) context.Context {
	return calls.WithFence(ctx, func() error { return ErrNeedsLock })
}

// Peeker is a store whose lock can be read without taking it; *Swarm is one.
type Peeker interface {
	// Peek reads the lock: its config's ID and version, and whether it is free (released, or missing: ID "").
	Peek(ctx context.Context) (id string, version uint64, free bool, err error)
}

// Snapshot is the lock as Peek found it: free.
type Snapshot struct {
	store   Peeker
	id      string
	version uint64
}

// Peek reads the lock of store. ok is false when a read-only pass cannot run: the lock is held (or expired
// unreleased: its run may have died half-way), or store cannot be peeked.
func Peek(ctx context.Context, store Store) (s Snapshot, ok bool, err error) {
	p, can := store.(Peeker)
	if !can {
		return Snapshot{}, false, nil
	}
	id, version, free, err := p.Peek(ctx)
	if err != nil || !free {
		return Snapshot{}, false, err
	}
	return Snapshot{store: p, id: id, version: version}, true, nil
}

// Unchanged reports whether the lock is still as Peek found it: free, at the same version (no run took it
// since).
func (s Snapshot) Unchanged(ctx context.Context) (bool, error) {
	id, version, free, err := s.store.Peek(ctx)
	if err != nil {
		return false, err
	}
	return free && id == s.id && version == s.version, nil
}

// Peek reads the lock's config: missing, or free when released.
func (s *Swarm) Peek(ctx context.Context) (id string, version uint64, free bool, err error) {
	cur, err := s.api.InspectConfig(ctx, s.name)
	switch {
	case docker.IsNotFound(err):
		return "", 0, true, nil
	case err != nil:
		return "", 0, false, fmt.Errorf("%s: %w", s.Where(), s.classify(err))
	}
	return cur.ID, cur.Version, isFree(cur), nil
}
