package keycloak

import (
	"encoding/json"
	"fmt"
)

// ImportJSON renders r as a realm file for Keycloak's import at its start (kc.sh start --import-realm, a file in
// /opt/keycloak/data/import): the representation CreateRealm sends, with r's clients, their protocol mappers and
// its key providers. It makes no call. A client with a secret is refused: the file is a Swarm config, which
// anyone who can list configs may read.
func ImportJSON(r Realm) ([]byte, error) {
	if err := checkName("realm", r.Name); err != nil {
		return nil, err
	}
	for _, c := range r.Clients {
		if c.Secret.IsSet() {
			return nil, fmt.Errorf("keycloak: realm %s: client %s has a secret: it cannot be in an import file", r.Name, c.ClientID)
		}
	}
	return json.MarshalIndent(realmRep(r), "", "  ")
}
