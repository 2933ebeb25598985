// Package config loads ziti-bootstrap's configuration from flags, the environment, an .env file and secrets
// (NAME, NAME_FILE or a Docker secret), and validates all of it at once.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/invalid"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/redact"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/safefile"
)

// Config is the validated configuration.
type Config struct {
	Ziti        Ziti
	Spire       Spire
	Keycloak    Keycloak
	OIDC        OIDC
	S3          S3
	Docker      Docker
	WaitTimeout time.Duration
}

// Ziti is how to reach the OpenZiti controller's management API.
type Ziti struct {
	URL      *url.URL
	User     string
	Password Secret
	CAFile   string
	CATOFU   bool
	// PoliciesFile is the policy file reconciled by ziti/policies; "" for none.
	PoliciesFile string
	// DefaultRouterPolicies keeps OpenZiti's default router policies (ZITI_DEFAULT_ROUTER_POLICIES).
	DefaultRouterPolicies bool
}

// Spire is how to reach the SPIRE server's admin API, and what to register in it and in OpenZiti.
type Spire struct {
	Socket      string // filesystem path of the admin API unix socket
	TrustDomain string
	// UpstreamKey holds the PEM private key(s) of the UpstreamAuthority root(s), to verify them in OpenZiti.
	UpstreamKey Secret
	// CASigner is the address of the SPIRE CA signer (SPIRE_CA_SIGNER, unix:///path), which holds the root key
	// beside SPIRE's server and signs the verifications UpstreamKey cannot; "" for none.
	CASigner    string
	EntriesFile string // "" for the built-in entries only
	// Namespace is the OpenZiti stack's namespace: the built-in entries select its services by name.
	Namespace string
	// ComposeProject, when set, is the compose project (render --compose) whose services the built-in entries
	// select by their compose labels, instead of the Swarm services of Namespace.
	ComposeProject string
	// NodeCA is the PEM of the CA(s) of the agents' node certificates (SPIRE_NODE_CA or SPIRE_NODE_CA_FILE); ""
	// when this run does not know them (node alias entries are then left as they are).
	NodeCA string
	// The OpenZiti CA bound to SPIRE's root.
	ZitiCAName       string
	ZitiCARoles      []string
	ZitiCANameFormat string
}

// OIDC is how people log in to OpenZiti with Keycloak tokens.
type OIDC struct {
	ClientID       string
	RedirectURIs   []string
	Audience       string
	Claim          string
	SignerName     string
	AuthPolicyName string
	// JWKSURL is where the controller fetches the realm's signing keys (KEYCLOAK_JWKS_URL); empty: discovery's.
	JWKSURL string
	// see oidcvars.go
	AttachIdentities     []string
	Scopes               []string
	ConfidentialClientID string
	ConfidentialSecret   Secret
	DevUsers             []DevUser
	DevUserPassword      Secret
}

// Keycloak is how to reach Keycloak's admin API.
type Keycloak struct {
	URL           *url.URL
	AdminUser     string
	AdminPassword Secret
	// AdminClientID and AdminClientSecret: an admin service account, logged in with the client credentials grant.
	AdminClientID     string
	AdminClientSecret Secret
	Realm             string
	// CAFile is the PEM bundle of Keycloak's CA (KEYCLOAK_CA_FILE); "" for the system's roots.
	CAFile string
}

// S3 is the backup store; Endpoint is nil when backups are not configured.
type S3 struct {
	Endpoint  *url.URL
	Region    string
	Bucket    string
	AccessKey string
	SecretKey Secret
}

// Docker says whether and where the Docker Engine is used.
type Docker struct {
	Enabled bool
	Host    string
}

// Sources are where values come from, highest precedence first: Flags, Env, then the .env file.
type Sources struct {
	Flags   map[string]string
	Env     func(string) (string, bool) // os.LookupEnv when nil
	EnvFile string                      // path of an .env file; "" for none
	// ReadFile reads *_FILE and Docker secret files; safefile.ReadValue (bounded, regular files only) when nil.
	ReadFile func(string) ([]byte, error)

	dotenv *dotenvFile // the .env file as Read read it; nil: each loader reads it
}

// dotenvFile is an .env file read once.
type dotenvFile struct {
	vars map[string]string
	err  error
}

