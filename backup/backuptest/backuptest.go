// Package backuptest has an in-memory backup.Store for tests, and the test suite every Store implementation
// must pass.
package backuptest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/backup"
)

// MemStore is a Store in memory. Now, when set, dates new objects.
type MemStore struct {
	mu   sync.Mutex
	objs map[string]memObj
	Now  func() time.Time
}

type memObj struct {
	data []byte
	mod  time.Time
}

var _ backup.Store = (*MemStore)(nil)

// NewMemStore returns an empty store.
func NewMemStore() *MemStore { return &MemStore{objs: map[string]memObj{}} }

func (m *MemStore) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *MemStore) Put(ctx context.Context, key string, r io.Reader) (backup.ObjectInfo, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return backup.ObjectInfo{}, fmt.Errorf("put mem://%s: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return backup.ObjectInfo{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o := memObj{data: b, mod: m.now()}
	m.objs[key] = o
	return backup.ObjectInfo{Key: key, Size: int64(len(b)), Modified: o.mod}, nil
}

func (m *MemStore) Get(_ context.Context, key string) (io.ReadCloser, backup.ObjectInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objs[key]
	if !ok {
		return nil, backup.ObjectInfo{}, fmt.Errorf("get mem://%s: %w", key, backup.ErrNotExist)
	}
	return io.NopCloser(bytes.NewReader(o.data)), backup.ObjectInfo{Key: key, Size: int64(len(o.data)), Modified: o.mod}, nil
}

func (m *MemStore) List(_ context.Context, prefix string) ([]backup.ObjectInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []backup.ObjectInfo
	for k, o := range m.objs {
		if strings.HasPrefix(k, prefix) {
			out = append(out, backup.ObjectInfo{Key: k, Size: int64(len(o.data)), Modified: o.mod})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (m *MemStore) Remove(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objs, key)
	return nil
}

func (m *MemStore) Where(key string) string { return "mem://" + key }

// Edit replaces the data of key with what f returns (to corrupt it in tests).
func (m *MemStore) Edit(key string, f func([]byte) []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o := m.objs[key]
	o.data = f(append([]byte(nil), o.data...))
	m.objs[key] = o
}

// Keys lists every key.
func (m *MemStore) Keys() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k := range m.objs {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// failingReader yields n random bytes, then fails.
type failingReader struct{ n int }

var errSource = errors.New("the source failed")

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errSource
	}
	if len(p) > f.n {
		p = p[:f.n]
	}
	_, _ = rand.Read(p)
	f.n -= len(p)
	return len(p), nil
}

// StoreSuite checks the Store contract on s, under prefix (which it leaves empty). big is the size of the large
// object it streams: above the store's part size, to exercise multipart uploads.
func StoreSuite(t *testing.T, s backup.Store, prefix string, big int) {
	ctx := context.Background()
	data := make([]byte, big)
	_, _ = rand.Read(data)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	get := func(key string) []byte {
		t.Helper()
		rc, info, err := s.Get(ctx, key)
		must(err)
		defer rc.Close()
		b, err := io.ReadAll(rc)
		must(err)
		if info.Size != int64(len(b)) {
			t.Fatalf("Get(%s): info says %d bytes, read %d", key, info.Size, len(b))
		}
		return b
	}

	t.Run("PutGetBig", func(t *testing.T) {
		info, err := s.Put(ctx, prefix+"a/big", io.MultiReader(bytes.NewReader(data))) // no size known
		must(err)
		if info.Size != int64(big) {
			t.Fatalf("Put: size %d, want %d", info.Size, big)
		}
		if !bytes.Equal(get(prefix+"a/big"), data) {
			t.Fatal("Get returned other bytes than Put stored")
		}
	})
	t.Run("PutSmallAndEmpty", func(t *testing.T) {
		_, err := s.Put(ctx, prefix+"a/small", strings.NewReader("hello"))
		must(err)
		_, err = s.Put(ctx, prefix+"b/empty", strings.NewReader(""))
		must(err)
		if got := string(get(prefix + "a/small")); got != "hello" {
			t.Fatalf("small object: %q", got)
		}
		if got := get(prefix + "b/empty"); len(got) != 0 {
			t.Fatalf("empty object: %d bytes", len(got))
		}
	})
	t.Run("Overwrite", func(t *testing.T) {
		_, err := s.Put(ctx, prefix+"a/small", strings.NewReader("again"))
		must(err)
		if got := string(get(prefix + "a/small")); got != "again" {
			t.Fatalf("overwritten object: %q", got)
		}
	})
	t.Run("FailedPutStoresNothing", func(t *testing.T) {
		for _, n := range []int{10, big + 10} {
			key := fmt.Sprintf("%sfail/%d", prefix, n)
			if _, err := s.Put(ctx, key, &failingReader{n: n}); !errors.Is(err, errSource) {
				t.Fatalf("Put from a failing reader (%d bytes): error %v, want the reader's", n, err)
			}
			if _, _, err := s.Get(ctx, key); !backup.IsNotExist(err) {
				t.Fatalf("after a failed Put of %d bytes, Get: %v; want not-exist", n, err)
			}
		}
	})
	t.Run("List", func(t *testing.T) {
		objs, err := s.List(ctx, prefix+"a/")
		must(err)
		var keys []string
		for _, o := range objs {
			keys = append(keys, strings.TrimPrefix(o.Key, prefix))
			if o.Modified.IsZero() {
				t.Errorf("%s: no modification time", o.Key)
			}
		}
		if strings.Join(keys, " ") != "a/big a/small" {
			t.Fatalf("List(a/) = %v", keys)
		}
		all, err := s.List(ctx, prefix)
		must(err)
		if len(all) != 3 {
			t.Fatalf("List(prefix) = %d objects, want 3: %v", len(all), all)
		}
	})
	t.Run("NotExist", func(t *testing.T) {
		_, _, err := s.Get(ctx, prefix+"nope")
		if !backup.IsNotExist(err) {
			t.Fatalf("Get(missing): %v; want not-exist", err)
		}
		if !strings.Contains(err.Error(), "nope") {
			t.Fatalf("Get(missing) error does not name the key: %v", err)
		}
		must(s.Remove(ctx, prefix+"nope"))
	})
	t.Run("Remove", func(t *testing.T) {
		for _, k := range []string{"a/big", "a/small", "b/empty"} {
			must(s.Remove(ctx, prefix+k))
		}
		objs, err := s.List(ctx, prefix)
		must(err)
		if len(objs) != 0 {
			t.Fatalf("after removing everything, List = %v", objs)
		}
	})
	if !strings.Contains(s.Where("x/y"), "x/y") {
		t.Fatalf("Where(x/y) = %q does not name the key", s.Where("x/y"))
	}
}
