package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/redact"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/safefile"
)

// StackVars documents the variables of the Swarm stack files (stacks/*.yml and stacks/config/) that the
// configuration does not already have (TRUST_DOMAIN, ZITI_USER, ZITI_PWD, KEYCLOAK_ADMIN_USER, … are shared).
// init appends them to Vars, so Lookup, --set and the .env.example check know them. The ZB_STACK_* variables
// are not here: ziti-bootstrap sets them from the stack names.
var StackVars = []Var{
	{Name: "SPIRE_SERVER_IMAGE", Default: "ghcr.io/spiffe/spire-server:1.15.3", Help: "image of the SPIRE server service"},
	{Name: "SPIRE_AGENT_IMAGE", Default: "ghcr.io/spiffe/spire-agent:1.15.3", Help: "image of the SPIRE agent, run on every node as a plain container by the spire-agent-launcher service"},
	{Name: "POSTGRES_IMAGE", Default: "docker.io/library/postgres:15", Help: "image of Keycloak's PostgreSQL database"},
	{Name: "KEYCLOAK_IMAGE", Default: "quay.io/keycloak/keycloak:26.4.7", Help: "image of Keycloak"},
	{Name: "KEYCLOAK_OPTIMIZED", Default: "false", Help: "true when KEYCLOAK_IMAGE was built with `kc.sh build --db=postgres --health-enabled=true` (scripts/images.sh builds it so): Keycloak then starts --optimized, without its start-up build check; false for the upstream image, which is not built for PostgreSQL"},
	{Name: "ZITI_CONTROLLER_IMAGE", Default: "docker.io/openziti/ziti-controller:1.7.2", Help: "image of the OpenZiti controller"},
	{Name: "ZITI_ROUTER_IMAGE", Default: "docker.io/openziti/ziti-router:1.7.2", Help: "image of the OpenZiti edge router"},
	{Name: "ZB_IMAGE", Default: "ghcr.io/ziti-bootstrap/ziti-bootstrap:0.1.0", Help: "image of ziti-bootstrap's one-shot bootstrap job (this tool)"},
	{Name: "ZB_BACKUP_IMAGE", Default: "ghcr.io/ziti-bootstrap/ziti-bootstrap-backup:0.1.0", Help: "image of the scheduled backup service (this tool on PostgreSQL's image, Dockerfile.backup)"},

	{Name: "SPIRE_UPSTREAM_CA_CERT", Help: "PEM root SPIRE's CA chains to (UpstreamAuthority disk) and the agents' trust bundle; also SPIRE_UPSTREAM_CA_CERT_FILE"},
	{Name: "SPIRE_NODE_CA", Help: "PEM root CA of the nodes' certificates the SPIRE agents attest with (x509pop); default: the Swarm's root CA, which up reads from the Swarm; also SPIRE_NODE_CA_FILE"},
	{Name: "ZB_SWARM_CERTS_DIR", Default: "/var/lib/docker/swarm/certificates", Help: "where each node keeps its Swarm certificate and key (Docker's data root + /swarm/certificates): the SPIRE agent attests with them"},
	{Name: "SPIRE_DATASTORE_SUFFIX", Help: "set by up: which SPIRE datastore the server and agents use (datastore<suffix>.sqlite3); a new one when the SPIRE version jumps more than one minor version"},
	{Name: "SPIRE_LOG_LEVEL", Default: "INFO", Help: "log level of the SPIRE server and agents"},
	{Name: "SPIRE_CA_TTL", Default: "24h", Help: "TTL of the SPIRE server's signing CA"},
	{Name: "SPIRE_X509_SVID_TTL", Default: "1h", Help: "default TTL of X.509 SVIDs"},
	{Name: "SPIRE_AGENT_SYNC_INTERVAL", Default: "1s", Help: "how often each SPIRE agent asks the server for new and changed entries (SPIRE's experimental sync_interval; its default is 5s): a workload started before its entry exists gets its SVID that much later at most"},

	{Name: "KEYCLOAK_DB_USER", Default: "keycloak", Help: "PostgreSQL user of Keycloak"},
	{Name: "KEYCLOAK_DB_PASSWORD", Secret: true, SecretName: "keycloak_db_password", Help: "PostgreSQL password of Keycloak"},
	{Name: "KEYCLOAK_PUBLISHED_PORT", Default: "8080", Help: "port Keycloak's HTTP listener is published on"},
	{Name: "KEYCLOAK_PROXY_HEADERS", Help: "xforwarded or forwarded only when Keycloak's published port is reached through a reverse proxy that sets those headers; empty (the default): Keycloak ignores them, which a client could otherwise set to spoof its address and Keycloak's back-channel URLs"},
	{Name: "KEYCLOAK_INTERNAL_URL", Default: "https://keycloak:8443", Help: "Keycloak as the bootstrap job, the converge service and the OpenZiti controller (JWKS) reach it inside the Swarm: its HTTPS listener, verified with KEYCLOAK_CA"},
	{Name: "KEYCLOAK_CA", Help: "PEM CA of Keycloak's TLS certificate: shipped as a Swarm config to the OpenZiti controller (its only roots for the JWKS fetch, SSL_CERT_FILE), the bootstrap job and the converge service (KEYCLOAK_CA_FILE); `up --dev`: its dev CA; also KEYCLOAK_CA_FILE"},
	{Name: "KEYCLOAK_TLS_CERT", Help: "PEM certificate (chain) of Keycloak's HTTPS listener (port 8443), valid for the host of KEYCLOAK_INTERNAL_URL (keycloak) and signed by KEYCLOAK_CA; `up --dev`: made by its dev CA; also KEYCLOAK_TLS_CERT_FILE"},
	{Name: "KEYCLOAK_TLS_KEY", Secret: true, SecretName: "keycloak_tls_key", Help: "PEM private key of KEYCLOAK_TLS_CERT"},
	{Name: "KEYCLOAK_PUBLISH", Default: "http", Help: "which of Keycloak's listeners is published on KEYCLOAK_PUBLISHED_PORT (mode ZB_PUBLISH_MODE): http (port 8080, the default: browsers need no CA), or https (port 8443; Keycloak then serves no plain HTTP at all, and KEYCLOAK_PUBLIC_URL defaults to https://localhost:<port>)"},
	{Name: "ZB_KEYCLOAK_TARGET_PORT", Default: "8080", Help: "set by up from KEYCLOAK_PUBLISH (8080 or 8443): the container port published"},
	{Name: "ZB_KEYCLOAK_HTTP", Default: "true", Help: "set by up from KEYCLOAK_PUBLISH: whether Keycloak serves plain HTTP (port 8080) at all"},
	{Name: "KEYCLOAK_PUBLIC_URL", Default: "http://localhost:8080", Help: "Keycloak's URL as users reach it (its hostname, KC_HOSTNAME): the issuer of the tokens OpenZiti accepts; default http://localhost:<KEYCLOAK_PUBLISHED_PORT>"},

	{Name: "ZITI_CTRL_ADVERTISED_ADDRESS", Default: "ziti-controller", Help: "DNS name of the OpenZiti controller (its certificates, its network alias)"},
	{Name: "ZITI_CTRL_PUBLISHED_PORT", Default: "1280", Help: "port the controller's edge API is published on"},
	{Name: "ZITI_ROUTER_NAME", Default: "ziti-edge-router", Help: "name of the edge router"},
	{Name: "ZITI_ROUTER_ADVERTISED_ADDRESS", Default: "ziti-router", Help: "DNS name of the edge router"},
	{Name: "ZITI_ROUTER_PUBLISHED_PORT", Default: "3022", Help: "port the edge router's listener is published on"},
	{Name: "ZITI_CONSOLE", Default: "true", Help: "serve the admin console from the controller (/zac)"},

	{Name: "SPIRE_SERVER_CONSTRAINT", Default: StateConstraint, Help: "placement of the SPIRE server and the bootstrap job (the datastore and admin socket are local volumes)"},
	{Name: "KEYCLOAK_DB_CONSTRAINT", Default: StateConstraint, Help: "placement of Keycloak's database (a local volume)"},
	{Name: "ZITI_CTRL_CONSTRAINT", Default: StateConstraint, Help: "placement of the OpenZiti controller (a local volume)"},
	{Name: "ZITI_ROUTER_CONSTRAINT", Default: "node.platform.os == linux", Help: "placement of the edge router (any node: it enrols by itself with its SVID wherever it starts)"},
	{Name: "ZB_ENDPOINT_MODE", Default: "vip", Help: "vip, or dnsrr where the kernel has no IPVS (Swarm's virtual IPs and routing mesh need it)"},
	{Name: "ZB_PUBLISH_MODE", Default: "ingress", Help: "ingress, or host together with ZB_ENDPOINT_MODE=dnsrr"},
	{Name: "ZB_METRICS_ADDRESS", Default: "127.0.0.1", Help: "the address on which the backup and converge services serve /metrics, /healthz and /status (ports 9108, 9109): 127.0.0.1, the default, for their own health checks only; 0.0.0.0 (or one of their addresses) to scrape them from the overlay networks, where every container on those networks, attachable ones included, can then read them"},
}

