package backup

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestJobRetriesThenSucceeds(t *testing.T) {
	calls := 0
	j := mustJob(t, JobConfig{Schedule: "@every 1h", Backoff: time.Millisecond, Run: func(context.Context) (*Manifest, error) {
		calls++
		if calls < 3 {
			return nil, errors.New("S3 unreachable")
		}
		return &Manifest{Objects: []Object{{Source: "spire", Size: 42}}}, nil
	}})
	j.runOnce(context.Background(), time.Now)
	if calls != 3 {
		t.Fatalf("%d attempts, want 3", calls)
	}
	if ok, msg := j.Health(); !ok {
		t.Fatalf("unhealthy after a success: %s", msg)
	}
	body := scrape(t, j, "/metrics", 200)
	for _, want := range []string{
		`ziti_bootstrap_backup_runs_total{result="success"} 1`,
		`ziti_bootstrap_backup_runs_total{result="failure"} 0`,
		`ziti_bootstrap_backup_attempt_failures_total 2`,
		`ziti_bootstrap_backup_last_object_size_bytes{source="spire"} 42`,
		`ziti_bootstrap_backup_last_size_bytes 42`,
		"ziti_bootstrap_backup_last_success_timestamp_seconds 1",
		"process_resident_memory_bytes",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestJobFailureAfterRetriesIsUnhealthy(t *testing.T) {
	calls := 0
	j := mustJob(t, JobConfig{Schedule: "@every 1h", Retries: 2, Backoff: time.Millisecond, Run: failing(&calls, "pg_dump: connection refused")})
	j.runOnce(context.Background(), time.Now)
	if calls != 3 {
		t.Fatalf("%d attempts, want 1 + 2 retries", calls)
	}
	if body := scrape(t, j, "/healthz", 503); !strings.Contains(body, "pg_dump: connection refused") {
		t.Fatalf("health: %s", body)
	}
	if body := scrape(t, j, "/metrics", 200); !strings.Contains(body, `ziti_bootstrap_backup_runs_total{result="failure"} 1`) {
		t.Fatal("failure not counted")
	}
}

// No retry runs into the next scheduled run.
func TestJobStopsRetryingWhenTheNextRunIsDue(t *testing.T) {
	calls := 0
	j := mustJob(t, JobConfig{Schedule: "@every 1m", Backoff: 2 * time.Minute, Run: failing(&calls, "fails")})
	j.runOnce(context.Background(), time.Now)
	if calls != 1 {
		t.Fatalf("%d attempts; want 1: the retry would start after the next run is due", calls)
	}
}

func TestJobRefusesBadSchedule(t *testing.T) {
	if _, err := NewJob(JobConfig{Schedule: "every day", Run: func(context.Context) (*Manifest, error) { return nil, nil }}); err == nil || !strings.Contains(err.Error(), "cron") {
		t.Fatalf("bad schedule: %v", err)
	}
}

func TestJobLoopRunsOnSchedule(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	runs := 0
	j := mustJob(t, JobConfig{Schedule: "@every 1s", Run: func(context.Context) (*Manifest, error) {
		runs++
		if runs == 2 {
			cancel()
		}
		return &Manifest{}, nil
	}})
	start := time.Now()
	if err := j.Loop(ctx, time.Now); err != nil {
		t.Fatal(err)
	}
	if runs != 2 || time.Since(start) < time.Second {
		t.Fatalf("%d runs in %s", runs, time.Since(start))
	}
}

func scrape(t *testing.T, j *Job, path string, status int) string {
	t.Helper()
	rec := httptest.NewRecorder()
	j.Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	b, _ := io.ReadAll(rec.Body)
	if rec.Code != status {
		t.Fatalf("GET %s: %d, want %d: %s", path, rec.Code, status, b)
	}
	return string(b)
}

// A run that finds the lock held (a restore runs in this container) is skipped, not failed: the job stays healthy,
// so Swarm does not replace the container under the restore.
func TestJobBusyRunIsSkippedAndHealthy(t *testing.T) {
	errHeld := errors.New("the ziti-bootstrap lock is held by restore")
	j := mustJob(t, JobConfig{Schedule: "@every 1h", Retries: 1, Backoff: time.Millisecond,
		Run:  func(context.Context) (*Manifest, error) { return nil, errHeld },
		Busy: func(err error) bool { return errors.Is(err, errHeld) }})
	j.runOnce(context.Background(), time.Now)
	scrape(t, j, "/healthz", 200)
	if body := scrape(t, j, "/metrics", 200); !strings.Contains(body, `ziti_bootstrap_backup_runs_total{result="skipped"} 1`) {
		t.Fatal("skipped run not counted")
	}
}

// mustJob is NewJob, failing the test on an error.
func mustJob(t *testing.T, cfg JobConfig) *Job {
	t.Helper()
	j, err := NewJob(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// failing is a run that counts its calls in calls and fails every one with msg.
func failing(calls *int, msg string) func(context.Context) (*Manifest, error) {
	return func(context.Context) (*Manifest, error) {
		*calls++
		return nil, errors.New(msg)
	}
}

// A failed job reports healthy while a restore runs in its container (InUse), so Swarm does not replace the
// container and kill the restore; unhealthy again once it has ended.
func TestJobFailedStaysHealthyWhileARestoreRunsBesideIt(t *testing.T) {
	restoring := "a restore (pid 42)"
	calls := 0
	j := mustJob(t, JobConfig{Schedule: "@every 1h", Retries: 1, Backoff: time.Millisecond, Run: failing(&calls, "the controller is stopped"),
		InUse: func() string { return restoring }})
	j.runOnce(context.Background(), time.Now)
	if body := scrape(t, j, "/healthz", 200); !strings.Contains(body, "a restore (pid 42)") || !strings.Contains(body, "the controller is stopped") {
		t.Fatalf("health during a restore: %s", body)
	}
	restoring = ""
	if body := scrape(t, j, "/healthz", 503); !strings.Contains(body, "the controller is stopped") {
		t.Fatalf("health after the restore: %s", body)
	}
}
