// Package s3test gives integration tests throw-away buckets on the test bed's S3 server (internal/testbed).
package s3test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/redact"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/s3store"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
)

// Client returns a client of the test bed's S3 server for a bucket of its own, named prefix plus random hex,
// counting calls on counter (nil: none). The bucket is not made (EnsureBucket does); it is emptied and removed,
// if it is there, when the test ends.
func Client(t testing.TB, prefix string, counter *calls.Counter) *s3store.Client {
	t.Helper()
	in := testbed.Require(t, "s3")
	u, err := url.Parse(in.S3.Endpoint)
	testutil.Must(t, err)
	c, err := s3store.New(s3store.Options{Endpoint: u, Region: in.S3.Region, Bucket: prefix + testutil.RandHex(t, 4),
		AccessKey: in.S3.AccessKey, SecretKey: redact.NewSecret(in.S3.SecretKey), Counter: counter})
	testutil.Must(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		objs, _ := c.List(ctx, "")
		for _, o := range objs {
			_ = c.Remove(ctx, o.Key)
		}
		_ = c.RemoveBucket(ctx)
	})
	return c
}
