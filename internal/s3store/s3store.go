// Package s3store is ziti-bootstrap's client of S3-compatible object storage (backups).
package s3store

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
)

// Options say where the store is and how to sign requests.
type Options struct {
	Endpoint  *url.URL
	Region    string
	Bucket    string
	AccessKey string
	SecretKey config.Secret
	Counter   *calls.Counter
}

// Client talks to one S3-compatible endpoint; every call is counted.
type Client struct {
	api    *minio.Client
	bucket string
	where  string
}

// New returns a client. It does not connect yet.
func New(o Options) (*Client, error) {
	base, _ := http.DefaultTransport.(*http.Transport)
	api, err := minio.New(o.Endpoint.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(o.AccessKey, o.SecretKey.Value(), ""),
		Secure:       o.Endpoint.Scheme == "https",
		Region:       o.Region,
		BucketLookup: minio.BucketLookupPath,
		Transport:    calls.Transport(o.Counter, "s3", base.Clone()),
	})
	if err != nil {
		return nil, fmt.Errorf("S3 client for %s: %w", o.Endpoint, err)
	}
	return &Client{api: api, bucket: o.Bucket, where: o.Endpoint.String()}, nil
}

// Buckets lists the bucket names the credentials can see. Rejected credentials are an invalid-configuration
// error naming the variables, and are not retried.
func (c *Client) Buckets(ctx context.Context) ([]string, error) {
	bs, err := c.api.ListBuckets(ctx)
	if err != nil {
		resp := minio.ToErrorResponse(err)
		switch resp.Code {
		case "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied":
			return nil, wait.Permanent(&config.Error{Problems: []config.Problem{{Var: "S3_ACCESS_KEY_ID/S3_SECRET_ACCESS_KEY",
				Msg: fmt.Sprintf("%s refused the credentials (%s); check the key pair", c.where, resp.Code)}}})
		}
		return nil, fmt.Errorf("list buckets at %s: %w", c.where, err)
	}
	names := make([]string, len(bs))
	for i, b := range bs {
		names[i] = b.Name
	}
	return names, nil
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
