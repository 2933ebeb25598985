package redact

import (
	"slices"
	"strings"
)

// SecretVariables are the configuration's secret variables (internal/config's table marks the same ones; a test
// there keeps the two equal), for packages below the configuration that start child processes.
var SecretVariables = []string{
	"BACKUP_ENCRYPTION_KEY",
	"KEYCLOAK_ADMIN_CLIENT_SECRET",
	"KEYCLOAK_ADMIN_PASSWORD",
	"KEYCLOAK_CONFIDENTIAL_CLIENT_SECRET",
	"KEYCLOAK_DB_PASSWORD",
	"KEYCLOAK_DEV_USER_PASSWORD",
	"KEYCLOAK_TLS_KEY",
	"S3_SECRET_ACCESS_KEY",
	"SPIRE_UPSTREAM_CA_KEY",
	"ZITI_PWD",
}

// ChildEnv returns environ (os.Environ()) without SecretVariables, for a child process (pg_dump, a backup hook) that
// must not inherit them; keep names the ones the child does need. Their *_FILE variables (paths) stay.
func ChildEnv(environ []string, keep ...string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if slices.Contains(SecretVariables, name) && !slices.Contains(keep, name) {
			continue
		}
		out = append(out, kv)
	}
	return out
}
