package converge

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a fake timer: every wait the loop asks for is sent on asked, and ends when the test fires it.
type clock struct {
	asked chan time.Duration
	fire  chan time.Time
}

func newClock() *clock {
	return &clock{asked: make(chan time.Duration), fire: make(chan time.Time)}
}

func (c *clock) after(d time.Duration) <-chan time.Time {
	c.asked <- d
	return c.fire
}

// next waits (generously: the machine is loaded) for the loop to ask for a wait and returns it.
func (c *clock) next(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-c.asked:
		return d
	case <-time.After(30 * time.Second):
		t.Fatal("the loop asked for no wait within 30 s")
		return 0
	}
}

// script is a Pass that returns its outcomes in order (the last one for ever) and records the reasons.
type script struct {
	mu       sync.Mutex
	outcomes []Outcome
	reasons  []string
	seen     chan string
}

func (s *script) pass(_ context.Context, reason string) Outcome {
	s.mu.Lock()
	s.reasons = append(s.reasons, reason)
	o := s.outcomes[0]
	if len(s.outcomes) > 1 {
		s.outcomes = s.outcomes[1:]
	}
	s.mu.Unlock()
	if s.seen != nil {
		s.seen <- reason
	}
	return o
}

func (s *script) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.reasons...)
}

func start(t *testing.T, cfg Config) (*Loop, context.CancelFunc) {
	t.Helper()
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = l.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return l, cancel
}