// StackAdminClientID is the client_id of Keycloak's admin service account in the stacks unless
// KEYCLOAK_ADMIN_CLIENT_ID names another: Keycloak makes it on its first start (KC_BOOTSTRAP_ADMIN_CLIENT_ID), the
// bootstrap job and the converge service log in with it (its secret: KEYCLOAK_ADMIN_CLIENT_SECRET).
const StackAdminClientID = "ziti-bootstrap"

// StateLabel is the node label that marks the state node: the stateful services (SPIRE server, Keycloak's
// database, the OpenZiti controller) and what must sit beside their volumes (the bootstrap job, the backup
// service) are placed there by default. up sets it on the manager it talks to when no node has it.
const StateLabel = "ziti-bootstrap.state"

// StateConstraint is the default placement of the stateful services.
const StateConstraint = "node.labels." + StateLabel + " == true"

// stackChecks validate stack variables whose wrong values would only fail inside the Swarm, or, pasted into a
// configuration file (stacks/config/: SPIRE's HCL), would change its meaning. Every stack variable is also
// checked by plainValue.
var stackChecks = map[string]func(string) error{
	"TRUST_DOMAIN":                   trustDomain,
	"SPIRE_LOG_LEVEL":                oneOf("DEBUG", "INFO", "WARN", "ERROR"),
	"SPIRE_CA_TTL":                   positiveDuration,
	"SPIRE_X509_SVID_TTL":            positiveDuration,
	"SPIRE_AGENT_SYNC_INTERVAL":      positiveDuration,
	"KEYCLOAK_REALM":                 plainName,
	"KEYCLOAK_DB_USER":               plainName,
	"KEYCLOAK_ADMIN_USER":            plainName,
	"KEYCLOAK_ADMIN_CLIENT_ID":       plainName,
	"KEYCLOAK_CLIENT_ID":             plainName,
	"ZITI_USER":                      plainName,
	"ZITI_ROUTER_NAME":               plainName,
	"ZITI_CTRL_ADVERTISED_ADDRESS":   hostName,
	"ZITI_ROUTER_ADVERTISED_ADDRESS": hostName,
	"ZB_ENDPOINT_MODE":               oneOf("vip", "dnsrr"),
	"ZB_PUBLISH_MODE":                oneOf("ingress", "host"),
	"ZB_METRICS_ADDRESS":             ipAddress,
	"KEYCLOAK_PUBLISHED_PORT":        port,
	"ZITI_CTRL_PUBLISHED_PORT":       port,
	"ZITI_ROUTER_PUBLISHED_PORT":     port,
	"ZITI_CONSOLE":                   func(v string) error { _, err := strconv.ParseBool(v); return err },
	"KEYCLOAK_OPTIMIZED":             oneOf("true", "false"),
	"KEYCLOAK_PUBLIC_URL":            httpURL,
	"KEYCLOAK_INTERNAL_URL":          httpURL,
	"KEYCLOAK_PROXY_HEADERS":         oneOf("xforwarded", "forwarded"),
	"KEYCLOAK_PUBLISH":               oneOf("http", "https"),
}

