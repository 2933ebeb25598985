package command

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"golang.org/x/sys/unix"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/redact"
)

// IsTerminal reports whether w is a terminal: a file with terminal attributes. Other character devices, such as
// /dev/null (`up 2>/dev/null` in a cron job), are not: output sent there is neither drawn nor coloured.
func IsTerminal(w io.Writer) bool {
	f, ok := redact.Unwrap(w).(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// NewLogger logs at level (--log-level) on w: text on a terminal, JSON otherwise.
func NewLogger(w io.Writer, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, exitcode.With(exitcode.InvalidConfig, fmt.Errorf("--log-level %q: use debug, info, warn or error", level))
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if IsTerminal(w) {
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return slog.New(slog.NewJSONHandler(w, opts)), nil
}
