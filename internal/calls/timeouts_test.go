package calls_test

import (
	"context"
	"net/http"
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
	callfaults.EndsAtTheAnswerTimeout(t, func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		_, err := hc.Do(req)
		return err
	})
}