// plainValue is the check of every stack variable: one line of printable text. A newline, a NUL or another
// control character has no place in any of them, and would let a value add lines to a configuration file.
func plainValue(v string) error {
	if strings.TrimSpace(v) == "" {
		return nil
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("holds the control character %U: write the value on one line, without control characters", r)
		}
	}
	return nil
}

// pemValues are the stack variables that hold PEM (several lines): they become the data of Swarm configs, never
// text inside another file.
var pemValues = map[string]bool{"SPIRE_UPSTREAM_CA_CERT": true, "SPIRE_NODE_CA": true, "KEYCLOAK_CA": true, "KEYCLOAK_TLS_CERT": true}

// trustDomain is SPIFFE's rule: lower-case letters, digits, dots, dashes and underscores.
func trustDomain(v string) error {
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return errors.New("not a trust domain: use lower-case letters, digits, dots, dashes and underscores, such as example.org")
		}
	}
	return nil
}

func positiveDuration(v string) error {
	if d, err := time.ParseDuration(v); err != nil || d <= 0 {
		return errors.New("not a positive duration such as 24h or 90m")
	}
	return nil
}

// plainName is a user, realm, client or router name: no quotes, backslashes, dollar signs, backquotes or spaces,
// which would need quoting wherever the name is written.
func plainName(v string) error {
	if strings.ContainsAny(v, "\"'`$\\ ") {
		return errors.New("holds a quote, backslash, dollar sign, backquote or space: use letters, digits and - _ . @")
	}
	return nil
}

