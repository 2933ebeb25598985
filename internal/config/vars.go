package config

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

// Vars lists every variable ziti-bootstrap reads, grouped as in .env.example.
var Vars = []Var{
	{Name: "ZITI_CTRL_URL", Default: "https://ziti-controller:1280", Help: "OpenZiti controller edge API base URL (scheme, host, port)"},
	{Name: "ZITI_USER", Default: "admin", Help: "OpenZiti admin user name"},
	{Name: "ZITI_PWD", Secret: true, SecretName: "ziti_admin_password", Help: "OpenZiti admin password"},
	{Name: "ZITI_CA_FILE", Help: "PEM bundle of the controller's CA, pinned for TLS (required unless ZITI_CA_TOFU=true)"},
	{Name: "ZITI_CA_TOFU", Default: "false", Help: "true: trust the CA the controller publishes at /.well-known/est/cacerts on first use (logged)"},

	{Name: "SPIRE_SERVER_ADDRESS", Default: "unix:///tmp/spire-server/private/api.sock", Help: "SPIRE server admin API: unix socket (unix:///path or /path)"},
	{Name: "TRUST_DOMAIN", Default: "openziti.local", Help: "SPIFFE trust domain of the SPIRE server"},

	{Name: "KEYCLOAK_URL", Default: "http://keycloak:8080", Help: "Keycloak base URL"},
	{Name: "KEYCLOAK_ADMIN_USER", Default: "admin", Help: "Keycloak admin user (master realm)"},
	{Name: "KEYCLOAK_ADMIN_PASSWORD", Secret: true, SecretName: "keycloak_admin_password", Help: "Keycloak admin password"},
	{Name: "KEYCLOAK_REALM", Default: "openziti", Help: "realm ziti-bootstrap manages for OpenZiti users"},

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
