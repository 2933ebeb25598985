package stacks

import (
	"context"
	"encoding/json"
	"os"
	"testing"
)

func TestDumpTmp(t *testing.T) {
	for _, name := range All {
		st, err := Load(context.Background(), name, Options{Vars: map[string]string{"SPIRE_UPSTREAM_CA_CERT": "c", "SPIRE_AGENT_CA_CERT": "a", "SPIRE_AGENT_CERT": "x", "SPIRE_UPSTREAM_CA_KEY": "k", "SPIRE_AGENT_KEY": "k2", "KEYCLOAK_DB_PASSWORD": "p", "KEYCLOAK_ADMIN_PASSWORD": "q", "ZITI_PWD": "z"}})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.MarshalIndent(st, "", "  ")
		os.WriteFile("/tmp/zb-stack/dump/"+name+".json", b, 0o644)
	}
}
