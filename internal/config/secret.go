package config

import (
	"slices"
	"strings"
)

// Secret holds a credential. It prints, formats and marshals as "**redacted**"; only Value reveals it.
type Secret struct{ v string }

// NewSecret wraps a value.
func NewSecret(v string) Secret { return Secret{v: v} }

// Value returns the secret itself, for the one call that needs it.
func (s Secret) Value() string { return s.v }

// IsSet reports whether a non-empty value was given.
func (s Secret) IsSet() bool { return s.v != "" }

const redacted = "**redacted**"

func (s Secret) String() string   { return redacted }
func (s Secret) GoString() string { return redacted }

// MarshalText keeps secrets out of JSON, YAML and slog output.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// ChildEnv returns environ (os.Environ()) without the secret variables of the configuration (ZITI_PWD,
// KEYCLOAK_ADMIN_PASSWORD, S3_SECRET_ACCESS_KEY, …), for a child process (pg_dump, a backup hook) that must not
// inherit them; keep names the ones the child does need. Their *_FILE variables (paths) stay.
func ChildEnv(environ []string, keep ...string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if v, ok := Lookup(name); ok && v.Secret && !slices.Contains(keep, name) {
			continue
		}
		out = append(out, kv)
	}
	return out
}
