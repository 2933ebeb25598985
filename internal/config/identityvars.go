package config

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/safefile"
)

// IdentityVars are the variables of the commands that act with a SPIFFE identity from the SPIRE agent's Workload
// API: `workload`, `router-enrol-server` and `router-enrol`. init appends them to Vars, so Lookup, --set and the
// .env.example check know them.
var IdentityVars = []Var{
	{Name: "SPIFFE_ENDPOINT_SOCKET", Default: "unix:///run/spire/agent/public/api.sock", Help: "the SPIRE agent's Workload API: unix:///path (or tcp://IP:port)"},
	{Name: "ZB_WORKLOAD_SPIFFE_ID", Help: "workload: use the X509-SVID of this SPIFFE ID when the Workload API gives several; empty: the first"},
	{Name: "ZB_WORKLOAD_NAME", Help: "workload: the name requested at enrolment in OpenZiti ([requestedName]); empty: the SPIFFE ID's path with / as -"},
	{Name: "ZB_WORKLOAD_LISTEN", Default: "127.0.0.1:9109", Help: "workload: address of its /healthz (what `workload healthcheck` asks)"},
	{Name: "ZB_ROUTER_IDS", Help: "router-enrol-server: the routers allowed to enrol, `SPIFFE_ID=ROUTER_NAME[:ATTR,ATTR...]`, separated by ; or blanks"},
	{Name: "ZB_ROUTER_ENROL_LISTEN", Default: ":8443", Help: "router-enrol-server: HTTPS address (mutual TLS with SVIDs)"},
	{Name: "ZB_ROUTER_ENROL_URL", Help: "router-enrol: the enrolment server's URL, https://host:port"},
	{Name: "ZB_ROUTER_ENROL_SERVER_ID", Help: "router-enrol: the SPIFFE ID the enrolment server must present"},
}

// ZitiTrust is how to reach and verify the controller without logging in.
type ZitiTrust struct {
	URL    *url.URL
	CAFile string
	CATOFU bool
}

// Workload is the configuration of `workload`.
type Workload struct {
	Ziti        ZitiTrust
	Socket      string      // Workload API address, unix:///path or tcp://IP:port
	SpiffeID    spiffeid.ID // zero: the Workload API's first SVID
	Name        string      // "" derives it from the SPIFFE ID
	Listen      string
	WaitTimeout time.Duration
}

// RouterID maps a router's SPIFFE ID to the edge router it may enrol as.
type RouterID struct {
	SpiffeID       spiffeid.ID
	Name           string
	RoleAttributes []string
}

// RouterEnrolServer is the configuration of `router-enrol-server`.
type RouterEnrolServer struct {
	Ziti        Ziti // URL, User, Password, CAFile, CATOFU
	Socket      string
	Routers     []RouterID
	Listen      string
	WaitTimeout time.Duration // how long to wait for the controller and the Workload API at start
}

// RouterEnrolClient is the configuration of `router-enrol`.
type RouterEnrolClient struct {
	Socket      string
	URL         *url.URL
	ServerID    spiffeid.ID
	WaitTimeout time.Duration
}

// LoadWorkload reads and validates the variables of `workload`. On any problem it returns an *Error listing
// all of them.
func LoadWorkload(src Sources) (Workload, error) {
	l := newLoader(src)
	c := Workload{Ziti: l.zitiTrust(), Socket: l.workloadSocket("SPIFFE_ENDPOINT_SOCKET"), Name: l.get("ZB_WORKLOAD_NAME"),
		Listen: l.nonEmpty("ZB_WORKLOAD_LISTEN"), WaitTimeout: l.duration("ZB_WAIT_TIMEOUT")}
	if v := l.get("ZB_WORKLOAD_SPIFFE_ID"); v != "" {
		c.SpiffeID = l.spiffeID("ZB_WORKLOAD_SPIFFE_ID", v)
	}
	return c, l.err()
}

// LoadWorkloadListen reads ZB_WORKLOAD_LISTEN only: what `workload healthcheck` needs.
func LoadWorkloadListen(src Sources) (string, error) {
	l := newLoader(src)
	v := l.nonEmpty("ZB_WORKLOAD_LISTEN")
	return v, l.err()
}

