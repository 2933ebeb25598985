package backup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/progress"
)

// Restores that always finish what they start. A restore changes each server in steps (record, stop, replace,
// start); a run killed between two steps (kill -9, a lost container, a reboot) must leave nothing that the next
// run cannot complete or undo:
//
//   - Swarm services carry their replica count and the set in labels (SwarmService.Record) from before anything
//     is stopped until they run again: the next `restore` (Recover) or `up` (ResumeSwarm) scales each labelled
//     service back to its count and removes the labels;
//   - FileTarget never leaves its database absent: the snapshot is copied next to it, the old file and sidecars
//     are hard-linked aside, the old sidecars removed, and the copy renamed over the file (atomic). Recover
//     undoes a swap that did not reach the rename (the sidecars are linked back, the copy removed); after the
//     rename the restore is complete;
//   - PostgresTarget restores in one transaction (as the owner), or into a new database swapped in by renames in
//     one transaction (as a superuser): killed, the database under the name is whole, and Recover drops what
//     was left beside it. pg_restore dies with the restore (its transaction rolls back).

// Recoverer is a target that can complete or undo its own interrupted restore (with its server stopped).
type Recoverer interface {
	Recover(ctx context.Context) (string, error)
}

// Resumer is a service that can be brought back after an interrupted restore (SwarmService).
type Resumer interface {
	Resume(ctx context.Context) (bool, error)
}

// Recover finishes what an interrupted restore into targets left: each target recovers its files, then its
// service, when journalled, is scaled back to its count. It returns what it did, one line per change.
func Recover(ctx context.Context, targets []Target, log *slog.Logger) ([]string, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var did []string
	var errs []error
	progress.Report(ctx, progress.Event{Stage: progress.Recover})
	for _, t := range targets {
		if r, ok := t.(Recoverer); ok {
			msg, err := r.Recover(ctx)
			if err != nil {
				errs = append(errs, fmt.Errorf("recover %s: %w", t.Source(), err))
			} else if msg != "" {
				did = append(did, t.Source()+": "+msg)
				log.Warn("interrupted restore recovered", "source", t.Source(), "did", msg)
			}
		}
		svc := targetService(t)
		if r, ok := svc.(Resumer); ok {
			journalled, err := r.Resume(ctx)
			if err != nil {
				errs = append(errs, fmt.Errorf("resume %s: %w", svc, err))
			} else if journalled {
				did = append(did, fmt.Sprintf("%s: %s brought back (an interrupted restore had stopped it)", t.Source(), svc))
				log.Warn("interrupted restore: service brought back", "source", t.Source(), "service", svc.String())
			}
		}
	}
	return did, errors.Join(errs...)
}

// LabelledServices lists the services that carry a label (internal/docker's Client).
type LabelledServices interface {
	Scaler
	ServicesLabelled(ctx context.Context, key string) ([]string, error)
}

// ResumeSwarm is the hook for `up` (and anything else that (re)deploys the stacks): it scales every Swarm service
// an interrupted restore left journalled (LabelReplicas) back to its count and removes the journal, and returns
// the services it brought back. Call it under the tool's lock, before deploying (a deploy would replace the
// labels). It cannot reach the servers' volumes: an interrupted file swap is safe to start on (the database is
// always whole: the old one until the atomic rename, the restored one after), and the next `restore` cleans up
// what the swap left beside it.
func ResumeSwarm(ctx context.Context, c LabelledServices, log *slog.Logger) ([]string, error) {
	names, err := c.ServicesLabelled(ctx, LabelReplicas)
	if err != nil {
		return nil, err
	}
	var did []string
	var errs []error
	for _, name := range names {
		s := &SwarmService{Scaler: c, Service: name}
		if _, err := s.Resume(ctx); err != nil {
			errs = append(errs, err)
			continue
		}
		did = append(did, name)
		if log != nil {
			log.Warn("interrupted restore: service brought back", "service", name)
		}
	}
	return did, errors.Join(errs...)
}

// serviced is a target with a Service.
type serviced interface{ service() Service }

func (t *FileTarget) service() Service     { return t.Service }
func (t *PostgresTarget) service() Service { return t.Service }

func targetService(t Target) Service {
	if s, ok := t.(serviced); ok {
		return s.service()
	}
	return nil
}

// CrashEnv names the step at which a restore kills itself with SIGKILL: fault injection for the tests that prove
// an interrupted restore is completed or undone (before-stop, after-stop, mid-swap or mid-restore, before-start). Never set it
// otherwise.
const CrashEnv = "ZB_RESTORE_CRASH_AT"

func crashPoint(step string) {
	if os.Getenv(CrashEnv) == step {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}
