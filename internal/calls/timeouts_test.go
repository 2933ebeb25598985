package calls_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls/callfaults"
)

// A server that never answers fails the call after the answer timeout, not when the caller's context (here a
// minute away; in a run, possibly none) ends.
func TestBoundEndsACallToAServerThatNeverAnswers(t *testing.T) {
	srv := callfaults.HangingServer(t, false)
	hc := &http.Client{Transport: calls.Transport(calls.New(), "test", calls.Bound(http.DefaultTransport.(*http.Transport).Clone(), 300*time.Millisecond))}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	t0 := time.Now()
	_, err := hc.Do(req)
	if err == nil || !strings.Contains(err.Error(), "timeout awaiting response headers") || ctx.Err() != nil {
		t.Fatalf("after %s: %v; want the answer timeout, before the caller's deadline", time.Since(t0), err)
	}
}