// RouterEnrolServerHealth is what `router-enrol-server healthcheck` needs.
type RouterEnrolServerHealth struct {
	Socket string
	Listen string
}

// LoadRouterEnrolServerHealth reads SPIFFE_ENDPOINT_SOCKET and ZB_ROUTER_ENROL_LISTEN only.
func LoadRouterEnrolServerHealth(src Sources) (RouterEnrolServerHealth, error) {
	l := newLoader(src)
	c := RouterEnrolServerHealth{Socket: l.workloadSocket("SPIFFE_ENDPOINT_SOCKET"), Listen: l.nonEmpty("ZB_ROUTER_ENROL_LISTEN")}
	return c, l.err()
}

// LoadRouterEnrolServer reads and validates the variables of `router-enrol-server`: the controller's address,
// trust anchor and admin credentials, the Workload API and ZB_ROUTER_IDS. On any problem it returns an *Error
// listing all of them.
func LoadRouterEnrolServer(src Sources) (RouterEnrolServer, error) {
	l := newLoader(src)
	t := l.zitiTrust()
	c := RouterEnrolServer{
		Ziti:   Ziti{URL: t.URL, CAFile: t.CAFile, CATOFU: t.CATOFU, User: l.nonEmpty("ZITI_USER"), Password: l.secret("ZITI_PWD", true)},
		Socket: l.workloadSocket("SPIFFE_ENDPOINT_SOCKET"), Listen: l.nonEmpty("ZB_ROUTER_ENROL_LISTEN"),
		WaitTimeout: l.duration("ZB_WAIT_TIMEOUT"),
	}
	routers, problems := ParseRouterIDs(l.get("ZB_ROUTER_IDS"))
	for _, p := range problems {
		l.fail("ZB_ROUTER_IDS", "%s", p)
	}
	if len(routers) == 0 && len(problems) == 0 {
		l.fail("ZB_ROUTER_IDS", "required: name the routers that may enrol, e.g. spiffe://example.org/ziti-router=ziti-edge-router:public")
	}
	c.Routers = routers
	return c, l.err()
}

// LoadRouterEnrolClient reads and validates the variables of `router-enrol` (its flags are passed in Sources as
// the variables they stand for). On any problem it returns an *Error listing all of them.
func LoadRouterEnrolClient(src Sources) (RouterEnrolClient, error) {
	l := newLoader(src)
	c := RouterEnrolClient{Socket: l.workloadSocket("SPIFFE_ENDPOINT_SOCKET"), WaitTimeout: l.duration("ZB_WAIT_TIMEOUT")}
	c.URL = l.url("ZB_ROUTER_ENROL_URL", "https", true)
	if v := l.get("ZB_ROUTER_ENROL_SERVER_ID"); v == "" {
		l.fail("ZB_ROUTER_ENROL_SERVER_ID", "required: the SPIFFE ID of the enrolment server, e.g. spiffe://example.org/ziti-bootstrap/router-enrol")
	} else {
		c.ServerID = l.spiffeID("ZB_ROUTER_ENROL_SERVER_ID", v)
	}
	return c, l.err()
}

// zitiTrust reads ZITI_CTRL_URL, ZITI_CA_FILE and ZITI_CA_TOFU: a pinned CA file, or trust on first use only
// when asked for.
func (l *loader) zitiTrust() ZitiTrust {
	t := ZitiTrust{URL: l.url("ZITI_CTRL_URL", "https", true), CATOFU: l.bool("ZITI_CA_TOFU"), CAFile: l.get("ZITI_CA_FILE")}
	if t.CAFile != "" {
		l.readable("ZITI_CA_FILE", t.CAFile, safefile.MaxValue, "point it at the controller's CA bundle (PEM)")
	} else if !t.CATOFU {
		l.fail("ZITI_CA_FILE", "required to verify the controller's TLS certificate; set it to the controller CA bundle (PEM), or set ZITI_CA_TOFU=true to trust the controller's published CA on first use")
	}
	return t
}