// hostName is a DNS name or an IP address.
func hostName(v string) error {
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' || r == ':') {
			return errors.New("not a host name or IP address")
		}
	}
	return nil
}

func httpURL(v string) error {
	u, err := url.Parse(v)
	if err == nil && u.User != nil {
		return errors.New(credentialsInURL)
	}
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("not an http(s) URL such as https://sso.example.com")
	}
	return nil
}

func oneOf(values ...string) func(string) error {
	return func(v string) error {
		for _, ok := range values {
			if v == ok {
				return nil
			}
		}
		return fmt.Errorf("use %s", strings.Join(values, " or "))
	}
}

func ipAddress(v string) error {
	if net.ParseIP(v) == nil {
		return errors.New("not an IP address: use 127.0.0.1 (the default), 0.0.0.0 or one of the service's addresses")
	}
	return nil
}

func port(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		return errors.New("not a TCP port (1-65535)")
	}
	return nil
}

// Stack is the configuration of `up` and `down`: the values of the stack files' variables, and how to reach the
// Docker Engine.
type Stack struct {
	// Vars are the interpolation variables of the stack files. Secrets that are not set anywhere are absent:
	// the stack that needs one reports it, naming its file and line.
	Vars        map[string]string
	Docker      Docker
	WaitTimeout time.Duration
}

// LoadStack resolves the stack variables names (stacks.Variables, without the ZB_STACK_* ones) from src like
// Load does: flags, the environment, then the .env file, else the documented default; secrets from NAME,
// NAME_FILE or the Docker secret in ZB_SECRETS_DIR. The PEM variables (SPIRE_*_CERT) may be given as NAME_FILE
// too. It does not need the variables of the other commands (ZITI_PWD is only required by the stack that uses
// it). Every problem is reported in one *Error.
func LoadStack(src Sources, names []string) (*Stack, error) {
	l := newLoader(src)
	for k := range src.Flags {
		base, isFile := strings.CutSuffix(k, "_FILE")
		if _, ok := Lookup(base); isFile && ok {
			continue
		}
		if _, ok := Lookup(k); !ok {
			l.fail(k, "unknown variable; see .env.example for the list")
		}
	}
	out := &Stack{Vars: map[string]string{}}
	for _, name := range names {
		meta, ok := Lookup(name)
		if !ok {
			l.fail(name, "read by the stack files but not documented in internal/config (a bug, please report it)")
			continue
		}
		if meta.Secret {
			if s := l.secret(name, false); s.IsSet() {
				out.Vars[name] = s.Value()
			}
			continue
		}
		v := l.get(name)
		if file, set := l.raw(name + "_FILE"); set && strings.TrimSpace(file) != "" {
			if direct, _ := l.raw(name); strings.TrimSpace(direct) != "" {
				l.fail(name, "set either %s or %s_FILE, not both", name, name)
				continue
			}
			b, err := l.src.ReadFile(strings.TrimSpace(file))
			if err != nil {
				l.fail(name+"_FILE", "cannot read %s: %v; point it at a readable file", file, errors.Unwrap(err))
				continue
			}
			v = strings.TrimRight(string(b), "\r\n")
		}
		if err := plainValue(v); err != nil && !pemValues[name] {
			l.fail(name, "%v", err)
			continue
		}
		if check := stackChecks[name]; check != nil && v != "" {
			if err := check(v); err != nil {
				l.fail(name, "%q: %v", redact.URLs(v), err)
				continue
			}
		}
		if v != "" {
			out.Vars[name] = v
		}
	}
	// Keycloak's public URL follows its published port and listener unless given
	scheme := "http"
	if slices.Contains(names, "ZB_KEYCLOAK_TARGET_PORT") || slices.Contains(names, "KEYCLOAK_PUBLISH") {
		scheme = publishKeycloak(l, out.Vars)
	}
	if _, wanted := out.Vars["KEYCLOAK_PUBLIC_URL"]; wanted || slices.Contains(names, "KEYCLOAK_PUBLIC_URL") {
		if v, _ := l.raw("KEYCLOAK_PUBLIC_URL"); strings.TrimSpace(v) == "" {
			if p := out.Vars["KEYCLOAK_PUBLISHED_PORT"]; p != "" {
				out.Vars["KEYCLOAK_PUBLIC_URL"] = scheme + "://localhost:" + p
			}
		}
	}
	// the stacks always have Keycloak's admin service account: the one named, else theirs
	if slices.Contains(names, "KEYCLOAK_ADMIN_CLIENT_ID") && out.Vars["KEYCLOAK_ADMIN_CLIENT_ID"] == "" {
		out.Vars["KEYCLOAK_ADMIN_CLIENT_ID"] = StackAdminClientID
	}
	out.Docker.Host = l.nonEmpty("DOCKER_HOST")
	out.Docker.Enabled = true
	out.WaitTimeout = l.duration("ZB_WAIT_TIMEOUT")
	if err := l.err(); err != nil {
		return nil, err
	}
	return out, nil
}

