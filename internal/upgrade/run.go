package upgrade

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// Env is what an upgrade acts on: up's deploy and the backup service, behind a small interface so that the order
// of the phases and the rollback are tested without a Swarm.
type Env interface {
	// Snapshot takes a snapshot set of sources and returns its ID.
	Snapshot(ctx context.Context, sources []string) (string, error)
	// Deploy deploys the stacks, running the bootstrap job again; images (stack variable → value: the image
	// variables and Running.Previous) replace the configured ones for the rollback; nil deploys the configuration.
	Deploy(ctx context.Context, images map[string]string) error
	// Check checks the system after a deploy (each step converged is the deploy's own check): an error names
	// the server that failed with a *CheckError.
	Check(ctx context.Context, p Plan, rollback bool) error
	// Stop stops a Swarm service (scaled to 0) so its data can be put back.
	Stop(ctx context.Context, service string) error
	// Restore puts the data of sources back from the set; their servers are stopped.
	Restore(ctx context.Context, set string, sources []string) error
	// Hold runs fn holding the tool's lock, which the Restore and Deploy fn calls act under: from the check of
	// the deployed upgrade to the rollback's deploy, no other run (a scheduled backup, a converge pass) takes it
	// and meets a server stopped or half-restored. When the lock cannot be had, fn runs without it.
	Hold(ctx context.Context, fn func(ctx context.Context) error) error
}

// CheckError is a failed post-upgrade check of one server.
type CheckError struct {
	Service string
	Err     error
}

func (e *CheckError) Error() string { return e.Service + ": " + e.Err.Error() }
func (e *CheckError) Unwrap() error { return e.Err }

// NotStarted wraps a deploy error after which nothing changed (another run held the lock): no rollback.
type NotStarted struct{ Err error }

func (e *NotStarted) Error() string { return "upgrade not started (nothing changed): " + e.Err.Error() }
func (e *NotStarted) Unwrap() error { return e.Err }

// Failed is an upgrade that failed: the server, the cause, and what the rollback did.
type Failed struct {
	Step  Step
	Cause error
	// Set is the pre-upgrade snapshot ("" when none was needed); Restored the sources put back from it.
	Set      string
	Restored []string
	// Rollback is the rollback's own failure (nil: the previous versions run again and passed the checks).
	Rollback error
}

func (f *Failed) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "upgrade of %s (%s) from %s to %s failed: %v; ", f.Step.Name, f.Step.Service, f.Step.From, f.Step.To, f.Cause)
	if f.Rollback != nil {
		fmt.Fprintf(&b, "the rollback failed too: %v", f.Rollback)
		if f.Set != "" {
			fmt.Fprintf(&b, " (the pre-upgrade snapshot is set %s: ziti-bootstrap restore %s --swarm)", f.Set, f.Set)
		}
		return b.String()
	}
	b.WriteString("rolled back: the previous versions run again")
	if len(f.Restored) > 0 {
		fmt.Fprintf(&b, " on their data from the pre-upgrade set %s (%s)", f.Set, strings.Join(f.Restored, ", "))
	}
	b.WriteString(" and passed the checks")
	return b.String()
}

func (f *Failed) Unwrap() error { return f.Cause }

// Run carries out the plan: a snapshot set first (when a server migrates its data in place), the deploy with
// the bootstrap job, the checks; on a failure the rollback: the servers that migrate data in place stopped, their
// data put back from the set, every upgraded server deployed again at its previous image, and checked again. The
// error is a *Failed naming the server and the cause. A failed snapshot stops the upgrade before any change.
// From the check to the rollback's deploy the lock is held (Env.Hold): the restore and the deploy act under it.
func Run(ctx context.Context, p Plan, env Env, log *slog.Logger) (string, error) {
	var set string
	if p.Snapshot() {
		var err error
		if set, err = env.Snapshot(ctx, p.Sources); err != nil {
			return "", fmt.Errorf("upgrade not started (nothing changed): the pre-upgrade snapshot of %s: %w", strings.Join(p.Sources, ", "), err)
		}
		log.Info("upgrade: pre-upgrade snapshot taken", "set", set, "sources", strings.Join(p.Sources, ","))
	}
	cause := env.Deploy(ctx, nil)
	var ns *NotStarted
	if errors.As(cause, &ns) {
		return set, cause
	}
	var f *Failed
	held := env.Hold(ctx, func(ctx context.Context) error {
		if cause == nil {
			cause = env.Check(ctx, p, false)
		}
		if cause == nil {
			return nil
		}
		f = &Failed{Step: p.culprit(cause), Cause: cause, Set: set}
		log.Error("upgrade failed: rolling back", "service", f.Step.Service, "cause", cause.Error())
		f.Restored, f.Rollback = rollback(ctx, p, env, set, log)
		return nil
	})
	switch {
	case f == nil:
		return set, held // nil, or the lock lost during the check
	case held != nil && f.Rollback == nil:
		f.Rollback = held
	}
	if f.Rollback == nil {
		if err := env.Check(ctx, p, true); err != nil {
			f.Rollback = fmt.Errorf("the previous versions: %w", err)
		}
	}
	return set, f
}

// rollback brings the previous versions back, on their pre-upgrade data: the servers that migrate data in place
// stopped, their data put back from the set, every upgraded server deployed again at its previous image.
func rollback(ctx context.Context, p Plan, env Env, set string, log *slog.Logger) ([]string, error) {
	images := map[string]string{}
	for _, st := range p.Steps {
		images[st.Var] = st.From
		for k, v := range st.Previous {
			images[k] = v
		}
	}
	var restored []string
	if set != "" {
		// the servers stopped before their data is replaced: a running new version would write on
		for i := len(p.Steps) - 1; i >= 0; i-- {
			if st := p.Steps[i]; st.Restore {
				if err := env.Stop(ctx, st.Service); err != nil {
					return nil, fmt.Errorf("stop %s: %w", st.Service, err)
				}
			}
		}
		if err := env.Restore(ctx, set, p.Sources); err != nil {
			return nil, fmt.Errorf("restore %s from set %s: %w", strings.Join(p.Sources, ", "), set, err)
		}
		restored = p.Sources
		log.Info("upgrade rollback: data restored from the pre-upgrade set", "set", set, "sources", strings.Join(p.Sources, ","))
	}
	if err := env.Deploy(ctx, images); err != nil {
		return restored, fmt.Errorf("deploy the previous versions: %w", err)
	}
	return restored, nil
}

// culprit is the step a failure belongs to: the one a *CheckError names, else the first whose service the error
// names, else the first.
func (p Plan) culprit(err error) Step {
	var ce *CheckError
	for _, st := range p.Steps {
		if errors.As(err, &ce) && ce.Service == st.Service {
			return st
		}
	}
	for _, st := range p.Steps {
		if strings.Contains(err.Error(), st.Service) {
			return st
		}
	}
	return p.Steps[0]
}
