// Package converge keeps a system converged without a human: a long-running loop that runs one converge pass
// (plan + apply of every step, under the tool's lock) at start, every Interval, and at once when SPIRE's trust
// bundle changes, backs off after a failed pass, and exports what it did as Prometheus metrics with a health
// signal a container orchestrator can act on.
//
// # When a pass runs
//
//   - at start;
//   - Interval after the previous pass converged (drift is found at the latest then);
//   - at once when the trust bundle's fingerprint (Config.Bundle, read every BundlePoll) differs from the one
//     read before: a new or dropped SPIRE root is bound in, or removed from, OpenZiti within about BundlePoll;
//   - after a failed pass: after Backoff, doubling with every failure in a row up to MaxBackoff (never later
//     than Interval);
//   - after a pass skipped because another run (an operator's apply, up, a restore) holds the lock: after
//     LockRetry. The loop never waits for, or takes over, a lock another run holds.
//
// A pass is one call of Config.Pass; it takes the lock, plans and applies, and says what it found (Outcome).
// The loop never runs two passes at once.
package converge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Outcome is what one pass did.
type Outcome struct {
	// Drift is the number of changes the pass found (and, when it did not fail, applied); 0 on a converged system.
	Drift int
	// Writes is the number of mutating API calls the pass made.
	Writes int64
	// FailedSteps names the steps that failed (their dependents, skipped, are not named).
	FailedSteps []string
	// Busy says the pass did not run: another run holds the lock.
	Busy bool
	// Err is why the pass failed (nil when it converged or was busy).
	Err error
}

// Reasons a pass runs, as the label "reason" of the metric triggers_total.
const (
	ReasonStart    = "start"
	ReasonInterval = "interval"
	ReasonBundle   = "trust-bundle-changed"
	ReasonRetry    = "retry"
)

// Config configures a Loop.
type Config struct {
	// Pass runs one converge pass under the lock; reason is one of the Reason constants.
	Pass func(ctx context.Context, reason string) Outcome
	// StartAfter is the wait before the first pass (0: at once), e.g. to let a one-shot job make the first apply;
	// a change of the trust bundle ends it.
	StartAfter time.Duration
	// Bundle returns a fingerprint of SPIRE's trust bundle; nil: no watch, only the interval.
	Bundle func(ctx context.Context) (string, error)
	// Interval between passes on a converged system (default 5 minutes).
	Interval time.Duration
	// BundlePoll is how often Bundle is read (default 5 s).
	BundlePoll time.Duration
	// Backoff is the wait after the first failed pass in a row (default 5 s); it doubles with each next failure
	// up to MaxBackoff (default, and at most, Interval).
	Backoff, MaxBackoff time.Duration
	// LockRetry is the wait after a pass skipped because the lock was held (default 15 s, at most Interval).
	LockRetry time.Duration
	// UnhealthyAfter is how many failed passes in a row make /healthz answer 503 (default 3).
	UnhealthyAfter int
	Log            *slog.Logger
	// After is the timer of the loop (default time.After); tests replace it.
	After func(time.Duration) <-chan time.Time
	// Now is the clock of the metrics and health (default time.Now).
	Now func() time.Time
}

// Loop runs passes (see the package comment). Create it with New.
type Loop struct {
	cfg     Config
	reg     *prometheus.Registry
	m       metrics
	trigger chan string

	mu    sync.Mutex
	state State
}

// State is what the loop has done so far; /status serves it as JSON.
type State struct {
	Started           time.Time `json:"started"`
	Running           bool      `json:"running"`
	Passes            int       `json:"passes"`
	LastPass          time.Time `json:"lastPass,omitzero"`
	LastReason        string    `json:"lastReason,omitempty"`
	LastResult        string    `json:"lastResult,omitempty"` // converged, failed or busy
	LastConverged     time.Time `json:"lastConverged,omitzero"`
	LastDrift         int       `json:"lastDrift"`
	LastWrites        int64     `json:"lastWrites"`
	LastError         string    `json:"lastError,omitempty"`
	FailuresInRow     int       `json:"failuresInRow"`
	Next              time.Time `json:"next,omitzero"`
	BundleChanges     int       `json:"bundleChanges"`
	BundleFingerprint string    `json:"bundleFingerprint,omitempty"`
}

// Result values of a pass (label "result" of runs_total, State.LastResult).
const (
	ResultConverged = "converged"
	ResultFailed    = "failed"
	ResultBusy      = "busy"
)

type metrics struct {
	lastRun, lastSuccess, lastDuration, lastDrift, lastWrites, failuresInRow, next prometheus.Gauge
	runs, triggers, stepFailures                                                   *prometheus.CounterVec
	drift, writes, bundleChanges, bundleErrors                                     prometheus.Counter
}