// workloadSocket checks a Workload API address as go-spiffe takes it: unix:///absolute/path or tcp://IP:port.
func (l *loader) workloadSocket(name string) string {
	v := l.get(name)
	u, err := url.Parse(v)
	switch {
	case v == "":
		l.fail(name, "required: the SPIRE agent's Workload API socket, e.g. unix:///run/spire/agent/public/api.sock")
	case err != nil:
		l.fail(name, "malformed address %q: %v; write it as unix:///path/to/api.sock", v, errors.Unwrap(err))
	case u.Scheme == "unix" && (u.Host != "" || !filepath.IsAbs(u.Path)):
		l.fail(name, "%q: write a unix socket as unix:///absolute/path/api.sock (three slashes)", v)
	case u.Scheme == "tcp" && u.Port() == "":
		l.fail(name, "%q: write a TCP address as tcp://IP:port", v)
	case u.Scheme != "unix" && u.Scheme != "tcp":
		l.fail(name, "%q is not a Workload API address; use unix:///path/to/api.sock", v)
	}
	return v
}

func (l *loader) spiffeID(name, v string) spiffeid.ID {
	id, err := spiffeid.FromString(v)
	if err != nil {
		l.fail(name, "%q is not a SPIFFE ID (%v); write it as spiffe://trust.domain/path", v, err)
	}
	return id
}

// nameRE is what a router name and a role attribute may hold: no separator of ZB_ROUTER_IDS, no blank, and not
// the # or @ that start role references in OpenZiti policies.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// ParseRouterIDs parses ZB_ROUTER_IDS: entries `SPIFFE_ID=ROUTER_NAME[:ATTR,ATTR...]` separated by ";" or
// blanks (spaces, newlines), e.g.
//
//	spiffe://example.org/ziti-router=ziti-edge-router:public;spiffe://example.org/router-b=router-b:public,east
//
// A SPIFFE ID or a router name may appear once only (one router per identity, one identity per router). It
// returns the entries and one message per problem, each naming the entry at fault.
func ParseRouterIDs(s string) ([]RouterID, []string) {
	var out []RouterID
	var problems []string
	ids, names := map[string]bool{}, map[string]bool{}
	for _, e := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == ' ' || r == '\t' || r == '\n' || r == '\r' }) {
		id, rest, ok := strings.Cut(e, "=")
		if !ok {
			problems = append(problems, fmt.Sprintf("entry %q has no =; write SPIFFE_ID=ROUTER_NAME[:ATTR,ATTR...]", e))
			continue
		}
		sid, err := spiffeid.FromString(id)
		if err != nil {
			problems = append(problems, fmt.Sprintf("entry %q: %q is not a SPIFFE ID (%v)", e, id, err))
			continue
		}
		name, attrs, _ := strings.Cut(rest, ":")
		r := RouterID{SpiffeID: sid, Name: name}
		if !nameRE.MatchString(name) {
			problems = append(problems, fmt.Sprintf("entry %q: router name %q must be letters, digits, '.', '_' or '-'", e, name))
			continue
		}
		bad := false
		for _, a := range strings.Split(attrs, ",") {
			switch {
			case a == "" && attrs == "":
			case !nameRE.MatchString(a):
				problems = append(problems, fmt.Sprintf("entry %q: role attribute %q must be letters, digits, '.', '_' or '-' (without #)", e, a))
				bad = true
			default:
				r.RoleAttributes = append(r.RoleAttributes, a)
			}
		}
		if bad {
			continue
		}
		if ids[sid.String()] {
			problems = append(problems, fmt.Sprintf("entry %q: SPIFFE ID %s is mapped twice; give each router identity one router", e, sid))
			continue
		}
		if names[name] {
			problems = append(problems, fmt.Sprintf("entry %q: router %s is mapped twice; each router may be enrolled by one SPIFFE ID only", e, name))
			continue
		}
		ids[sid.String()], names[name] = true, true
		out = append(out, r)
	}
	return out, problems
}