// newLoader prepares a loader as Load does: default environment and file reader, the .env file read.
func newLoader(src Sources) *loader {
	l := &loader{src: src, file: map[string]string{}}
	if l.src.Env == nil {
		l.src.Env = os.LookupEnv
	}
	if l.src.ReadFile == nil {
		l.src.ReadFile = safefile.ReadValue
	}
	if src.EnvFile != "" {
		d := src.Read().dotenv
		m, err := d.vars, d.err
		var pe *fs.PathError
		switch {
		case errors.As(err, &pe):
			l.fail("--env-file", "cannot read %s: %v; pass a readable regular file or omit the flag", src.EnvFile, pe.Err)
		case err != nil:
			l.fail("--env-file", "%v", err)
		default:
			l.file = m
		}
	}
	return l
}

// WithDefaults returns src with defaults below every other source: defaults[NAME] applies only when neither
// NAME nor NAME_FILE (nor, for NAME_FILE, NAME) is set by the flags, the environment or the .env file. It is
// how built-in settings such as `up --dev`'s generated secrets (ZITI_PWD_FILE=…) yield to the operator's.
func (src Sources) WithDefaults(defaults map[string]string) Sources {
	env := src.Env
	if env == nil {
		env = os.LookupEnv
	}
	file := map[string]string{}
	if src = src.Read(); src.EnvFile != "" && src.dotenv.err == nil {
		file = src.dotenv.vars
	}
	// set: given a non-empty value (a copy of .env.example leaves many variables empty)
	set := func(k string) bool {
		if strings.TrimSpace(src.Flags[k]) != "" || strings.TrimSpace(file[k]) != "" {
			return true
		}
		v, _ := env(k)
		return strings.TrimSpace(v) != ""
	}
	out := src
	out.Env = func(k string) (string, bool) {
		v, ok := env(k)
		if ok && strings.TrimSpace(v) != "" {
			return v, true
		}
		d, has := defaults[k]
		if !has || set(k) {
			return v, ok
		}
		base, isFile := strings.CutSuffix(k, "_FILE")
		if (isFile && set(base)) || (!isFile && set(k+"_FILE")) {
			return v, ok
		}
		return d, true
	}
	return out
}

// publishKeycloak reads KEYCLOAK_PUBLISH (which no stack file names: its stack reads what up derives from it), sets
// the variables up derives from it (ZB_KEYCLOAK_TARGET_PORT, ZB_KEYCLOAK_HTTP) and returns the scheme of the
// published listener.
func publishKeycloak(l *loader, vars map[string]string) string {
	publish := strings.TrimSpace(l.get("KEYCLOAK_PUBLISH"))
	if publish == "" {
		publish = "http"
	}
	if err := stackChecks["KEYCLOAK_PUBLISH"](publish); err != nil {
		l.fail("KEYCLOAK_PUBLISH", "%q: %v", publish, err)
	}
	vars["KEYCLOAK_PUBLISH"] = publish
	if publish == "https" {
		vars["ZB_KEYCLOAK_TARGET_PORT"], vars["ZB_KEYCLOAK_HTTP"] = "8443", "false"
		return "https"
	}
	vars["ZB_KEYCLOAK_TARGET_PORT"], vars["ZB_KEYCLOAK_HTTP"] = "8080", "true"
	return "http"
}
