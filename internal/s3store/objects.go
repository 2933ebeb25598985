package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
)

const abortTimeout = 30 * time.Second

// Object is one stored object.
type Object struct {
	Key      string
	Size     int64
	Modified time.Time
	ETag     string
}

// ErrNotExist is wrapped by the errors of Get, Stat and Remove for an object (or bucket) that does not exist.
var ErrNotExist = errors.New("does not exist")

// IsNotExist reports whether err says the object or bucket does not exist.
func IsNotExist(err error) bool { return errors.Is(err, ErrNotExist) }

// Bucket is the configured bucket's name.
func (c *Client) Bucket() string { return c.bucket }

// URL names key for messages: s3://bucket/key.
func (c *Client) URL(key string) string { return "s3://" + c.bucket + "/" + key }

// EnsureBucket creates the configured bucket unless it exists, and reports whether it created it.
func (c *Client) EnsureBucket(ctx context.Context) (created bool, err error) {
	ok, err := c.api.BucketExists(ctx, c.bucket)
	if err != nil {
		if cerr := c.credentialsError(err); cerr != nil {
			return false, cerr
		}
		return false, fmt.Errorf("check bucket %q at %s: %w", c.bucket, c.where, err)
	}
	if ok {
		return false, nil
	}
	if err := c.api.MakeBucket(ctx, c.bucket, minio.MakeBucketOptions{Region: c.region}); err != nil {
		switch minio.ToErrorResponse(err).Code {
		case "BucketAlreadyOwnedByYou", "BucketAlreadyExists":
			return false, nil // made meanwhile by a concurrent run
		}
		if cerr := c.credentialsError(err); cerr != nil {
			return false, cerr
		}
		return false, fmt.Errorf("create bucket %q at %s: %w", c.bucket, c.where, err)
	}
	return true, nil
}

// Get opens key for reading. The object's size is known before the first byte is read; a reader that ends before
// it returns io.ErrUnexpectedEOF.
func (c *Client) Get(ctx context.Context, key string) (io.ReadCloser, Object, error) {
	obj, err := c.api.GetObject(ctx, c.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, Object{}, c.wrap("get", key, err)
	}
	st, err := obj.Stat()
	if err != nil {
		obj.Close()
		return nil, Object{}, c.wrap("get", key, err)
	}
	return obj, fromInfo(st), nil
}

// Stat describes key.
func (c *Client) Stat(ctx context.Context, key string) (Object, error) {
	st, err := c.api.StatObject(ctx, c.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return Object{}, c.wrap("stat", key, err)
	}
	return fromInfo(st), nil
}

// List returns every object whose key starts with prefix (at any depth), sorted by key.
func (c *Client) List(ctx context.Context, prefix string) ([]Object, error) {
	var out []Object
	for o := range c.api.ListObjects(ctx, c.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, c.wrap("list", prefix+"*", o.Err)
		}
		if strings.HasSuffix(o.Key, "/") && o.Size == 0 {
			continue // a directory marker some servers report
		}
		out = append(out, fromInfo(o))
	}
	return out, nil
}

// Remove deletes key. Deleting an object that does not exist is not an error (S3 semantics).
func (c *Client) Remove(ctx context.Context, key string) error {
	if err := c.api.RemoveObject(ctx, c.bucket, key, minio.RemoveObjectOptions{}); err != nil {
		return c.wrap("remove", key, err)
	}
	return nil
}

func fromInfo(o minio.ObjectInfo) Object {
	return Object{Key: o.Key, Size: o.Size, Modified: o.LastModified, ETag: strings.Trim(o.ETag, `"`)}
}

// wrap names the operation and object, classifies not-found and refused credentials.
func (c *Client) wrap(op, key string, err error) error {
	if cerr := c.credentialsError(err); cerr != nil {
		return fmt.Errorf("%s %s: %w", op, c.URL(key), cerr)
	}
	resp := minio.ToErrorResponse(err)
	switch {
	case resp.Code == minio.NoSuchKey, resp.Code == minio.NoSuchBucket, resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%s %s: %w (%s)", op, c.URL(key), ErrNotExist, orStatus(resp))
	}
	return fmt.Errorf("%s %s at %s: %w", op, c.URL(key), c.where, err)
}

func orStatus(r minio.ErrorResponse) string {
	if r.Code != "" {
		return r.Code
	}
	return http.StatusText(r.StatusCode)
}

// RemoveBucket deletes the configured bucket, which must be empty.
func (c *Client) RemoveBucket(ctx context.Context) error {
	if err := c.api.RemoveBucket(ctx, c.bucket); err != nil {
		return c.wrap("remove bucket", "", err)
	}
	return nil
}
