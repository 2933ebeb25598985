package agentlauncher

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
)

// Timing of the loop.
const (
	// MinDelay and MaxDelay bound the wait before an ensure that follows a failed ensure, or an event that came
	// less than Quiet after the previous ensure: it starts at MinDelay and doubles up to MaxDelay.
	MinDelay = time.Second
	MaxDelay = time.Minute
	Quiet    = time.Minute
	// Resync is how often the loop ensures when no event comes (the event stream can miss what happened while
	// it reconnected).
	Resync = 5 * time.Minute
	// EnsureTimeout bounds one ensure. An ensure is not cut short by the loop's context (SIGTERM): it finishes,
	// so that it never leaves the agent half replaced.
	EnsureTimeout = 3 * time.Minute
)

// Events the loop watches on the agent container.
var watched = []string{"die", "destroy", "health_status"}

// pacer spaces ensures: never a busy loop, whatever the engine or the agent does.
type pacer struct {
	cur  time.Duration
	last time.Time // end of the previous ensure
}

// delay returns how long to wait before the next ensure, at now, given whether the previous one failed.
func (p *pacer) delay(now time.Time, failed bool) time.Duration {
	switch {
	case !failed && now.Sub(p.last) >= Quiet:
		p.cur = 0
	case p.cur == 0:
		p.cur = MinDelay
	default:
		p.cur = min(2*p.cur, MaxDelay)
	}
	return p.cur
}

// Run ensures the agent container, then watches its events (die, destroy, health_status) and ensures again after
// each, with backoff. It returns nil when ctx ends (SIGTERM): the agent container is left running, so that
// replacing the launcher never takes the workloads' SVIDs away.
func (l *Launcher) Run(ctx context.Context) error {
	var p pacer
	name := l.Settings.Container
	for {
		// Subscribe before ensuring, so that nothing that happens after the ensure looked is missed.
		wctx, stop := context.WithCancel(ctx)
		events, errs := l.Engine.ContainerEvents(wctx, name, watched...)
		ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), EnsureTimeout)
		res, err := l.Ensure(ectx)
		cancel()
		p.last = time.Now()
		failed := err != nil
		var why string
		switch {
		case err != nil:
			l.Log.Error("ensuring the agent container failed", "container", name, "err", err)
			why = "the last ensure failed"
		case res.Action != NoOp:
			l.Log.Info("agent container ensured", "container", name, "action", string(res.Action), "reason", res.Reason, "id", docker.ShortID(res.ContainerID))
		default:
			l.Log.Debug("agent container as desired", "container", name, "state", res.Reason, "id", docker.ShortID(res.ContainerID))
		}
		if !failed {
			var ok bool
			why, ok = l.next(ctx, events, errs, res)
			if !ok {
				stop()
				return nil
			}
			failed = why == "" // the stream broke
			if failed {
				why = "the event stream broke"
			}
		}
		stop()
		if d := p.delay(time.Now(), failed); d > 0 {
			l.Log.Info(fmt.Sprintf("waiting %s before ensuring the agent container again", d), "container", name, "after", why)
			if l.sleep(ctx, d) != nil {
				return nil
			}
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// next waits for what calls for the next ensure and says what it was ("" when the event stream broke); ok is
// false when ctx ended. Events of the container this ensure replaced are its own doing and are skipped.
func (l *Launcher) next(ctx context.Context, events <-chan docker.ContainerEvent, errs <-chan error, res Result) (why string, ok bool) {
	resync := time.NewTimer(Resync)
	defer resync.Stop()
	for {
		select {
		case <-ctx.Done():
			return "", false
		case <-resync.C:
			return "periodic check", true
		case ev, open := <-events:
			if !open {
				events = nil // errs says why
				continue
			}
			if res.Action == Recreate && ev.ID == res.ID {
				continue
			}
			if st, ok := strings.CutPrefix(ev.Action, "health_status: "); ok {
				l.Log.Info("agent container health", "container", ev.Name, "status", st)
			}
			return ev.String(), true
		case err := <-errs:
			if ctx.Err() != nil {
				return "", false
			}
			l.Log.Warn("agent container events: the stream broke; ensuring again", "container", l.Settings.Container, "err", err)
			return "", true
		}
	}
}
