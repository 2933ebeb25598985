package config

import (
	"slices"
	"strings"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/redact"
)

// Secret holds a credential (redact.Secret, a leaf the clients use without this package). It prints, formats
// and marshals as "**redacted**"; only Value reveals it.
type Secret = redact.Secret

// NewSecret wraps a value.
func NewSecret(v string) Secret { return redact.NewSecret(v) }

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
