package backup

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/s3store"
)

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Key      string
	Size     int64
	Modified time.Time
}

// Store is where snapshot sets live: an S3 bucket (NewS3Store) or, in tests, memory (backuptest.MemStore).
// Every implementation passes backuptest.StoreSuite.
type Store interface {
	// Put stores all of r under key, streaming: r's size is not known in advance and r is never held whole in
	// memory. A failed Put leaves no new object under key. The returned info is what the store reports after the
	// write, and its Size has been compared with the bytes read from r.
	Put(ctx context.Context, key string, r io.Reader) (ObjectInfo, error)
	// Get opens key. An absent key is an error satisfying IsNotExist.
	Get(ctx context.Context, key string) (io.ReadCloser, ObjectInfo, error)
	// List returns the objects whose keys start with prefix, at any depth.
	List(ctx context.Context, prefix string) ([]ObjectInfo, error)
	// Remove deletes key; an absent key is not an error.
	Remove(ctx context.Context, key string) error
	// Where names key for messages, e.g. s3://bucket/key.
	Where(key string) string
}

// ErrNotExist is matched (errors.Is) by a Store's error for an object that does not exist.
var ErrNotExist = errors.New("object does not exist")

// IsNotExist reports whether err says an object does not exist.
func IsNotExist(err error) bool { return errors.Is(err, ErrNotExist) }

// NewS3Store returns the Store of c's bucket.
func NewS3Store(c *s3store.Client) Store { return &s3{c: c} }

// s3 adapts the S3 client to Store.
type s3 struct{ c *s3store.Client }

var _ Store = (*s3)(nil)

func (s *s3) Put(ctx context.Context, key string, r io.Reader) (ObjectInfo, error) {
	o, err := s.c.Put(ctx, key, r)
	return info(o), classify(err)
}

func (s *s3) Get(ctx context.Context, key string) (io.ReadCloser, ObjectInfo, error) {
	rc, o, err := s.c.Get(ctx, key)
	return rc, info(o), classify(err)
}

func (s *s3) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	os, err := s.c.List(ctx, prefix)
	if err != nil {
		return nil, classify(err)
	}
	out := make([]ObjectInfo, len(os))
	for i, o := range os {
		out[i] = info(o)
	}
	return out, nil
}

func (s *s3) Remove(ctx context.Context, key string) error { return classify(s.c.Remove(ctx, key)) }

func (s *s3) Where(key string) string { return s.c.URL(key) }

func info(o s3store.Object) ObjectInfo {
	return ObjectInfo{Key: o.Key, Size: o.Size, Modified: o.Modified}
}

func classify(err error) error {
	if err != nil && s3store.IsNotExist(err) {
		return notExist{err}
	}
	return err
}

// notExist keeps the store's message and makes it match ErrNotExist.
type notExist struct{ err error }

func (e notExist) Error() string   { return e.err.Error() }
func (e notExist) Unwrap() []error { return []error{e.err, ErrNotExist} }
