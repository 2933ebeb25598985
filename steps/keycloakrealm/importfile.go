package keycloakrealm

import (
	"fmt"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/keycloak"
)

// newRealm is the realm a plan creates when it is missing, with clients and their mappers: its settings, one key
// provider, the clients.
func (d Declaration) newRealm(clients []keycloak.OIDCClient) keycloak.Realm {
	want := d.wantRealm()
	want.KeyProviders = keycloak.SigningKeys() // one RSA key pair to generate, not two
	for _, c := range clients {
		c.ProtocolMappers = d.wantMappers()
		want.Clients = append(want.Clients, c)
	}
	return want
}

// ImportFile renders the declaration as a realm file for Keycloak's import at its first start (kc.sh start
// --import-realm, the file in /opt/keycloak/data/import): the realm the step would create, with the public client
// and its two mappers, and the user profile declaring the identity claim's attribute (Keycloak's default profile,
// embedded from Keycloak 26.4.7, with that attribute as the step declares it), so that the bootstrap job finds
// them there instead of creating them on a server that has just started (the realm's create is the slowest call
// of a first run: 1-2 s on a cold Keycloak). It makes no call. What is left out, the step adds on its first run:
// the confidential client (its secret must not be in a Swarm config) and the development users (their
// passwords).
//
// Keycloak imports a realm only when none of that name exists (its default strategy, IGNORE_EXISTING): the file
// seeds the first start, and the step stays what converges every later change.
func ImportFile(d Declaration) ([]byte, error) {
	d, err := withDefaults(d)
	if err != nil {
		return nil, fmt.Errorf("%s: declaration: %w", Name, err)
	}
	public := d.wantClients()[:1]
	var profile []keycloak.UserProfileAttribute
	for _, name := range d.profileAttributes() {
		profile = append(profile, wantProfileAttribute(name))
	}
	return keycloak.ImportJSON(d.newRealm(public), profile...)
}
