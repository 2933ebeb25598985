package command

import (
	"errors"
	"slices"
	"strings"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
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
