package devenv

// KeycloakAdminClientSecretFile holds the secret of Keycloak's admin service account (the stacks' client
// KEYCLOAK_ADMIN_CLIENT_ID, made by Keycloak on its first start from KC_BOOTSTRAP_ADMIN_CLIENT_*), which the bootstrap
// job and the converge service log in with: a client credentials grant, no password hash for Keycloak to compute.
const KeycloakAdminClientSecretFile = "keycloak_admin_client_secret"

var adminClientFiles = []File{
	{KeycloakAdminClientSecretFile, "KEYCLOAK_ADMIN_CLIENT_SECRET_FILE", "secret of Keycloak's admin service account (master realm), the bootstrap job's and converge service's login"},
}

func init() { Files = append(Files, adminClientFiles...) }

// ensureAdminClientSecret adds the service account's secret to a state made before it existed. Keycloak, whose
// database was made then, does not create the service account any more (only on its first start): the job and the
// converge service are refused it and log in with the admin password, as before (internal/keycloak's fallback).
func (s *State) ensureAdminClientSecret() error {
	return s.addMissing([]string{KeycloakAdminClientSecretFile}, func() (map[string][]byte, error) {
		p, err := password()
		return map[string][]byte{KeycloakAdminClientSecretFile: p}, err
	})
}
