// Package s3store is ziti-bootstrap's client of S3-compatible object storage (backups).
package s3store

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/invalid"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/redact"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
)

// Options say where the store is and how to sign requests.
type Options struct {
	Endpoint  *url.URL
	Region    string
	Bucket    string
	AccessKey string
	SecretKey redact.Secret
	Counter   *calls.Counter
	// PartSize is the size of each part of a streaming upload (default 6 MiB, at least 5 MiB; an object has at
	// most 10000 parts), and Concurrency how many parts are uploaded at once (default 3). Streaming uploads hold
	// (Concurrency+1) × PartSize bytes of buffers (24 MiB by default), shared by all uploads of a client, and
	// nothing more of an object.
	PartSize    int64
	Concurrency int
	// MaxRetries bounds the client's own retries of a failed request (default: minio-go's, 10). A caller that
	// waits with its own backoff (a reachability probe) sets 1, so its last error is the real one (e.g. connection
	// refused) rather than the deadline the client's retries ran into.
	MaxRetries int
	// AnswerTimeout bounds the wait for each answer (calls.AnswerTimeout when 0).
	AnswerTimeout time.Duration
}

// Client talks to one S3-compatible endpoint; every call is counted.
type Client struct {
	api         *minio.Client
	core        minio.Core
	bucket      string
	region      string
	where       string
	partSize    int64
	concurrency int
	bufs        chan []byte // part buffers shared by all uploads of this client
	mu          sync.Mutex
	allocated   int // part buffers made so far, at most cap(bufs)
}

// New returns a client. It does not connect yet.
func New(o Options) (*Client, error) {
	base, _ := http.DefaultTransport.(*http.Transport)
	api, err := minio.New(o.Endpoint.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(o.AccessKey, o.SecretKey.Value(), ""),
		Secure:       o.Endpoint.Scheme == "https",
		Region:       o.Region,
		BucketLookup: minio.BucketLookupPath,
		Transport:    calls.Transport(o.Counter, "s3", calls.Bound(base.Clone(), o.AnswerTimeout)),
		MaxRetries:   o.MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("S3 client for %s: %w", o.Endpoint, err)
	}
	if o.Bucket == "" {
		return nil, fmt.Errorf("S3 client for %s: no bucket given", o.Endpoint)
	}
	c := &Client{api: api, core: minio.Core{Client: api}, bucket: o.Bucket, region: o.Region, where: o.Endpoint.String(),
		partSize: o.PartSize, concurrency: o.Concurrency}
	if c.partSize == 0 {
		c.partSize = DefaultPartSize
	}
	if c.partSize < MinPartSize || c.partSize > MaxPartSize {
		return nil, fmt.Errorf("S3 part size %d: must be between %d and %d bytes", c.partSize, MinPartSize, MaxPartSize)
	}
	if c.concurrency <= 0 {
		c.concurrency = DefaultConcurrency
	}
	c.bufs = make(chan []byte, c.concurrency+1)
	return c, nil
}

// Buckets lists the bucket names the credentials can see. Rejected credentials are an invalid-configuration
// error naming the variables, and are not retried.
func (c *Client) Buckets(ctx context.Context) ([]string, error) {
	bs, err := c.api.ListBuckets(ctx)
	if err != nil {
		if cerr := c.credentialsError(err); cerr != nil {
			return nil, cerr
		}
		return nil, fmt.Errorf("list buckets at %s: %w", c.where, err)
	}
	names := make([]string, len(bs))
	for i, b := range bs {
		names[i] = b.Name
	}
	return names, nil
}

// ErrCredentialsRejected is the cause (errors.Is) of the error of a request the store refused for its
// credentials (unknown key, wrong secret, access denied).
var ErrCredentialsRejected = errors.New("credentials rejected")

// credentialsError turns a refusal of the key pair into a permanent invalid-configuration error; nil otherwise.
func (c *Client) credentialsError(err error) error {
	resp := minio.ToErrorResponse(err)
	switch resp.Code {
	case "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied":
		return wait.Permanent(&invalid.Error{Problems: []invalid.Problem{{Var: "S3_ACCESS_KEY_ID/S3_SECRET_ACCESS_KEY",
			Msg: fmt.Sprintf("%s refused the credentials (%s); check the key pair and that it may use bucket %q", c.where, resp.Code, c.bucket)}}, Cause: ErrCredentialsRejected})
	}
	return nil
}

// Describe summarises the store for a report: its buckets, and whether the configured one exists.
func (c *Client) Describe(ctx context.Context) (string, error) {
	names, err := c.Buckets(ctx)
	if err != nil {
		return "", err
	}
	state := "missing (created by the first backup)"
	for _, n := range names {
		if n == c.bucket {
			state = "present"
		}
	}
	return fmt.Sprintf("%d bucket(s) [%s]; bucket %q %s", len(names), strings.Join(names, " "), c.bucket, state), nil
}
