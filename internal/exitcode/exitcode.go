// Package exitcode maps outcomes to ziti-bootstrap's process exit codes.
package exitcode

import (
	"errors"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
)

// The exit codes, documented in the README.
const (
	OK            = 0 // converged (apply) / computed (plan)
	Internal      = 1 // unexpected error (a bug, or an interrupted run)
	InvalidConfig = 2 // bad configuration or usage: fix the named variable or flag
	Unreachable   = 3 // a dependency did not answer before its deadline
	StepFailed    = 4 // a step failed against a reachable system
)

// With `plan --detailed-exitcode` (Terraform's convention, for CI jobs that gate on drift): 0 converged, 2 changes
// pending; invalid configuration or usage, 2 otherwise, is InvalidConfigDetailed there, so that no error reads as
// "changes pending". The other codes keep their meaning.
const (
	Pending               = 2
	InvalidConfigDetailed = 6
)

// For classifies errs (e.g. the errors of failed steps): the first invalid-configuration error wins, then
// unreachable dependencies, then step failures. No error is OK.
func For(errs ...error) int {
	code := OK
	for _, err := range errs {
		if err == nil {
			continue
		}
		var ue *wait.UnreachableError
		switch {
		case config.IsInvalid(err):
			return InvalidConfig
		case errors.As(err, &ue):
			code = Unreachable
		case code == OK:
			code = StepFailed
		}
	}
	return code
}

// Error is an error that carries the process exit code it ends the run with.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// With is err carrying the exit code code.
func With(code int, err error) *Error { return &Error{Code: code, Err: err} }

// ExitCode is the code the error carries.
func (e *Error) ExitCode() int { return e.Code }

// Carried returns the exit code that an error of err's chain carries (the outermost), if any.
func Carried(err error) (int, bool) {
	var c interface{ ExitCode() int }
	if errors.As(err, &c) {
		return c.ExitCode(), true
	}
	return 0, false
}
