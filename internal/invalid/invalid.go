// Package invalid is the "invalid configuration" error: every problem found in the user's input, each named by
// the variable, flag or file position to fix. It is a leaf: the clients of external systems return it without
// depending on the configuration package, and the exit code (2) is chosen from it.
package invalid

import (
	"errors"
	"fmt"
	"strings"
)

// Problem is one thing wrong with one setting.
type Problem struct {
	Var string
	Msg string
}

// Error lists every problem found; it is the "invalid configuration" error. Cause, when set, is the client's
// own error (e.g. ziti.ErrLoginRejected), for errors.Is.
type Error struct {
	Problems []Problem
	Cause    error
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Cause }

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "invalid configuration (%d problem(s)):", len(e.Problems))
	for _, p := range e.Problems {
		fmt.Fprintf(&b, "\n  - %s: %s", p.Var, p.Msg)
	}
	return b.String()
}

// Setting returns the error of one problem with the setting v.
func Setting(v, msg string) *Error { return &Error{Problems: []Problem{{Var: v, Msg: msg}}} }

// Is reports whether err is (or wraps) an invalid-configuration error.
func Is(err error) bool {
	var e *Error
	return errors.As(err, &e)
}
