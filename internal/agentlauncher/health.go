package agentlauncher

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
)

// ErrUnhealthy marks Check's answer when the agent is not (yet) what it should be; other errors are failures to
// find out (the engine did not answer, the files cannot be read).
var ErrUnhealthy = errors.New("agent not ready")

// Check returns nil when the agent container exists, runs the current spec, Docker reports it healthy and the
// Engine answers through the agent's Docker proxy (without it no workload is attested).
// Otherwise its error is one line that says why (for `agent-launcher healthcheck`, and so for the launcher
// task's health). It makes no mutating call.
func (l *Launcher) Check(ctx context.Context) error {
	name := l.Settings.Container
	d, err := l.Desire(ctx, false)
	if err != nil {
		return oneLine(fmt.Errorf("agent container %s: %w", name, err))
	}
	cur, err := l.Observe(ctx)
	if err != nil {
		return oneLine(err)
	}
	if cur == nil {
		return unhealthy("agent container %s does not exist on this node (the launcher creates it)", name)
	}
	p, err := Decide(cur, d, l.Settings.Namespace)
	if err != nil {
		return oneLine(err)
	}
	id := docker.ShortID(cur.ID)
	switch {
	case len(p.Changed) > 0:
		return unhealthy("agent container %s (%s) does not run the current spec (%s): the launcher replaces it", name, id, p.Reason)
	case !cur.Running || cur.Status == "paused":
		msg := fmt.Sprintf("agent container %s (%s) is %s", name, id, cur.Status)
		if p.Action == Recreate {
			msg += " (" + p.Reason + ")"
		}
		if cur.Status == "exited" || cur.Status == "restarting" {
			msg += fmt.Sprintf(" (exit code %d at %s, restarted %d times)", cur.ExitCode, cur.FinishedAt.UTC().Format(time.RFC3339), cur.RestartCount)
		}
		if cur.Error != "" {
			msg += ": " + cur.Error
		}
		return unhealthy("%s", msg)
	case cur.Health != "healthy":
		msg := fmt.Sprintf("agent container %s (%s) is running, health %s", name, id, orNone(cur.Health))
		if cur.HealthOutput != "" {
			msg += ": " + cur.HealthOutput
		}
		return unhealthy("%s", msg)
	}
	return l.checkProxy(ctx)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func unhealthy(format string, args ...any) error {
	return oneLine(fmt.Errorf("%w: "+format, append([]any{ErrUnhealthy}, args...)...))
}

// maxLine bounds a health reason: Docker keeps the first 4 KiB of a probe's output.
const maxLine = 400

// oneLine keeps err (for errors.Is) but renders it on one bounded line.
func oneLine(err error) error { return &lineError{err} }

type lineError struct{ err error }

func (e *lineError) Unwrap() error { return e.err }
func (e *lineError) Error() string {
	s := strings.Join(strings.Fields(e.err.Error()), " ")
	if len(s) > maxLine {
		s = s[:maxLine-1] + "…"
	}
	return s
}