func get(t *testing.T, l *Loop, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	l.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

var (
	failed = Outcome{Drift: 1, FailedSteps: []string{"ziti/oidc"}, Err: errors.New("ziti/oidc: apply: 500")}
	fixed  = Outcome{Drift: 2, Writes: 3}
	busy   = Outcome{Busy: true, Err: errors.New("held by alice")}
)

// Failed passes back off 5 s, 10 s, 20 s, … up to the interval; a converged pass resets the backoff and waits
// the interval; a pass that found the lock held waits LockRetry. /healthz turns 503 after 3 failures in a row
// and 200 after the next converge; the metrics count every pass and failed step.
func TestBackoffHealthAndMetrics(t *testing.T) {
	c := newClock()
	s := &script{outcomes: []Outcome{failed, failed, failed, failed, failed, fixed, busy, failed, fixed}}
	l, _ := start(t, Config{Pass: s.pass, Interval: time.Minute, Backoff: 5 * time.Second, LockRetry: 15 * time.Second, After: c.after})

	want := []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second, time.Minute, // capped at the interval
		time.Minute, 15 * time.Second, 5 * time.Second, time.Minute}
	for i, w := range want {
		if d := c.next(t); d != w {
			t.Fatalf("wait %d: %s, want %s (reasons so far %v)", i+1, d, w, s.got())
		}
		switch i {
		case 2: // three failures in a row
			if code, body := get(t, l, "/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "3 converge passes in a row failed") ||
				!strings.Contains(body, "ziti/oidc: apply: 500") {
				t.Fatalf("/healthz after 3 failures: %d %q", code, body)
			}
		case 5: // converged
			if code, body := get(t, l, "/healthz"); code != http.StatusOK || !strings.Contains(body, "drift 2, 3 write(s)") {
				t.Fatalf("/healthz after a converge: %d %q", code, body)
			}
		}
		if i < len(want)-1 {
			c.fire <- time.Now()
		}
	}
	wantReasons := []string{ReasonStart, ReasonRetry, ReasonRetry, ReasonRetry, ReasonRetry, ReasonRetry, ReasonInterval, ReasonRetry, ReasonRetry}
	if got := s.got(); strings.Join(got, ",") != strings.Join(wantReasons, ",") {
		t.Errorf("reasons %v, want %v", got, wantReasons)
	}
	_, m := get(t, l, "/metrics")
	for _, line := range []string{
		`ziti_bootstrap_converge_runs_total{result="failed"} 6`,
		`ziti_bootstrap_converge_runs_total{result="converged"} 2`,
		`ziti_bootstrap_converge_runs_total{result="busy"} 1`,
		`ziti_bootstrap_converge_step_failures_total{step="ziti/oidc"} 6`,
		`ziti_bootstrap_converge_writes_total 6`,
		`ziti_bootstrap_converge_drift_changes_total 10`,
		`ziti_bootstrap_converge_last_drift_changes 2`,
		`ziti_bootstrap_converge_consecutive_failures 0`,
		`ziti_bootstrap_converge_triggers_total{reason="start"} 1`,
	} {
		if !strings.Contains(m, line+"\n") {
			t.Errorf("metrics lack %q", line)
		}
	}
	if !strings.Contains(m, "ziti_bootstrap_converge_last_success_timestamp_seconds ") {
		t.Error("metrics lack the last converge time")
	}
	st := l.State()
	if st.Passes != 9 || st.LastResult != ResultConverged || st.LastConverged.IsZero() || st.FailuresInRow != 0 {
		t.Errorf("state %+v", st)
	}
}

// A change of the trust bundle's fingerprint starts a pass at once, although the interval is far away; a read
// error neither starts one nor stops the watch.
func TestBundleChangeTriggersAPassAtOnce(t *testing.T) {
	var fp atomic.Value
	fp.Store("root-a")
	var fail atomic.Bool
	s := &script{outcomes: []Outcome{fixed}, seen: make(chan string, 10)}
	never := func(time.Duration) <-chan time.Time { return nil }
	l, _ := start(t, Config{Pass: s.pass, Interval: time.Hour, BundlePoll: 5 * time.Millisecond, After: never,
		Bundle: func(context.Context) (string, error) {
			if fail.Load() {
				return "", errors.New("connection refused")
			}
			return fp.Load().(string), nil
		}})
	waitReason := func(want string) {
		t.Helper()
		select {
		case r := <-s.seen:
			if r != want {
				t.Fatalf("pass started by %q, want %q", r, want)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("no pass (%s) within 30 s", want)
		}
	}
	waitReason(ReasonStart)
	deadline := time.Now().Add(30 * time.Second)
	for l.State().BundleFingerprint != "root-a" { // the watch has read the first bundle
		if time.Now().After(deadline) {
			t.Fatal("the watch did not read the bundle within 30 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	fail.Store(true)
	for metricValue(t, l, "ziti_bootstrap_converge_bundle_read_failures_total") == "0" {
		if time.Now().After(deadline) {
			t.Fatal("no failed bundle read counted within 30 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	fp.Store("root-a+b")
	fail.Store(false)
	waitReason(ReasonBundle)
	select {
	case r := <-s.seen:
		t.Fatalf("an extra pass (%s) without a further change", r)
	case <-time.After(100 * time.Millisecond):
	}
	if st := l.State(); st.BundleChanges != 1 || st.BundleFingerprint != "root-a+b" {
		t.Errorf("state %+v: want 1 bundle change to root-a+b", st)
	}
}

// metricValue returns the value of an unlabelled metric.
func metricValue(t *testing.T, l *Loop, name string) string {
	t.Helper()
	_, m := get(t, l, "/metrics")
	for _, line := range strings.Split(m, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	t.Fatalf("no metric %s", name)
	return ""
}

func TestDelay(t *testing.T) {
	l, err := New(Config{Pass: (&script{outcomes: []Outcome{fixed}}).pass, Interval: 2 * time.Minute, Backoff: 10 * time.Second, MaxBackoff: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c := l.cfg
	for _, tc := range []struct {
		o        Outcome
		failures int
		want     time.Duration
	}{
		{fixed, 0, 2 * time.Minute},
		{failed, 1, 10 * time.Second},
		{failed, 2, 20 * time.Second},
		{failed, 3, 30 * time.Second},
		{failed, 50, 30 * time.Second},
		{busy, 4, 15 * time.Second},
	} {
		if got := c.Delay(tc.o, tc.failures); got != tc.want {
			t.Errorf("Delay(%+v, %d) = %s, want %s", tc.o, tc.failures, got, tc.want)
		}
	}
}

// With StartAfter the first pass waits (in the Swarm the bootstrap job makes the first apply) and counts as an
// interval pass.
func TestStartAfter(t *testing.T) {
	c := newClock()
	s := &script{outcomes: []Outcome{fixed}}
	start(t, Config{Pass: s.pass, Interval: time.Minute, StartAfter: 30 * time.Second, After: c.after})
	if d := c.next(t); d != 30*time.Second {
		t.Fatalf("first wait %s, want 30s", d)
	}
	if got := s.got(); len(got) != 0 {
		t.Fatalf("a pass before StartAfter: %v", got)
	}
	c.fire <- time.Now()
	if d := c.next(t); d != time.Minute {
		t.Fatalf("wait after the first pass %s, want the interval", d)
	}
	if got := s.got(); len(got) != 1 || got[0] != ReasonInterval {
		t.Fatalf("passes %v, want one by interval", got)
	}
}
