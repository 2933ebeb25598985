package s3store

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls/callfaults"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/redact"
)

// An S3 endpoint that accepts the connection and never answers fails the call after the answer timeout,
// instead of holding the run until the caller's context ends.
func TestStoreThatNeverAnswersTimesOut(t *testing.T) {
	srv := callfaults.HangingServer(t, false)
	u, _ := url.Parse(srv.URL)
	c, err := New(Options{Endpoint: u, Region: "us-east-1", Bucket: "bucket", AccessKey: "k", SecretKey: redact.NewSecret("s"), MaxRetries: 1,
		AnswerTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	callfaults.EndsAtTheAnswerTimeout(t, func(ctx context.Context) error {
		_, err := c.Stat(ctx, "x")
		return err
	})
}
