package backup_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/backup"
)

// errLockLost stands for the cause a run's context ends with when its lock is lost.
var errLockLost = errors.New("the lock was lost")

// cancelling is a Target that ends the run's context while it restores (an interrupt, or the lock lost).
type cancelling struct {
	*fakeTarget
	cancel context.CancelCauseFunc
}

func (c *cancelling) Restore(ctx context.Context, path, set string) error {
	c.cancel(errLockLost)
	return c.fakeTarget.Restore(ctx, path, set)
}

// A restore whose context ends finishes the target it started and attempts no other, saying which were done.
func TestRestoreStopsBetweenTargetsWhenItsContextEnds(t *testing.T) {
	w := newWorld(t, false)
	w.backup(t)
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	r := w.restore(t)
	r.Targets[0] = &cancelling{fakeTarget: w.targets["keycloak"], cancel: cancel}
	p, err := r.Prepare(context.Background(), backup.Latest, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	done, err := p.Apply(ctx)
	if len(done) != 1 || done[0] != "keycloak" || !errors.Is(err, errLockLost) ||
		!strings.Contains(err.Error(), "stopped before spire") || !strings.Contains(err.Error(), "not attempted: ziti") {
		t.Fatalf("Apply = %v, %v; want keycloak done, then a stop naming the cause, spire and ziti", done, err)
	}
	if w.targets["spire"].restored != nil || w.targets["ziti"].restored != nil {
		t.Error("a target was restored after the context ended")
	}
}

// stopCancels is a server whose stop ends the run's context; it records whether its start got a live context.
type stopCancels struct {
	cancel      context.CancelCauseFunc
	startCtxErr error
	started     bool
}

func (s *stopCancels) Stop(context.Context) error { s.cancel(errLockLost); return nil }
func (s *stopCancels) Start(ctx context.Context) error {
	s.started, s.startCtxErr = true, ctx.Err()
	return ctx.Err()
}
func (s *stopCancels) String() string { return "a server whose stop ends the run" }

// A server the restore stopped is started again even when the run's context ended meanwhile: it is never left
// stopped. The file is restored.
func TestStoppedServerStartsAgainAfterTheContextEnded(t *testing.T) {
	dir := t.TempDir()
	db, snap := filepath.Join(dir, "ctrl.db"), filepath.Join(dir, "snap")
	mustWrite(t, db, "old")
	mustWrite(t, snap, "new")
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	svc := &stopCancels{cancel: cancel}
	err := (&backup.FileTarget{SourceName: "ziti", Path: db, Format: "bbolt", Service: svc}).Restore(ctx, snap, "set")
	if err != nil || !svc.started || svc.startCtxErr != nil {
		t.Fatalf("Restore = %v; started %v with context error %v; want started with a live context", err, svc.started, svc.startCtxErr)
	}
	if b, _ := os.ReadFile(db); string(b) != "new" {
		t.Errorf("file after the restore: %q", b)
	}
}
