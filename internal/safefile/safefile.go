// Package safefile reads the files a user names (secrets' *_FILE, CA bundles, the entries and policy files,
// the .env file) without trusting them: a bounded size, regular files only. A FIFO would block the read and
// /dev/zero would never end it (the Go runtime dies of "out of memory"); both are refused, as is a file larger
// than its bound, with an error that says why.
package safefile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// Default bounds.
const (
	// MaxValue bounds a file holding one value: a secret, a CA bundle.
	MaxValue = 1 << 20
	// MaxDocument bounds a file of declarations: an .env file, SPIRE entries, a policy file.
	MaxDocument = 16 << 20
)

// ErrNotRegular says the path names something other than a regular file (a FIFO, a device, a directory).
var ErrNotRegular = errors.New("not a regular file")

// TooLargeError says the file is larger than the bound.
type TooLargeError struct{ Max int64 }

func (e *TooLargeError) Error() string { return fmt.Sprintf("larger than %s", size(e.Max)) }

// Read returns the content of the regular file at path, at most max bytes. Errors are *fs.PathError wrapping
// ErrNotRegular, a *TooLargeError, or the system's error, so errors.Unwrap gives the reason alone.
func Read(path string, max int64) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO without a writer must not block; it is refused below anyway.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("%w (%s)", ErrNotRegular, kind(st.Mode()))}
	}
	if st.Size() > max {
		return nil, &fs.PathError{Op: "read", Path: path, Err: &TooLargeError{Max: max}}
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1)) // the file may grow after the stat
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: path, Err: err}
	}
	if int64(len(b)) > max {
		return nil, &fs.PathError{Op: "read", Path: path, Err: &TooLargeError{Max: max}}
	}
	return b, nil
}

// ReadValue is Read bounded by MaxValue: the reader of secrets' *_FILE and CA bundles.
func ReadValue(path string) ([]byte, error) { return Read(path, MaxValue) }

func kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return m.Type().String()
}

func size(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	if n >= 1<<10 && n%(1<<10) == 0 {
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
