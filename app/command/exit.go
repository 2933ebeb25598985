package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/redact"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

// ExitCode is the process exit code of a command's error (nil: OK), run with the arguments args: an error that
// carries its code (exitcode.Carried), invalid configuration or usage (with plan's --detailed-exitcode, where 2
// means "changes pending", InvalidConfigDetailed), ErrPending, or an unexpected error.
func ExitCode(args []string, err error) int {
	code, ok := exitcode.Carried(err)
	switch {
	case err == nil:
		return exitcode.OK
	case errors.Is(err, ErrPending):
		return exitcode.Pending
	case ok:
	case config.IsInvalid(err), strings.HasPrefix(err.Error(), "unknown command"):
		code = exitcode.InvalidConfig
	default:
		code = exitcode.Internal
	}
	if code == exitcode.InvalidConfig && (slices.Contains(args, "--detailed-exitcode") || slices.Contains(args, "--detailed-exitcode=true")) {
		return exitcode.InvalidConfigDetailed
	}
	return code
}

// ErrPending is the "error" of a plan --detailed-exitcode with changes pending: exit code 2, not printed as an
// error.
var ErrPending error = pendingError{}

type pendingError struct{}

func (pendingError) Error() string { return "changes pending" }

// Plan is `plan`: every step planned, nothing written, the report printed; with detailed, ErrPending when
// changes are pending.
func (c *CLI) Plan(ctx context.Context, detailed bool) error {
	rep, err := c.RunReport(ctx, steps.PlanOnly, c.PlanBuilder(nil))
	if err != nil {
		return err
	}
	if err := c.FinishReport(rep); err != nil {
		return err
	}
	if detailed && !rep.Converged() {
		return ErrPending
	}
	return nil
}

// IsTerminal reports whether w is a character device (a terminal).
func IsTerminal(w io.Writer) bool {
	f, ok := redact.Unwrap(w).(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
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
