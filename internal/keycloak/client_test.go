package keycloak

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/invalid"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/redact"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
)

const secretPassword = "s3cret-Do-Not-Print"

func fakeOptions(t *testing.T, h http.HandlerFunc, c *calls.Counter) Options {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return Options{URL: u, AdminUser: "admin", AdminPassword: redact.NewSecret(secretPassword), Counter: c}
}

func TestConnect503IsUnreachableNamingKeycloakAndStatus(t *testing.T) {
	opts := fakeOptions(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "starting", http.StatusServiceUnavailable)
	}, nil)
	_, _, err := Connect(context.Background(), opts, wait.Target{Deadline: 700 * time.Millisecond, Initial: 20 * time.Millisecond, Max: 50 * time.Millisecond})
	var ue *wait.UnreachableError
	if !errors.As(err, &ue) {
		t.Fatalf("got %T %v, want *wait.UnreachableError", err, err)
	}
	t.Log(err)
	for _, want := range []string{"Keycloak", opts.URL.String(), "503"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if ue.Attempts < 2 {
		t.Errorf("attempts = %d: a 503 must be retried", ue.Attempts)
	}
}

func TestConnectionRefusedIsRetryable(t *testing.T) {
	addr := testutil.FreeAddr(t)
	u, _ := url.Parse("http://" + addr)
	_, err := New(context.Background(), Options{URL: u, AdminUser: "admin", AdminPassword: redact.NewSecret(secretPassword)})
	var perm *backoff.PermanentError
	if err == nil || errors.As(err, &perm) || invalid.Is(err) {
		t.Fatalf("got %v; want a plain retryable error", err)
	}
	if !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "refused") {
		t.Errorf("error %q should name %s and the refusal", err, addr)
	}
}

func TestInvalidGrantIsInvalidConfigAndPermanent(t *testing.T) {
	attempts := 0
	opts := fakeOptions(t, func(w http.ResponseWriter, r *http.Request) {
		attempts++
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"invalid_grant","error_description":"Invalid user credentials"}`))
	}, nil)
	_, _, err := Connect(context.Background(), opts, wait.Target{Deadline: 5 * time.Second})
	checkBadPassword(t, err)
	if attempts != 1 {
		t.Errorf("attempts = %d, want 1: a rejected password is not retried", attempts)
	}
}

func checkBadPassword(t *testing.T, err error) {
	t.Helper()
	t.Log(err)
	if !invalid.Is(err) || !errors.Is(err, ErrLoginRejected) {
		t.Fatalf("got %T %v; want an invalid-configuration error caused by ErrLoginRejected", err, err)
	}
	var ue *wait.UnreachableError
	if errors.As(err, &ue) {
		t.Fatal("a rejected password must not be reported as unreachable")
	}
	if !strings.Contains(err.Error(), "KEYCLOAK_ADMIN_PASSWORD") {
		t.Errorf("error %q does not name KEYCLOAK_ADMIN_PASSWORD", err)
	}
	if strings.Contains(err.Error(), secretPassword) {
		t.Errorf("error %q reveals the password", err)
	}
}

func TestEveryCallIsCountedTokenRequestsAsReads(t *testing.T) {
	c := calls.New()
	opts := fakeOptions(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, tokenPath):
			_, _ = w.Write([]byte(`{"access_token":"t","expires_in":300}`))
		case r.Method == http.MethodPut:
			w.WriteHeader(http.StatusNoContent)
		default:
			_, _ = w.Write([]byte(`{"realm":"r","enabled":true,"attributes":{"a":"1"}}`))
		}
	}, c)
	kc, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := kc.GetRealm(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if err := kc.UpdateRealm(ctx, Realm{Name: "r", DisplayName: "x", Attributes: map[string]string{"b": "2"}}, RealmDisplayName, AttributeField("b")); err != nil {
		t.Fatal(err)
	}
	per, log := c.Snapshot()
	if per[System] != 1 || len(log) != 1 || log[0] != "keycloak PUT /admin/realms/r" {
		t.Fatalf("writes %v %v; want exactly the realm PUT (login and reads are not writes)", per, log)
	}
	if got := c.Systems(); len(got) != 1 || got[0] != System {
		t.Fatalf("systems %v", got)
	}
}

func TestExpiredTokenLogsInAgain(t *testing.T) {
	logins := 0
	opts := fakeOptions(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, tokenPath) {
			logins++
			_, _ = w.Write([]byte(`{"access_token":"t` + string(rune('0'+logins)) + `","expires_in":300}`))
			return
		}
		if r.Header.Get("Authorization") == "Bearer t1" && logins == 1 {
			// the first session ended early (e.g. Keycloak restarted)
			http.Error(w, `{"error":"HTTP 401 Unauthorized"}`, http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte(`{"systemInfo":{"version":"26.4.7"}}`))
	}, nil)
	kc, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	v, err := kc.Ping(context.Background())
	if err != nil || v != "26.4.7" || logins != 2 {
		t.Fatalf("after a 401: version %q err %v logins %d; want one more login and success", v, err, logins)
	}
	kc.mu.Lock()
	kc.expires = time.Now().Add(time.Second) // about to expire
	kc.mu.Unlock()
	if _, err := kc.Ping(context.Background()); err != nil || logins != 3 {
		t.Fatalf("near expiry: err %v logins %d; want a fresh login first", err, logins)
	}
}
