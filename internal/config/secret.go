package config

import "github.com/ziti-bootstrap/ziti-bootstrap/internal/redact"

// Secret holds a credential (redact.Secret, a leaf the clients use without this package). It prints, formats
// and marshals as "**redacted**"; only Value reveals it.
type Secret = redact.Secret

// NewSecret wraps a value.
func NewSecret(v string) Secret { return redact.NewSecret(v) }

// ChildEnv returns environ (os.Environ()) without the secret variables of the configuration (ZITI_PWD,
// KEYCLOAK_ADMIN_PASSWORD, S3_SECRET_ACCESS_KEY, …): redact.ChildEnv, whose list TestSecretVariablesListed keeps
// equal to this package's table.
func ChildEnv(environ []string, keep ...string) []string { return redact.ChildEnv(environ, keep...) }
