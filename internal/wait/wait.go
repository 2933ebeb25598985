// Package wait waits for a dependency to become usable, with exponential backoff and a deadline.
// After the deadline the error names what was awaited, where, for how long, and the last error seen.
package wait

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// UnreachableError reports a dependency that did not become usable before its deadline.
type UnreachableError struct {
	What     string        // e.g. "SPIRE server"
	Where    string        // address, URL or socket path
	Waited   time.Duration // how long we tried
	Attempts int
	Last     error // the last error seen
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("%s at %s unreachable after %s (%d attempts): last error: %v",
		e.What, e.Where, e.Waited.Round(100*time.Millisecond), e.Attempts, e.Last)
}

func (e *UnreachableError) Unwrap() error { return e.Last }

// Permanent marks err as not worth retrying (bad credentials, a malformed answer): For returns it at once.
func Permanent(err error) error { return backoff.Permanent(err) }

// Progress is told about every failed attempt, for a progress line on a terminal.
type Progress func(what, where string, attempt int, elapsed time.Duration, err error)

// Target describes one dependency to wait for.
type Target struct {
	What     string
	Where    string
	Deadline time.Duration // total time allowed; 0 means one attempt
	// Initial and Max bound the interval between attempts (defaults 200 ms and 5 s).
	Initial, Max time.Duration
	Progress     Progress
	// Wake, when set, cuts the pause between attempts short: the next attempt starts as soon as it receives (e.g.
	// a Docker event of the awaited stack). A closed Wake is ignored.
	Wake <-chan struct{}
}

type noWaitKey struct{}

// WithoutWaiting returns ctx in which For makes one attempt and returns its error: a pass that only looks
// (up's read-only pass, which gives way to a run under the lock when anything is not as wanted) learns at once
// that it would have to wait, rather than wait.
func WithoutWaiting(ctx context.Context) context.Context {
	return context.WithValue(ctx, noWaitKey{}, true)
}

// Within returns ctx bounded to d from now, or ctx itself when d is not positive, and the function that releases it.
func Within(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

// For calls probe until it succeeds, returns a permanent error, ctx ends, or the deadline passes. In a context
// of WithoutWaiting it makes one attempt.
func For(ctx context.Context, t Target, probe func(context.Context) error) error {
	if ctx.Value(noWaitKey{}) != nil {
		t.Deadline = 0
	}
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = orDefault(t.Initial, 200*time.Millisecond)
	b.MaxInterval = orDefault(t.Max, 5*time.Second)
	b.MaxElapsedTime = 0 // the context below carries the deadline
	start := time.Now()
	dctx, cancel := Within(ctx, t.Deadline)
	defer cancel()
	attempts := 0
	var last error
	permanent := false
	op := func() error {
		attempts++
		err := probe(dctx)
		if err == nil {
			return nil
		}
		// An attempt cut short by the deadline fails with the deadline ("context deadline exceeded"), which
		// says nothing about the dependency: the error of the attempt before it stays the one reported.
		if last == nil || dctx.Err() == nil {
			last = err
		}
		var perm *backoff.PermanentError
		if errors.As(err, &perm) {
			permanent = true
			return err
		}
		if t.Progress != nil {
			t.Progress(t.What, t.Where, attempts, time.Since(start), err)
		}
		if t.Deadline <= 0 {
			return backoff.Permanent(err)
		}
		return err
	}
	var err error
	if t.Wake != nil {
		err = backoff.RetryNotifyWithTimer(op, backoff.WithContext(b, dctx), nil, &wakeTimer{wake: t.Wake})
	} else {
		err = backoff.Retry(op, backoff.WithContext(b, dctx))
	}
	if err == nil {
		return nil
	}
	if permanent {
		return err // a permanent failure is not "unreachable": the caller classifies it
	}
	if ctx.Err() != nil && dctx.Err() == nil {
		return ctx.Err()
	}
	if last == nil {
		last = err
	}
	return &UnreachableError{What: t.What, Where: t.Where, Waited: time.Since(start), Attempts: attempts, Last: last}
}

// wakeTimer is backoff's timer that also fires when wake receives.
type wakeTimer struct {
	wake  <-chan struct{}
	timer *time.Timer
	c     chan time.Time
	stop  chan struct{}
}

func (w *wakeTimer) Start(d time.Duration) {
	w.Stop()
	w.c, w.stop = make(chan time.Time, 1), make(chan struct{})
	w.timer = time.NewTimer(d)
	go func(c chan time.Time, stop chan struct{}, t *time.Timer, wake <-chan struct{}) {
		select {
		case now := <-t.C:
			c <- now
		case _, ok := <-wake:
			if ok {
				c <- time.Now()
				return
			}
			select { // a closed wake: only the timer
			case now := <-t.C:
				c <- now
			case <-stop:
			}
		case <-stop:
		}
	}(w.c, w.stop, w.timer, w.wake)
}

func (w *wakeTimer) Stop() {
	if w.timer != nil {
		w.timer.Stop()
		close(w.stop)
		w.timer = nil
	}
}

func (w *wakeTimer) C() <-chan time.Time { return w.c }

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Sleep waits d, or until ctx ends (then it returns ctx's error); d <= 0 only checks ctx.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
