package callfaults

import (
	"net/http"
	"net/http/httptest"
	"testing"
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
