package app

import (
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/keycloakrealm"
)

// RealmDeclaration is the realm of cfg that the keycloak/realm step converges: the realm, its public client (with
// the audience and identity-claim mappers), the confidential client and development users when configured. Up
// renders the realm file Keycloak imports at its first start from it too (keycloakrealm.ImportFile).
func RealmDeclaration(cfg *config.Config) keycloakrealm.Declaration {
	return keycloakrealm.Declaration{
		Realm:         cfg.Keycloak.Realm,
		Public:        keycloakrealm.PublicClient{ClientID: cfg.OIDC.ClientID, RedirectURIs: cfg.OIDC.RedirectURIs},
		Audience:      cfg.OIDC.Audience,
		IdentityClaim: cfg.OIDC.Claim,
		Confidential:  confidentialClient(cfg.OIDC),
		DevUsers:      devUsers(cfg.OIDC),
	}
}

// confidentialClient is the realm's confidential client of KEYCLOAK_CONFIDENTIAL_CLIENT_ID (client credentials
// grant), nil when none is configured.
func confidentialClient(c config.OIDC) *keycloakrealm.ConfidentialClient {
	if c.ConfidentialClientID == "" {
		return nil
	}
	return &keycloakrealm.ConfidentialClient{ClientID: c.ConfidentialClientID, Secret: c.ConfidentialSecret, ServiceAccounts: true}
}

// devUsers are the development users of KEYCLOAK_DEV_USERS, all with KEYCLOAK_DEV_USER_PASSWORD.
func devUsers(c config.OIDC) []keycloakrealm.DevUser {
	var out []keycloakrealm.DevUser
	for _, u := range c.DevUsers {
		out = append(out, keycloakrealm.DevUser{Username: u.Name, Email: u.Email, Password: c.DevUserPassword})
	}
	return out
}
