package config

import "slices"

// Var documents one configuration variable. Vars is the single list that loading, validation, `config`
// output and .env.example are checked against.
type Var struct {
	Name    string
	Default string
	Help    string
	// Secret values come from NAME, NAME_FILE or the Docker secret SecretName in the secrets directory, and are
	// never printed.
	Secret     bool
	SecretName string
}

// Vars lists every variable ziti-bootstrap reads, grouped as in .env.example: the core ones, then each section's
// (one table per section loader, composed here once).
var Vars = slices.Concat(coreVars, BackupVars, ConvergeVars, IdentityVars, LockVars, ExtraVars, StackVars)

// coreVars are the variables of Load.
var coreVars = []Var{
	{Name: "ZITI_CTRL_URL", Default: "https://ziti-controller:1280", Help: "OpenZiti controller edge API base URL (scheme, host, port)"},
	{Name: "ZITI_USER", Default: "admin", Help: "OpenZiti admin user name"},
	{Name: "ZITI_PWD", Secret: true, SecretName: "ziti_admin_password", Help: "OpenZiti admin password"},
	{Name: "ZITI_CA_FILE", Help: "PEM bundle of the controller's CA, pinned for TLS (required unless ZITI_CA_TOFU=true)"},
	{Name: "ZITI_CA_TOFU", Default: "false", Help: "true: trust the CA the controller publishes at /.well-known/est/cacerts on first use (logged)"},

	{Name: "POLICIES_FILE", Help: "YAML file of OpenZiti services, configs and policies (see examples/policies); empty: none managed"},

	{Name: "SPIRE_SERVER_ADDRESS", Default: "unix:///tmp/spire-server/private/api.sock", Help: "SPIRE server admin API: unix socket (unix:///path or /path)"},
	{Name: "TRUST_DOMAIN", Default: "openziti.local", Help: "SPIFFE trust domain of the SPIRE server"},

	{Name: "SPIRE_UPSTREAM_CA_KEY", Secret: true, SecretName: "spire_upstream_ca_key", Help: "PEM private key(s) of SPIRE's disk UpstreamAuthority root(s): proves possession when the root is registered in OpenZiti (required unless SPIRE_CA_SIGNER is set)"},
	{Name: "SPIRE_CA_SIGNER", Help: "unix:///path of the SPIRE CA signer (ziti-bootstrap spire-ca-signer, beside SPIRE's server), which holds the root key and signs OpenZiti's CA verification; the Swarm's bootstrap job and converge service use it instead of SPIRE_UPSTREAM_CA_KEY"},
	{Name: "SPIRE_ENTRIES_FILE", Help: "YAML file of SPIRE registration entries, declared in addition to the built-in ones (edge router, router enrolment service, bootstrap job)"},
	{Name: "ZB_STACK_OPENZITI", Default: "openziti", Help: "namespace of the OpenZiti stack: the built-in SPIRE entries select its services by their Swarm service name (up sets it for its bootstrap job)"},
	{Name: "ZB_COMPOSE_PROJECT", Help: "set for a compose project (render --compose): the built-in SPIRE entries select its services by their compose labels (project and service) instead"},
	{Name: "ZITI_SPIRE_CA_NAME", Default: "spire", Help: "name of the OpenZiti CA that holds SPIRE's root (a suffix is added per root)"},
	{Name: "ZITI_SPIRE_CA_ROLES", Default: "spire-workloads", Help: "comma-separated role attributes of identities auto-enrolled with a SPIRE SVID"},
	{Name: "ZITI_SPIRE_CA_NAME_FORMAT", Default: "[caName]-[requestedName]", Help: "name format of auto-enrolled identities ([caName], [caId], [commonName], [requestedName], [identityId])"},

	{Name: "KEYCLOAK_URL", Default: "http://keycloak:8080", Help: "Keycloak base URL"},
	{Name: "KEYCLOAK_ADMIN_USER", Default: "admin", Help: "Keycloak admin user (master realm)"},
	{Name: "KEYCLOAK_ADMIN_PASSWORD", Secret: true, SecretName: "keycloak_admin_password", Help: "Keycloak admin password (not needed with an admin service account)"},
	{Name: "KEYCLOAK_ADMIN_CLIENT_ID", Help: "client_id of an admin service account of the master realm (Keycloak's KC_BOOTSTRAP_ADMIN_CLIENT_ID): ziti-bootstrap then logs in with its client secret, no password hashing; falls back to the password when Keycloak does not know it. The stacks: unset means " + StackAdminClientID + ", the account the Keycloak stack makes on its first start and the bootstrap job and converge service log in with"},
	{Name: "KEYCLOAK_ADMIN_CLIENT_SECRET", Secret: true, SecretName: "keycloak_admin_client_secret", Help: "secret of that service account (KC_BOOTSTRAP_ADMIN_CLIENT_SECRET; required by the Keycloak and OpenZiti stacks, `up --dev` generates it); unset: the password login"},
	{Name: "KEYCLOAK_REALM", Default: "openziti", Help: "realm ziti-bootstrap manages for OpenZiti users"},
	{Name: "KEYCLOAK_CA_FILE", Help: "PEM CA bundle that verifies Keycloak's TLS certificate (KEYCLOAK_URL https://…): the only roots ziti-bootstrap trusts for it; empty: the system's roots. In the Swarm the stacks ship it (KEYCLOAK_CA) to the bootstrap job, the converge service and the OpenZiti controller's JWKS fetch"},

	{Name: "KEYCLOAK_CLIENT_ID", Default: "openziti", Help: "client people use to log in to OpenZiti (public; device and auth-code flows)"},
	{Name: "KEYCLOAK_REDIRECT_URIS", Default: "http://localhost:20314/auth/callback,http://127.0.0.1:20314/auth/callback", Help: "comma-separated redirect URIs of that client (OpenZiti tunnelers listen on 20314)"},
	{Name: "ZITI_OIDC_AUDIENCE", Default: "openziti", Help: "audience tokens must carry for OpenZiti (Keycloak adds it, Ziti requires it)"},
	{Name: "ZITI_OIDC_CLAIM", Default: "email", Help: "token claim OpenZiti maps to an identity's external ID"},
	{Name: "ZITI_JWT_SIGNER_NAME", Default: "keycloak", Help: "name of the external JWT signer in OpenZiti"},
	{Name: "KEYCLOAK_JWKS_URL", Help: "where the OpenZiti controller fetches the realm's signing keys (JWKS), as the controller reaches Keycloak; empty: the jwks_uri of the realm's discovery document as seen at KEYCLOAK_URL (the stacks set it from KEYCLOAK_INTERNAL_URL, so that a plan from another machine converges to what the bootstrap job configured)"},
	{Name: "ZITI_AUTH_POLICY_NAME", Default: "keycloak-users", Help: "name of the OpenZiti auth policy allowing that signer"},

	{Name: "S3_ENDPOINT", Help: "S3-compatible endpoint URL for backups; empty disables backups"},
	{Name: "S3_REGION", Default: "us-east-1", Help: "S3 region"},
	{Name: "S3_BUCKET", Default: "ziti-bootstrap", Help: "S3 bucket for snapshot sets"},
	{Name: "S3_ACCESS_KEY_ID", Help: "S3 access key ID (required when S3_ENDPOINT is set)"},
	{Name: "S3_SECRET_ACCESS_KEY", Secret: true, SecretName: "s3_secret_access_key", Help: "S3 secret access key"},

	{Name: "ZB_DOCKER", Default: "false", Help: "true: check and use the Docker Engine (Swarm manager) at DOCKER_HOST"},
	{Name: "DOCKER_HOST", Default: "unix:///var/run/docker.sock", Help: "Docker Engine API address"},

	{Name: "ZB_WAIT_TIMEOUT", Default: "2m", Help: "how long to wait for each dependency to become reachable (Go duration)"},
	{Name: "ZB_SECRETS_DIR", Default: "/run/secrets", Help: "directory of Docker secrets"},
}

// Lookup returns the documentation of the variable name.
func Lookup(name string) (Var, bool) {
	for _, v := range Vars {
		if v.Name == name {
			return v, true
		}
	}
	return Var{}, false
}
