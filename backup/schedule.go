package backup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/robfig/cron/v3"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/httpserve"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
)

// Job takes sets on a cron schedule, as a long-lived service: each run is retried with exponential backoff until
// it succeeds, its retries are spent, or the next scheduled run is due. A failed attempt leaves no set counted as
// complete (see Backup.Run). Its metrics and health are served over HTTP (Handler).
type Job struct {
	JobConfig

	sched cron.Schedule
	reg   *prometheus.Registry
	m     jobMetrics
	mu    sync.Mutex
	state jobState
}

// JobConfig configures a Job.
type JobConfig struct {
	// Schedule is a standard 5-field cron expression ("0 3 * * *") or a descriptor ("@daily", "@every 6h"),
	// in UTC unless it starts with CRON_TZ=.
	Schedule string
	// Run takes one set (and applies retention); it is what `backup` does once.
	Run func(ctx context.Context) (*Manifest, error)
	// Retries after a failed attempt (default 3); the first waits Backoff (default 1 minute), each next twice as
	// long.
	Retries int
	Backoff time.Duration
	Log     *slog.Logger
	// Busy tells an error for which a run is skipped, not failed: the tool's lock held by a restore or an apply
	// (it is retried like a failure, but never makes the job unhealthy, so Swarm does not replace the container a
	// restore runs in).
	Busy func(error) bool
	// InUse, when set, says what else runs in the job's container and must not be killed with it (a restore run
	// there with docker exec, see RestoreIn); while it says something, a failed job still reports healthy, so
	// that Swarm does not replace the container under it.
	InUse func() string
}

type jobState struct {
	started     time.Time
	running     bool
	lastSuccess time.Time
	lastFailure time.Time
	lastError   string
	failed      bool // the last run failed after its retries
	next        time.Time
}

type jobMetrics struct {
	lastSuccess, lastFailure, lastDuration, lastBytes, running, next prometheus.Gauge
	runs                                                             *prometheus.CounterVec
	attemptFailures                                                  prometheus.Counter
	objectBytes                                                      *prometheus.GaugeVec
}

// NewJob checks the schedule and registers the metrics.
func NewJob(j JobConfig) (*Job, error) {
	s, err := cron.ParseStandard(j.Schedule)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %w; use 5 cron fields (\"0 3 * * *\") or a descriptor (\"@daily\", \"@every 6h\")", j.Schedule, err)
	}
	if j.Run == nil {
		return nil, errors.New("backup job: no Run")
	}
	if j.Retries == 0 {
		j.Retries = 3
	}
	if j.Backoff <= 0 {
		j.Backoff = time.Minute
	}
	if j.Log == nil {
		j.Log = slog.New(slog.DiscardHandler)
	}
	jj := &Job{JobConfig: j}
	jj.sched = s
	jj.reg = prometheus.NewRegistry()
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "ziti_bootstrap", Subsystem: "backup", Name: name, Help: help})
	}
	jj.m = jobMetrics{
		lastSuccess:  g("last_success_timestamp_seconds", "Unix time the last complete set was written."),
		lastFailure:  g("last_failure_timestamp_seconds", "Unix time a run last failed after its retries."),
		lastDuration: g("last_duration_seconds", "Duration of the last successful run."),
		lastBytes:    g("last_size_bytes", "Bytes stored by the last successful run."),
		running:      g("running", "1 while a run is in progress."),
		next:         g("next_run_timestamp_seconds", "Unix time of the next scheduled run."),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "ziti_bootstrap", Subsystem: "backup", Name: "runs_total",
			Help: "Scheduled runs by result (success; failure: after all retries; skipped: the lock was held by another run, e.g. a restore)."}, []string{"result"}),
		attemptFailures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "ziti_bootstrap", Subsystem: "backup", Name: "attempt_failures_total",
			Help: "Failed attempts, retried or not."}),
		objectBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "ziti_bootstrap", Subsystem: "backup", Name: "last_object_size_bytes",
			Help: "Bytes stored per source by the last successful run."}, []string{"source"}),
	}
	jj.m.runs.WithLabelValues("success")
	jj.m.runs.WithLabelValues("failure")
	jj.reg.MustRegister(jj.m.lastSuccess, jj.m.lastFailure, jj.m.lastDuration, jj.m.lastBytes, jj.m.running, jj.m.next,
		jj.m.runs, jj.m.attemptFailures, jj.m.objectBytes,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	jj.state.started = time.Now()
	return jj, nil
}

