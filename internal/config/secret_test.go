package config

import (
	"slices"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/redact"
)

// The leaf list the backup package's child processes are cleaned with is exactly the table's secret variables: a
// new secret variable that is not listed there would reach pg_dump and the hooks.
func TestSecretVariablesListed(t *testing.T) {
	var secret []string
	for _, v := range Vars {
		if v.Secret {
			secret = append(secret, v.Name)
		}
	}
	slices.Sort(secret)
	listed := slices.Sorted(slices.Values(redact.SecretVariables))
	if !slices.Equal(secret, listed) {
		t.Fatalf("secret variables of the table %v, redact.SecretVariables %v: keep them equal", secret, listed)
	}
}
