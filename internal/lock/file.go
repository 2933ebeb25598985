package lock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/invalid"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
)

// File is the single-host fallback: an exclusive flock(2) on a local file. It keeps out runs on this host only
// (other hosts do not see it; it is not meant for network file systems). The kernel frees the lock when its
// holder exits or dies, so it never needs to expire. While held, the file holds the holder as JSON, for the
// message of a run that finds it held.
type File struct {
	path string
	mu   sync.Mutex
	f    *os.File // open while held
}

// NewFile returns the lock on the file path (created when missing; never removed).
func NewFile(path string) *File { return &File{path: path} }

func (l *File) Where() string      { return "file " + l.path + " (flock; this host only)" }
func (l *File) Expires() bool      { return false }
func (l *File) RemoveHint() string { return "" } // the kernel frees it with its holder

// TryAcquire takes the flock without blocking; when another process has it, it reads that process's holder.
func (l *File) TryAcquire(_ context.Context, me Holder) (Holder, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		return Holder{}, fmt.Errorf("%s: already held by this process", l.Where())
	}
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil { // waiting will not help
		return Holder{}, wait.Permanent(&invalid.Error{Problems: []invalid.Problem{{Var: "ZB_LOCK_FILE",
			Msg: fmt.Sprintf("cannot open the lock file: %v; set ZB_LOCK_FILE to a file this user may create and write", err)}}})
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			h := readHolder(f)
			return h, fmt.Errorf("%w: %s", ErrHeld, h)
		}
		return Holder{}, fmt.Errorf("flock %s: %w", l.path, err)
	}
	me.Expires = Holder{}.Expires // the kernel frees the lock with its holder: no expiry
	b, _ := json.Marshal(me)
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt(b, 0)
	}
	l.f = f
	return me, nil
}

// Renew has nothing to do: a flock lasts as long as its holder.
func (l *File) Renew(context.Context, Holder) error { return nil }

// Release empties the file and unlocks it.
func (l *File) Release(context.Context, Holder) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	_ = l.f.Truncate(0)
	err := syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}

// readHolder reads the holder's description from f. A holder that has just taken the lock may not have written
// it yet: read again for a little while before showing it as unknown.
func readHolder(f *os.File) Holder {
	var h Holder
	for i := 0; i < 25; i++ {
		if b, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<20)); err == nil && json.Unmarshal(b, &h) == nil && h.Run != "" {
			return h
		}
		time.Sleep(20 * time.Millisecond)
	}
	return h
}
