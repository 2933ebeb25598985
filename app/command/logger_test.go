package command

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ptytest"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/redact"
)

// Only a terminal gets the live view and text logs: not /dev/null, a file or a buffer.
func TestIsTerminal(t *testing.T) {
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	file, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	_, pty := ptytest.Open(t, 80)
	for name, c := range map[string]struct {
		w    io.Writer
		want bool
	}{
		"/dev/null":          {null, false},
		"a file":             {file, false},
		"a buffer":           {&bytes.Buffer{}, false},
		"a terminal":         {pty, true},
		"a terminal, redact": {redact.Writer(pty), true},
	} {
		if got := IsTerminal(c.w); got != c.want {
			t.Errorf("IsTerminal(%s) = %v, want %v", name, got, c.want)
		}
	}
}
