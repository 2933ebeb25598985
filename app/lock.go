package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/lock"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/progress"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
)

// WithLock runs fn while holding the tool's lock, the "apply lock" (see the apply command's help), as lcfg says;
// fn must use the context it is given, which ends when the lock is lost. apply, up, down, backup and restore run
// under it, so that none of them writes, or copies, a state another is changing. Errors carry their exit code
// (*exitcode.Error: Locked, Unreachable, Internal) or are invalid-configuration errors.
//
// Within fn, WithLock runs its own fn at once under the lease fn holds (up's upgrade holds the lock across its
// rollback, whose deploy takes it again).
func WithLock(ctx context.Context, log *slog.Logger, cfg *config.Config, lcfg config.Lock, fn func(ctx context.Context) error) error {
	if l := lock.FromContext(ctx); l != nil && l.Check() == nil {
		if _, swarm := l.Store().(*lock.Swarm); swarm == cfg.Docker.Enabled {
			return fn(ctx)
		}
	}
	lease, closeStore, err := takeLock(ctx, log, cfg, lcfg)
	if err != nil {
		return err
	}
	defer closeStore()
	runErr := fn(lease.Context())
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if err := lease.Release(rctx); err != nil && !errors.Is(err, lock.ErrLost) {
		log.Warn("could not release the lock; it expires by itself", "lock", lcfg.String(), "error", err.Error())
	}
	if lost := lease.Lost(); lost != nil {
		return &exitcode.Error{Code: exitcode.Locked, Err: lost}
	}
	return runErr
}

// lockStore is the store of the tool's lock: in the Swarm when Docker is used, else the local lock file; what
// names its system for messages, and closeStore releases its connections.
func lockStore(cfg *config.Config, lcfg config.Lock) (store lock.Store, what string, closeStore func(), err error) {
	if !cfg.Docker.Enabled {
		return lock.NewFile(lcfg.File), "ziti-bootstrap lock file", func() {}, nil
	}
	c, err := docker.New(cfg.Docker.Host, nil) // lock calls are not configuration: not counted
	if err != nil {
		return nil, "", nil, &config.Error{Problems: []config.Problem{{Var: "DOCKER_HOST", Msg: err.Error()}}}
	}
	return lock.NewSwarm(c, lock.Name, cfg.Docker.Host), "Docker Engine (ziti-bootstrap lock)", func() { c.Close() }, nil
}

// ReadOnlyPass runs fn as a read-only pass (see internal/lock's Peek): without the lock, when it is free, with
// every write fn would make refused (lock.ErrNeedsLock) and every wait cut at its first attempt
// (wait.WithoutWaiting). It reports whether the pass stands: fn found everything as wanted (it returns ""), and
// the lock was free, and unchanged, from before fn to after it, so that fn read no state another run was
// changing. When it does not stand (the lock held or taken meanwhile, fn saying why not, an error reading the
// lock), it logs why and the caller runs again under the lock (WithLock). Within a run that holds the lock
// already, it runs nothing.
func ReadOnlyPass(ctx context.Context, log *slog.Logger, cfg *config.Config, lcfg config.Lock, fn func(ctx context.Context) (whyNot string)) bool {
	if lock.FromContext(ctx) != nil {
		return false
	}
	store, _, closeStore, err := lockStore(cfg, lcfg)
	if err != nil {
		return false
	}
	defer closeStore()
	return readOnlyPass(ctx, log, store, fn)
}

// readOnlyPass is ReadOnlyPass with the lock in store. It logs why a pass did not stand.
func readOnlyPass(ctx context.Context, log *slog.Logger, store lock.Store, fn func(ctx context.Context) (whyNot string)) bool {
	snap, free, err := lock.Peek(ctx, store)
	if err != nil || !free {
		log.Info("read-only pass: not run, the lock is not free", "lock", store.Where())
		return false
	}
	if why := fn(wait.WithoutWaiting(lock.ReadOnly(ctx))); why != "" {
		log.Info("read-only pass: "+why+": running under the lock", "lock", store.Where())
		return false
	}
	unchanged, err := snap.Unchanged(ctx)
	if err != nil || !unchanged {
		log.Info("read-only pass: another run took the lock meanwhile: running again under the lock", "lock", store.Where())
		return false
	}
	return true
}

// takeLock takes the tool's lock (the apply lock, which apply, up, down, backup and restore share): in the Swarm
// when Docker is used, else in the local lock file. closeStore releases the store's connections once the lease
// is released.
func takeLock(ctx context.Context, log *slog.Logger, cfg *config.Config, lcfg config.Lock) (lease *lock.Lease, closeStore func(), err error) {
	store, what, closeStore, err := lockStore(cfg, lcfg)
	if err != nil {
		return nil, nil, err
	}
	lastLog := time.Time{}
	lease, err = lock.Acquire(ctx, store, lock.Options{Wait: lcfg.Wait, TTL: lcfg.TTL, What: what, Parent: lcfg.Parent,
		Waiting: func(h *lock.Holder, waited time.Duration, err error) {
			if h != nil && lcfg.Wait > 0 {
				progress.Report(ctx, progress.Event{Stage: progress.Lock, Detail: fmt.Sprintf("held by %s (%s of %s)", h, waited.Round(time.Second), lcfg.Wait)})
			}
			if lcfg.Wait == 0 || time.Since(lastLog) < 5*time.Second {
				return
			}
			lastLog = time.Now()
			if h != nil {
				log.Info("waiting for the lock", "lock", store.Where(), "holder", h.String(), "waited", waited.Round(time.Second).String(), "maxWait", lcfg.Wait.String())
			} else {
				log.Info("waiting for the lock", "lock", store.Where(), "waited", waited.Round(time.Second).String(), "lastError", err.Error())
			}
		}})
	if err != nil {
		closeStore()
		var held *lock.HeldError
		switch {
		case errors.As(err, &held):
			err = &exitcode.Error{Code: exitcode.Locked, Err: err}
		case errors.As(err, new(*wait.UnreachableError)):
			err = &exitcode.Error{Code: exitcode.Unreachable, Err: err}
		case errors.Is(err, docker.ErrNotManager):
			err = &config.Error{Problems: []config.Problem{{Var: "DOCKER_HOST", Msg: err.Error()}}}
		case !config.IsInvalid(err):
			err = &exitcode.Error{Code: exitcode.Internal, Err: fmt.Errorf("ziti-bootstrap lock: %w", err)}
		}
		return nil, nil, err
	}
	log.Debug("lock taken", "lock", store.Where(), "holder", lease.Holder().String())
	return lease, closeStore, nil
}
