package config

import (
	"net/mail"
	"strings"
)

// ExtraVars are the settings of the OIDC step and the policies that used to have no variable. init appends them
// to Vars, so Lookup, --set and the .env.example check know them.
var ExtraVars = []Var{
	{Name: "ZITI_DEFAULT_ROUTER_POLICIES", Default: "true", Help: "true: keep OpenZiti's default router policies (all-endpoints-public-routers: every identity may use the #public routers; all-routers-all-services); false: remove them (declare your own in POLICIES_FILE)"},
	{Name: "ZITI_AUTH_POLICY_IDENTITIES", Help: "comma-separated names of existing identities whose auth policy becomes ZITI_AUTH_POLICY_NAME (they then log in with a Keycloak token only)"},
	{Name: "ZITI_OIDC_SCOPES", Help: "comma-separated scopes tunnelers request with their token (empty: openid, offline_access)"},
	{Name: "KEYCLOAK_CONFIDENTIAL_CLIENT_ID", Help: "a confidential client of the realm (a secret, client credentials grant) for services that obtain tokens themselves; empty: none"},
	{Name: "KEYCLOAK_CONFIDENTIAL_CLIENT_SECRET", Secret: true, SecretName: "keycloak_confidential_client_secret", Help: "that client's secret; unset: Keycloak generates one when it creates the client"},
	{Name: "KEYCLOAK_DEV_USERS", Help: "development only: comma-separated users name:email created in the realm with the password KEYCLOAK_DEV_USER_PASSWORD; never in production"},
	{Name: "KEYCLOAK_DEV_USER_PASSWORD", Secret: true, SecretName: "keycloak_dev_user_password", Help: "development only: the password of the KEYCLOAK_DEV_USERS"},
}

// DevUser is a development user of the realm (KEYCLOAK_DEV_USERS).
type DevUser struct{ Name, Email string }

// loadExtras reads ExtraVars into c.
func (l *loader) loadExtras(c *Config) {
	c.Ziti.DefaultRouterPolicies = l.bool("ZITI_DEFAULT_ROUTER_POLICIES")
	c.OIDC.AttachIdentities = l.list("ZITI_AUTH_POLICY_IDENTITIES")
	c.OIDC.Scopes = l.list("ZITI_OIDC_SCOPES")
	c.OIDC.ConfidentialClientID = l.get("KEYCLOAK_CONFIDENTIAL_CLIENT_ID")
	c.OIDC.ConfidentialSecret = l.secret("KEYCLOAK_CONFIDENTIAL_CLIENT_SECRET", false)
	if c.OIDC.ConfidentialSecret.IsSet() && c.OIDC.ConfidentialClientID == "" {
		l.fail("KEYCLOAK_CONFIDENTIAL_CLIENT_SECRET", "set without KEYCLOAK_CONFIDENTIAL_CLIENT_ID; name the client, or unset the secret")
	}
	for _, u := range l.list("KEYCLOAK_DEV_USERS") {
		name, email, ok := strings.Cut(u, ":")
		if _, err := mail.ParseAddress(email); !ok || name == "" || err != nil {
			l.fail("KEYCLOAK_DEV_USERS", "%q: expected name:email, e.g. alice:alice@example.org", u)
			continue
		}
		c.OIDC.DevUsers = append(c.OIDC.DevUsers, DevUser{Name: name, Email: email})
	}
	c.OIDC.DevUserPassword = l.secret("KEYCLOAK_DEV_USER_PASSWORD", len(c.OIDC.DevUsers) > 0)
}
