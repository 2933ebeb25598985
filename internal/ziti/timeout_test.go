package ziti

import (
	"context"
	"encoding/pem"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls/callfaults"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/redact"
)

// A controller that accepts the connection and never answers fails the login after the answer timeout, instead
// of holding the run (and its lock) until the caller's context ends.
func TestControllerThatNeverAnswersTimesOut(t *testing.T) {
	srv := callfaults.HangingServer(t, true)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(srv.URL)
	callfaults.EndsAtTheAnswerTimeout(t, func(ctx context.Context) error {
		_, err := New(ctx, Options{URL: u, User: "admin", Password: redact.NewSecret("x"), CAFile: ca, AnswerTimeout: 300 * time.Millisecond})
		return err
	})
}