// Handler serves /metrics (Prometheus) and /healthz: 200 while the last run succeeded (or none has ended yet),
// 503 with the reason once a run has failed after its retries.
func (j *Job) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(j.reg, promhttp.HandlerOpts{}))
	mux.Handle("/healthz", httpserve.Health(j.Health))
	return mux
}

// Health reports whether the job is healthy, and why.
func (j *Job) Health() (bool, string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := j.state
	inUse := ""
	if j.InUse != nil && s.failed {
		inUse = j.InUse()
	}
	switch {
	case s.failed && inUse != "":
		return true, fmt.Sprintf("ok while %s (the container must not be replaced under it); the last run failed at %s: %s", inUse, s.lastFailure.Format(time.RFC3339), s.lastError)
	case s.failed:
		return false, fmt.Sprintf("unhealthy: the last run failed at %s after %d retries: %s", s.lastFailure.Format(time.RFC3339), j.Retries, s.lastError)
	case s.lastSuccess.IsZero():
		return true, fmt.Sprintf("ok: no run finished yet; next at %s", s.next.Format(time.RFC3339))
	}
	return true, fmt.Sprintf("ok: last set written %s; next run at %s", s.lastSuccess.Format(time.RFC3339), s.next.Format(time.RFC3339))
}

// Serve runs the schedule and serves Handler on addr until ctx ends.
func (j *Job) Serve(ctx context.Context, addr string) error {
	return httpserve.While(ctx, addr, j.Handler(), func(ctx context.Context, bound string) error {
		j.Log.Info("backup job started", "schedule", j.Schedule, "listen", bound)
		return j.Loop(ctx, time.Now)
	})
}

// Loop runs the schedule until ctx ends, reading the time from now.
func (j *Job) Loop(ctx context.Context, now func() time.Time) error {
	for {
		next := j.sched.Next(now())
		j.mu.Lock()
		j.state.next = next
		j.mu.Unlock()
		j.m.next.Set(float64(next.Unix()))
		if err := wait.Sleep(ctx, next.Sub(now())); err != nil {
			return nil // stopped
		}
		j.runOnce(ctx, now)
	}
}

// runOnce runs with retries; it gives up when the next scheduled run is due.
func (j *Job) runOnce(ctx context.Context, now func() time.Time) {
	j.m.running.Set(1)
	defer j.m.running.Set(0)
	j.mu.Lock()
	j.state.running = true
	j.mu.Unlock()
	defer func() { j.mu.Lock(); j.state.running = false; j.mu.Unlock() }()
	due := j.sched.Next(now())
	delay := j.Backoff
	var err error
	for attempt := 0; attempt <= j.Retries; attempt++ {
		start := now()
		var m *Manifest
		m, err = j.Run(ctx)
		if err == nil {
			j.m.runs.WithLabelValues("success").Inc()
			j.m.lastSuccess.Set(float64(now().Unix()))
			j.m.lastDuration.Set(now().Sub(start).Seconds())
			if m != nil {
				j.m.lastBytes.Set(float64(m.Size()))
				for _, o := range m.Objects {
					j.m.objectBytes.WithLabelValues(o.Source).Set(float64(o.Size))
				}
			}
			j.mu.Lock()
			j.state.lastSuccess, j.state.failed, j.state.lastError = now(), false, ""
			j.mu.Unlock()
			return
		}
		j.m.attemptFailures.Inc()
		if ctx.Err() != nil {
			return
		}
		if attempt == j.Retries || now().Add(delay).After(due) {
			break
		}
		j.Log.Warn("backup attempt failed; retrying", "attempt", attempt+1, "retryIn", delay.String(), "error", err)
		if wait.Sleep(ctx, delay) != nil {
			return
		}
		delay *= 2
	}
	if j.Busy != nil && j.Busy(err) {
		j.Log.Warn("backup run skipped: another run holds the lock", "error", err)
		j.m.runs.WithLabelValues("skipped").Inc()
		return
	}
	j.Log.Error("backup run failed", "error", err)
	j.m.runs.WithLabelValues("failure").Inc()
	j.m.lastFailure.Set(float64(now().Unix()))
	j.mu.Lock()
	j.state.failed, j.state.lastFailure, j.state.lastError = true, now(), err.Error()
	j.mu.Unlock()
}