// New checks cfg, fills in its defaults and registers the metrics.
func New(cfg Config) (*Loop, error) {
	if cfg.Pass == nil {
		return nil, errors.New("converge: no Pass")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.Interval, 5*time.Minute)
	def(&cfg.BundlePoll, 5*time.Second)
	def(&cfg.Backoff, 5*time.Second)
	def(&cfg.MaxBackoff, cfg.Interval)
	def(&cfg.LockRetry, 15*time.Second)
	cfg.MaxBackoff = min(cfg.MaxBackoff, cfg.Interval)
	cfg.Backoff = min(cfg.Backoff, cfg.MaxBackoff)
	cfg.LockRetry = min(cfg.LockRetry, cfg.Interval)
	if cfg.UnhealthyAfter <= 0 {
		cfg.UnhealthyAfter = 3
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.After == nil {
		cfg.After = time.After
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	l := &Loop{cfg: cfg, reg: prometheus.NewRegistry(), trigger: make(chan string, 1)}
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "ziti_bootstrap", Subsystem: "converge", Name: name, Help: help})
	}
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "ziti_bootstrap", Subsystem: "converge", Name: name, Help: help})
	}
	cv := func(name, help, label string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "ziti_bootstrap", Subsystem: "converge", Name: name, Help: help}, []string{label})
	}
	l.m = metrics{
		lastRun:       g("last_run_timestamp_seconds", "Unix time the last pass ended (converged, failed or busy)."),
		lastSuccess:   g("last_success_timestamp_seconds", "Unix time of the last converge: a pass that ended with every step converged."),
		lastDuration:  g("last_duration_seconds", "Duration of the last pass."),
		lastDrift:     g("last_drift_changes", "Changes the last pass found (drift); 0 on a converged system."),
		lastWrites:    g("last_writes", "Mutating API calls of the last pass."),
		failuresInRow: g("consecutive_failures", "Failed passes in a row; /healthz answers 503 from UnhealthyAfter on."),
		next:          g("next_run_timestamp_seconds", "Unix time of the next pass unless the trust bundle changes first."),
		runs:          cv("runs_total", "Passes by result: converged, failed, busy (another run held the lock; skipped).", "result"),
		triggers:      cv("triggers_total", "Passes by what started them: start, interval, trust-bundle-changed, retry.", "reason"),
		stepFailures:  cv("step_failures_total", "Failed steps, by step name.", "step"),
		drift:         c("drift_changes_total", "Changes found by all passes (drift repaired, or attempted)."),
		writes:        c("writes_total", "Mutating API calls of all passes."),
		bundleChanges: c("bundle_changes_total", "Changes of SPIRE's trust bundle seen by the watch."),
		bundleErrors:  c("bundle_read_failures_total", "Failed reads of SPIRE's trust bundle by the watch."),
	}
	for _, r := range []string{ResultConverged, ResultFailed, ResultBusy} {
		l.m.runs.WithLabelValues(r)
	}
	l.reg.MustRegister(l.m.lastRun, l.m.lastSuccess, l.m.lastDuration, l.m.lastDrift, l.m.lastWrites, l.m.failuresInRow, l.m.next,
		l.m.runs, l.m.triggers, l.m.stepFailures, l.m.drift, l.m.writes, l.m.bundleChanges, l.m.bundleErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	l.state.Started = cfg.Now()
	return l, nil
}

// Delay is how long the loop waits after a pass with outcome o, failures being the failed passes in a row
// including this one.
func (c Config) Delay(o Outcome, failures int) time.Duration {
	switch {
	case o.Busy:
		return c.LockRetry
	case o.Err == nil:
		return c.Interval
	}
	d := c.Backoff
	for i := 1; i < failures && d < c.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, c.MaxBackoff)
}

// Run runs passes until ctx ends; it then returns nil.
func (l *Loop) Run(ctx context.Context) error {
	if l.cfg.Bundle != nil {
		go l.watchBundle(ctx)
	}
	reason := ReasonStart
	if l.cfg.StartAfter > 0 {
		l.mu.Lock()
		l.state.Next = l.cfg.Now().Add(l.cfg.StartAfter)
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case <-l.cfg.After(l.cfg.StartAfter):
			reason = ReasonInterval
		case reason = <-l.trigger:
		}
	}
	for {
		o := l.pass(ctx, reason)
		if ctx.Err() != nil {
			return nil
		}
		l.mu.Lock()
		d := l.cfg.Delay(o, l.state.FailuresInRow)
		l.state.Next = l.cfg.Now().Add(d)
		l.mu.Unlock()
		l.m.next.Set(float64(l.cfg.Now().Add(d).Unix()))
		next := ReasonInterval
		if o.Err != nil || o.Busy {
			next = ReasonRetry
		}
		select {
		case <-ctx.Done():
			return nil
		case <-l.cfg.After(d):
			reason = next
		case reason = <-l.trigger:
		}
	}
}