// Read returns src with its .env file read now: every loader given the result (Load, LoadStack, LoadLock,
// LoadBackup, …) uses what was read here instead of reading the file again.
func (src Sources) Read() Sources {
	if src.dotenv == nil && src.EnvFile != "" {
		m, err := readDotenv(src.EnvFile)
		src.dotenv = &dotenvFile{vars: m, err: err}
	}
	return src
}

// Problem is one thing wrong with the configuration, naming the variable and how to fix it.
type Problem = invalid.Problem

// Error lists every problem found; it is the "invalid configuration" error (invalid.Error, a leaf the clients
// return without this package).
type Error = invalid.Error

// IsInvalid reports whether err is (or wraps) an invalid-configuration error.
func IsInvalid(err error) bool { return invalid.Is(err) }

type loader struct {
	src      Sources
	file     map[string]string
	problems []Problem
	unused   []string // secrets never required (LoadWithout)
}

// Load reads and validates the configuration. On any problem it returns an *Error listing all of them.
func Load(src Sources) (*Config, error) { return LoadWithout(src) }

// LoadWithout is Load for a command that never uses the secrets unused (backup and restore use neither the
// Keycloak admin password nor SPIRE's upstream key): they are read when set, and never required.
func LoadWithout(src Sources, unused ...string) (*Config, error) {
	l := newLoader(src)
	l.unused = unused
	for k := range src.Flags {
		base, isFile := strings.CutSuffix(k, "_FILE")
		if v, ok := Lookup(base); isFile && ok && v.Secret {
			continue
		}
		if _, ok := Lookup(k); !ok {
			l.fail(k, "unknown variable; see .env.example for the list")
		}
	}

	c := &Config{}
	trust := l.zitiTrust()
	c.Ziti.URL, c.Ziti.CATOFU, c.Ziti.CAFile = trust.URL, trust.CATOFU, trust.CAFile
	c.Ziti.User = l.nonEmpty("ZITI_USER")
	c.Ziti.Password = l.secret("ZITI_PWD", true)

	c.Ziti.PoliciesFile = l.optionalFile("POLICIES_FILE", safefile.MaxDocument, "point it at a policy file (see examples/policies) or leave it empty")

	c.Spire.Socket = l.socket("SPIRE_SERVER_ADDRESS")
	c.Spire.TrustDomain = l.trustDomain("TRUST_DOMAIN")
	c.Spire.CASigner = l.get("SPIRE_CA_SIGNER")
	c.Spire.UpstreamKey = l.secret("SPIRE_UPSTREAM_CA_KEY", c.Spire.CASigner == "") // the signer holds it otherwise
	c.Spire.EntriesFile = l.optionalFile("SPIRE_ENTRIES_FILE", safefile.MaxValue, "point it at a YAML file of entries or leave it empty for the defaults")
	c.Spire.Namespace = l.nonEmpty("ZB_STACK_OPENZITI")
	c.Spire.ComposeProject = l.get("ZB_COMPOSE_PROJECT")
	c.Spire.NodeCA = l.get("SPIRE_NODE_CA")
	if f := l.get("SPIRE_NODE_CA_FILE"); f != "" {
		b, err := l.src.ReadFile(f)
		switch {
		case err != nil:
			l.fail("SPIRE_NODE_CA_FILE", "cannot read %s: %v; point it at the PEM CA of the agents' node certificates", f, errors.Unwrap(err))
		case c.Spire.NodeCA != "":
			l.fail("SPIRE_NODE_CA", "set either SPIRE_NODE_CA or SPIRE_NODE_CA_FILE, not both")
		default:
			c.Spire.NodeCA = string(b)
		}
	}
	c.Spire.ZitiCAName = l.nonEmpty("ZITI_SPIRE_CA_NAME")
	c.Spire.ZitiCARoles = l.list("ZITI_SPIRE_CA_ROLES")
	c.Spire.ZitiCANameFormat = l.nonEmpty("ZITI_SPIRE_CA_NAME_FORMAT")

	c.Keycloak.URL = l.url("KEYCLOAK_URL", "", true)
	c.Keycloak.AdminUser = l.nonEmpty("KEYCLOAK_ADMIN_USER")
	// An admin service account (its secret is required with its client_id, ignored without) makes the password
	// optional: it is then the fallback for a Keycloak that does not know the account.
	if c.Keycloak.AdminClientID = l.get("KEYCLOAK_ADMIN_CLIENT_ID"); c.Keycloak.AdminClientID != "" {
		c.Keycloak.AdminClientSecret = l.secret("KEYCLOAK_ADMIN_CLIENT_SECRET", true)
	}
	c.Keycloak.AdminPassword = l.secret("KEYCLOAK_ADMIN_PASSWORD", c.Keycloak.AdminClientID == "")
	l.realm(c)
	c.Keycloak.CAFile = l.optionalFile("KEYCLOAK_CA_FILE", safefile.MaxValue, "point it at the PEM CA bundle of Keycloak's TLS certificate")

	c.OIDC.SignerName = l.nonEmpty("ZITI_JWT_SIGNER_NAME")
	c.OIDC.AuthPolicyName = l.nonEmpty("ZITI_AUTH_POLICY_NAME")
	if u := l.url("KEYCLOAK_JWKS_URL", "", false); u != nil {
		c.OIDC.JWKSURL = u.String()
	}
	l.loadExtras(c)

	c.S3.Endpoint = l.url("S3_ENDPOINT", "", false)
	c.S3.Region = l.nonEmpty("S3_REGION")
	c.S3.Bucket = l.nonEmpty("S3_BUCKET")
	enabled := c.S3.Endpoint != nil
	c.S3.AccessKey = l.get("S3_ACCESS_KEY_ID")
	if enabled && c.S3.AccessKey == "" {
		l.fail("S3_ACCESS_KEY_ID", "required when S3_ENDPOINT is set")
	}
	c.S3.SecretKey = l.secret("S3_SECRET_ACCESS_KEY", enabled)

	c.Docker.Enabled = l.bool("ZB_DOCKER")
	c.Docker.Host = l.nonEmpty("DOCKER_HOST")
	c.WaitTimeout = l.duration("ZB_WAIT_TIMEOUT")

	if err := l.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// err is nil, or the *Error listing every problem found, sorted by variable.
func (l *loader) err() error {
	if len(l.problems) == 0 {
		return nil
	}
	sort.SliceStable(l.problems, func(i, j int) bool { return l.problems[i].Var < l.problems[j].Var })
	return &Error{Problems: l.problems}
}

func (l *loader) fail(name, format string, args ...any) {
	l.problems = append(l.problems, Problem{Var: name, Msg: fmt.Sprintf(format, args...)})
}

// raw returns the value of name from flags, environment or .env file, and whether any of them set it.
func (l *loader) raw(name string) (string, bool) {
	if v, ok := l.src.Flags[name]; ok {
		return v, true
	}
	if v, ok := l.src.Env(name); ok {
		return v, true
	}
	v, ok := l.file[name]
	return v, ok
}

func (l *loader) get(name string) string {
	if v, ok := l.raw(name); ok {
		return strings.TrimSpace(v)
	}
	def, _ := Lookup(name)
	return def.Default
}

func (l *loader) nonEmpty(name string) string {
	v := l.get(name)
	if v == "" {
		l.fail(name, "must not be empty")
	}
	return v
}

// list splits a comma-separated value, dropping blanks.
func (l *loader) list(name string) []string {
	var out []string
	for _, p := range strings.Split(l.get(name), ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (l *loader) bool(name string) bool {
	v := l.get(name)
	b, err := strconv.ParseBool(v)
	if err != nil {
		l.fail(name, "%q is not a boolean; use true or false", v)
	}
	return b
}

func (l *loader) duration(name string) time.Duration {
	v := l.get(name)
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		l.fail(name, "%q is not a positive duration; use e.g. 90s or 2m", v)
	}
	return d
}

// url parses an absolute http(s) URL; wantScheme, when set, is the only scheme allowed.
func (l *loader) url(name, wantScheme string, required bool) *url.URL {
	v := l.get(name)
	if v == "" {
		if required {
			l.fail(name, "required; set it to a URL such as https://host:port")
		}
		return nil
	}
	u, err := url.Parse(v)
	switch {
	case err != nil:
		l.fail(name, "malformed URL: %v", redact.URLs(errors.Unwrap(err).Error()))
	case u.User != nil:
		l.fail(name, "%s", credentialsInURL)
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		l.fail(name, "%q is not an absolute http(s) URL; write it as https://host:port", v)
	case wantScheme != "" && u.Scheme != wantScheme:
		l.fail(name, "scheme %q not allowed; use %s://", u.Scheme, wantScheme)
	default:
		return u
	}
	return nil
}

// credentialsInURL is the problem of a URL with user information (http://user:password@host): it would be
// printed wherever the URL is (logs, errors), and the password is a secret.
const credentialsInURL = "holds credentials (user:password@host), which would be printed wherever the URL is shown: " +
	"remove them; user names and passwords have their own variables (e.g. KEYCLOAK_ADMIN_USER and KEYCLOAK_ADMIN_PASSWORD_FILE, S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY_FILE)"

func (l *loader) socket(name string) string {
	v := l.get(name)
	p := strings.TrimPrefix(v, "unix://")
	if p == "" || !filepath.IsAbs(p) {
		l.fail(name, "%q is not a unix socket; write it as unix:///path/to/api.sock (the SPIRE server's socket_path)", v)
	}
	return p
}

func (l *loader) trustDomain(name string) string {
	v := l.get(name)
	if v == "" || strings.ContainsAny(v, "/:@ ") || strings.ToLower(v) != v {
		l.fail(name, "%q is not a trust domain; use a lower-case DNS-like name such as example.org", v)
	}
	return v
}

// optionalFile reads the variable name, a path: "" when unset; otherwise the file must be readable (at most max
// bytes), else the problem is reported with fix.
func (l *loader) optionalFile(name string, max int64, fix string) string {
	path := l.get(name)
	if path != "" {
		l.readable(name, path, max, fix)
	}
	return path
}

// readable checks that the file path, which variable name names, is a regular file of at most max bytes that
// can be read (the step that uses it reads it again, as bounded).
func (l *loader) readable(name, path string, max int64, fix string) {
	if _, err := safefile.Read(path, max); err != nil {
		l.fail(name, "cannot read %s: %v; %s", path, errors.Unwrap(err), fix)
	}
}

// secret resolves NAME, NAME_FILE, then the Docker secret file. Setting both NAME and NAME_FILE is an error.
func (l *loader) secret(name string, required bool) Secret {
	meta, _ := Lookup(name)
	direct, hasDirect := l.raw(name)
	file, hasFile := l.raw(name + "_FILE")
	switch {
	case hasDirect && hasFile:
		l.fail(name, "set either %s or %s_FILE, not both", name, name)
		return Secret{}
	case hasFile:
		b, err := l.src.ReadFile(file)
		if err != nil {
			l.fail(name+"_FILE", "cannot read %s: %v; point it at a readable file holding the secret", file, errors.Unwrap(err))
			return Secret{}
		}
		s := strings.TrimRight(string(b), "\r\n")
		if s == "" {
			l.fail(name+"_FILE", "%s is empty", file)
		}
		return NewSecret(s)
	case hasDirect && direct != "":
		return NewSecret(direct)
	}
	dir := l.get("ZB_SECRETS_DIR")
	if b, err := l.src.ReadFile(filepath.Join(dir, meta.SecretName)); err == nil {
		if s := strings.TrimRight(string(b), "\r\n"); s != "" {
			return NewSecret(s)
		}
	}
	if required && !slices.Contains(l.unused, name) {
		l.fail(name, "required; set %s, %s_FILE, or the Docker secret %s (%s)", name, name, meta.SecretName, filepath.Join(dir, meta.SecretName))
	}
	return Secret{}
}

// realm reads what declares the Keycloak realm and its public client: its name, the client, its redirect URIs,
// the audience and the identity claim its mappers put in tokens.
func (l *loader) realm(c *Config) {
	c.Keycloak.Realm = l.nonEmpty("KEYCLOAK_REALM")
	c.OIDC.ClientID = l.nonEmpty("KEYCLOAK_CLIENT_ID")
	c.OIDC.RedirectURIs = l.list("KEYCLOAK_REDIRECT_URIS")
	c.OIDC.Audience = l.nonEmpty("ZITI_OIDC_AUDIENCE")
	c.OIDC.Claim = l.nonEmpty("ZITI_OIDC_CLAIM")
}

// StackRealm reads, from stack variables (Stack.Vars), the realm the bootstrap job declares, as Load reads it
// in the job (the same variables and defaults): Keycloak.Realm and the OIDC client, redirect URIs, audience and
// claim. The other fields stay zero.
func StackRealm(vars map[string]string) (*Config, error) {
	l := newLoader(Sources{Env: func(k string) (string, bool) { v, ok := vars[k]; return v, ok }})
	c := &Config{}
	l.realm(c)
	if err := l.err(); err != nil {
		return nil, err
	}
	return c, nil
}
