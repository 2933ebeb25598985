package s3store_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/backup"
	"github.com/ziti-bootstrap/ziti-bootstrap/backup/backuptest"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/invalid"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/redact"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/s3store"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/s3store/s3test"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
)

// client returns a client of a new bucket on the test bed's S3 server, removed (with its objects) at the end.
func client(t *testing.T, counter *calls.Counter) *s3store.Client {
	t.Helper()
	c := s3test.Client(t, "zb-s3store-", counter)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	created, err := c.EnsureBucket(ctx)
	if err != nil || !created {
		t.Fatalf("EnsureBucket: created=%v err=%v", created, err)
	}
	if again, err := c.EnsureBucket(ctx); err != nil || again {
		t.Fatalf("EnsureBucket twice: created=%v err=%v", again, err)
	}
	return c
}

// The shared Store suite, on the real S3 server, with objects of three parts.
func TestStoreSuite(t *testing.T) {
	counter := calls.New()
	c := client(t, counter)
	backuptest.StoreSuite(t, backup.NewS3Store(c), "suite/", 2*s3store.DefaultPartSize+12345)
	if counter.Writes() == 0 {
		t.Fatal("no S3 write was counted")
	}
}

func TestWrongCredentialsAreInvalidConfiguration(t *testing.T) {
	in := testbed.Require(t, "s3")
	u, _ := url.Parse(in.S3.Endpoint)
	c, err := s3store.New(s3store.Options{Endpoint: u, Region: in.S3.Region, Bucket: "zb-nope", AccessKey: in.S3.AccessKey,
		SecretKey: redact.NewSecret("wrong")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.EnsureBucket(context.Background())
	if !invalid.Is(err) || !errors.Is(err, s3store.ErrCredentialsRejected) || !strings.Contains(err.Error(), "S3_SECRET_ACCESS_KEY") {
		t.Fatalf("EnsureBucket with a wrong secret: %v; want an invalid-configuration error naming the variables", err)
	}
}

func TestPartSizeBounds(t *testing.T) {
	u, _ := url.Parse("http://127.0.0.1:1")
	for _, ps := range []int64{1 << 20, 6 << 30} {
		if _, err := s3store.New(s3store.Options{Endpoint: u, Bucket: "b", PartSize: ps}); err == nil {
			t.Errorf("part size %d accepted", ps)
		}
	}
}
