// Package redact removes credentials from text before it is shown: the user information of URLs
// (http://user:password@host), wherever they appear in a log line, an error or a report.
package redact

import (
	"io"
	"regexp"
)

// userinfo matches a URL's scheme and user information: "scheme://" then anything up to an "@" that comes
// before the host's end (no slash, space, quote or "@" in between).
var userinfo = regexp.MustCompile(`(?i)\b([a-z][a-z0-9+.\-]*://)[^\s/?#@"'<>\\]+@`)

// Mask replaces a URL's user information.
const Mask = "REDACTED@"

// URLs returns s with the user information of every URL in it replaced by Mask.
func URLs(s string) string {
	if !userinfo.MatchString(s) {
		return s
	}
	return userinfo.ReplaceAllString(s, "${1}"+Mask)
}

// Writer returns w redacting URLs (see URLs) in everything written to it. It suits writers that receive whole
// lines or records per Write, as loggers and fmt.Fprint* give them.
func Writer(w io.Writer) io.Writer { return writer{w} }

type writer struct{ w io.Writer }

// Unwrap returns the writer Writer wrapped (w itself if it is not one), e.g. to ask whether it is a terminal.
func Unwrap(w io.Writer) io.Writer {
	if r, ok := w.(writer); ok {
		return r.w
	}
	return w
}

func (r writer) Write(p []byte) (int, error) {
	if !userinfo.Match(p) {
		return r.w.Write(p)
	}
	if _, err := r.w.Write(userinfo.ReplaceAll(p, []byte("${1}"+Mask))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Secret holds a credential. It prints, formats and marshals as "**redacted**"; only Value reveals it.
type Secret struct{ v string }

// NewSecret wraps a value.
func NewSecret(v string) Secret { return Secret{v: v} }

// Value returns the secret itself, for the one call that needs it.
func (s Secret) Value() string { return s.v }

// IsSet reports whether a non-empty value was given.
func (s Secret) IsSet() bool { return s.v != "" }

// Redacted is what a Secret prints as.
const Redacted = "**redacted**"

func (s Secret) String() string   { return Redacted }
func (s Secret) GoString() string { return Redacted }

// MarshalText keeps secrets out of JSON, YAML and slog output.
func (s Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }
