package wait

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestForSucceedsAfterRetries(t *testing.T) {
	n := 0
	err := For(context.Background(), Target{What: "thing", Where: "here", Deadline: 5 * time.Second, Initial: time.Millisecond},
		func(context.Context) error {
			n++
			if n < 3 {
				return errors.New("not yet")
			}
			return nil
		})
	if err != nil || n != 3 {
		t.Fatalf("err=%v attempts=%d, want nil after 3", err, n)
	}
}

// Without waiting, For makes one attempt: its error comes back at once, a success is a success.
func TestForWithoutWaitingMakesOneAttempt(t *testing.T) {
	ctx := WithoutWaiting(context.Background())
	n := 0
	t0 := time.Now()
	err := For(ctx, Target{What: "thing", Where: "here", Deadline: time.Minute, Initial: time.Second}, func(context.Context) error {
		n++
		return errors.New("not yet")
	})
	if err == nil || !strings.Contains(err.Error(), "not yet") || n != 1 || time.Since(t0) > 30*time.Second {
		t.Fatalf("err=%v attempts=%d after %s, want the first attempt's error at once", err, n, time.Since(t0))
	}
	if err := For(ctx, Target{Deadline: time.Minute}, func(context.Context) error { return nil }); err != nil {
		t.Fatalf("a first attempt that succeeds: %v", err)
	}
}

func TestForDeadlineNamesWhatWhereAndLastError(t *testing.T) {
	var progress int
	err := For(context.Background(), Target{What: "SPIRE server", Where: "unix:///x.sock", Deadline: 300 * time.Millisecond,
		Initial: 10 * time.Millisecond, Max: 20 * time.Millisecond,
		Progress: func(string, string, int, time.Duration, error) { progress++ }},
		func(context.Context) error { return errors.New("connection refused") })
	var ue *UnreachableError
	if !errors.As(err, &ue) {
		t.Fatalf("got %T %v, want *UnreachableError", err, err)
	}
	for _, want := range []string{"SPIRE server", "unix:///x.sock", "connection refused"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if ue.Attempts < 3 || progress != ue.Attempts {
		t.Errorf("attempts=%d progress calls=%d", ue.Attempts, progress)
	}
}

func TestForPermanentStopsAtOnce(t *testing.T) {
	n := 0
	bad := errors.New("401 invalid credentials")
	err := For(context.Background(), Target{What: "x", Where: "y", Deadline: 5 * time.Second},
		func(context.Context) error { n++; return Permanent(bad) })
	if !errors.Is(err, bad) || n != 1 {
		t.Fatalf("err=%v n=%d; want the permanent error after one attempt", err, n)
	}
	var ue *UnreachableError
	if errors.As(err, &ue) {
		t.Fatal("a permanent error must not be reported as unreachable")
	}
}

// The deadline ends an attempt in progress, whose error is then the deadline's; the server's own last error
// (a 503 here) is what the caller is told. Deterministic: the first attempt fails at once, every later one
// waits for the deadline.
func TestForKeepsTheServersErrorAtTheDeadline(t *testing.T) {
	n := 0
	err := For(context.Background(), Target{What: "Keycloak", Where: "http://kc", Deadline: 300 * time.Millisecond, Initial: time.Millisecond},
		func(ctx context.Context) error {
			n++
			if n == 1 {
				return errors.New("HTTP 503 Service Unavailable")
			}
			<-ctx.Done()
			return fmt.Errorf("Get \"http://kc/realms/master\": %w", ctx.Err())
		})
	var ue *UnreachableError
	if !errors.As(err, &ue) || !strings.Contains(ue.Last.Error(), "503") || strings.Contains(err.Error(), "deadline exceeded") {
		t.Fatalf("err = %v; want unreachable with the server's last error (503), not the deadline", err)
	}
}

// A wake starts the next attempt without waiting out the pause; a closed wake leaves the pauses as they are.
func TestForWakeCutsThePauseShort(t *testing.T) {
	wake := make(chan struct{}, 1)
	n := 0
	done := make(chan error, 1)
	go func() {
		done <- For(context.Background(), Target{What: "thing", Where: "here", Deadline: time.Hour, Initial: time.Hour, Max: time.Hour, Wake: wake},
			func(context.Context) error {
				n++
				if n < 2 {
					wake <- struct{}{}
					return errors.New("not yet")
				}
				return nil
			})
	}()
	select {
	case err := <-done:
		if err != nil || n != 2 {
			t.Fatalf("err=%v attempts=%d, want nil after 2", err, n)
		}
	case <-time.After(time.Minute):
		t.Fatal("the wake did not start the second attempt (the pause is an hour)")
	}
	closed := make(chan struct{})
	close(closed)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	m := 0
	err := For(ctx, Target{What: "thing", Where: "here", Deadline: time.Hour, Initial: time.Hour, Max: time.Hour, Wake: closed},
		func(context.Context) error { m++; return errors.New("never") })
	var ue *UnreachableError
	if m != 1 || !errors.As(err, &ue) {
		t.Fatalf("closed wake: %d attempts, err %v; want 1 attempt, then unreachable at the context's end", m, err)
	}
}
