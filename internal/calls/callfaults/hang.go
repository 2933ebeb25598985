package callfaults

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// HangingServer returns a server (TLS when tls is set) that accepts every request and never answers, until
// the test ends: the sick server of the timeout tests.
func HangingServer(t testing.TB, tls bool) *httptest.Server {
	t.Helper()
	done := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-done:
		case <-r.Context().Done():
		}
	})
	srv := httptest.NewUnstartedServer(h)
	if tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(func() { close(done); srv.Close() })
	return srv
}

// EndsAtTheAnswerTimeout runs call with a context a minute away (in a run, the caller's context may have none)
// and fails t unless the call fails with the answer timeout ("timeout awaiting response headers") before that
// context ends: what a client must do with a HangingServer.
func EndsAtTheAnswerTimeout(t testing.TB, call func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t0 := time.Now()
	err := call(ctx)
	if err == nil || !strings.Contains(err.Error(), "timeout awaiting response headers") || ctx.Err() != nil {
		t.Fatalf("after %s: %v; want the answer timeout, before the caller's deadline", time.Since(t0), err)
	}
}
