package safefile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "ok")
	os.WriteFile(ok, []byte("hello"), 0o600)
	big := filepath.Join(dir, "big")
	os.WriteFile(big, make([]byte, 2048), 0o600)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := Read(ok, 1024); err != nil || string(b) != "hello" {
		t.Fatalf("regular file: %q %v", b, err)
	}
	for _, tc := range []struct {
		path string
		is   func(error) bool
		msg  string
	}{
		{"/dev/zero", func(err error) bool { return errors.Is(err, ErrNotRegular) }, "a character device"},
		{fifo, func(err error) bool { return errors.Is(err, ErrNotRegular) }, "a FIFO"},
		{dir, func(err error) bool { return errors.Is(err, ErrNotRegular) }, "a directory"},
		{big, func(err error) bool { return errors.As(err, new(*TooLargeError)) }, "larger than 1 KiB"},
		{filepath.Join(dir, "none"), func(err error) bool { return errors.Is(err, os.ErrNotExist) }, "no such file"},
	} {
		_, err := Read(tc.path, 1024)
		if err == nil || !tc.is(err) || !strings.Contains(errors.Unwrap(err).Error(), tc.msg) || !strings.Contains(err.Error(), tc.path) {
			t.Errorf("%s: %v; want an error naming it, saying %q", tc.path, err, tc.msg)
		}
	}
}