// pass runs one pass and records its outcome.
func (l *Loop) pass(ctx context.Context, reason string) Outcome {
	l.m.triggers.WithLabelValues(reason).Inc()
	l.mu.Lock()
	l.state.Running = true
	l.mu.Unlock()
	start := l.cfg.Now()
	o := l.cfg.Pass(ctx, reason)
	end := l.cfg.Now()
	result := ResultConverged
	switch {
	case o.Busy:
		result = ResultBusy
	case o.Err != nil:
		result = ResultFailed
	}
	l.m.runs.WithLabelValues(result).Inc()
	l.m.lastRun.Set(float64(end.Unix()))
	l.m.lastDuration.Set(end.Sub(start).Seconds())
	l.m.writes.Add(float64(o.Writes))
	l.m.lastWrites.Set(float64(o.Writes))
	if !o.Busy {
		l.m.lastDrift.Set(float64(o.Drift))
		l.m.drift.Add(float64(o.Drift))
	}
	for _, s := range o.FailedSteps {
		l.m.stepFailures.WithLabelValues(s).Inc()
	}
	l.mu.Lock()
	s := &l.state
	s.Running = false
	s.Passes++
	s.LastPass, s.LastReason, s.LastResult, s.LastWrites = end, reason, result, o.Writes
	switch result {
	case ResultConverged:
		s.LastConverged, s.LastDrift, s.LastError, s.FailuresInRow = end, o.Drift, "", 0
		l.m.lastSuccess.Set(float64(end.Unix()))
	case ResultFailed:
		s.LastDrift, s.LastError = o.Drift, o.Err.Error()
		s.FailuresInRow++
	}
	l.m.failuresInRow.Set(float64(s.FailuresInRow))
	l.mu.Unlock()
	log := l.cfg.Log.With("reason", reason, "result", result, "drift", o.Drift, "writes", o.Writes,
		"duration", end.Sub(start).Round(time.Millisecond).String())
	switch result {
	case ResultFailed:
		log.Warn("converge pass failed", "failedSteps", o.FailedSteps, "error", o.Err.Error())
	case ResultBusy:
		log.Info("converge pass skipped: another run holds the lock", "error", errString(o.Err))
	default:
		log.Info("converge pass done")
	}
	return o
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// watchBundle reads the bundle's fingerprint every BundlePoll and triggers a pass when it changed. The first
// read only sets the baseline: the start pass has seen that bundle.
func (l *Loop) watchBundle(ctx context.Context) {
	t := time.NewTicker(l.cfg.BundlePoll)
	defer t.Stop()
	last := ""
	for {
		fp, err := l.cfg.Bundle(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			l.m.bundleErrors.Inc()
			l.cfg.Log.Debug("could not read SPIRE's trust bundle; trying again", "in", l.cfg.BundlePoll.String(), "error", err.Error())
		case last != "" && fp != last:
			l.m.bundleChanges.Inc()
			l.mu.Lock()
			l.state.BundleChanges++
			l.state.BundleFingerprint = fp
			l.mu.Unlock()
			l.cfg.Log.Info("SPIRE's trust bundle changed: converging now", "fingerprint", fp, "before", last)
			select {
			case l.trigger <- ReasonBundle:
			default: // a pass is already due
			}
			last = fp
		default:
			if last == "" {
				l.mu.Lock()
				l.state.BundleFingerprint = fp
				l.mu.Unlock()
			}
			last = fp
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// State returns a copy of what the loop has done so far.
func (l *Loop) State() State {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state
}

// Health reports whether the loop is healthy, and why: unhealthy once UnhealthyAfter passes in a row failed.
func (l *Loop) Health() (bool, string) {
	s := l.State()
	switch {
	case s.FailuresInRow >= l.cfg.UnhealthyAfter:
		return false, fmt.Sprintf("unhealthy: %d converge passes in a row failed; the last at %s: %s", s.FailuresInRow, s.LastPass.Format(time.RFC3339), s.LastError)
	case s.LastConverged.IsZero():
		return true, fmt.Sprintf("ok: not converged yet (%d pass(es), last: %s)", s.Passes, orNone(s.LastResult))
	}
	return true, fmt.Sprintf("ok: last converged %s (drift %d, %d write(s)); next pass by %s", s.LastConverged.Format(time.RFC3339),
		s.LastDrift, s.LastWrites, s.Next.Format(time.RFC3339))
}

func orNone(s string) string {
	if s == "" {
		return "none yet"
	}
	return s
}
