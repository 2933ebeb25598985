// Package keycloak is ziti-bootstrap's one adapter for Keycloak's admin REST API. It logs in to the master realm
// (with an admin service account's client secret when one is configured, else as an admin user with admin-cli),
// keeps one admin token per client (shared by every step of a run), renews it before it expires, counts every HTTP call through internal/calls, and turns gocloak's wire
// types into plain structs (Realm, Client, ProtocolMapper, User, UserProfileAttribute).
//
// Updates take a field mask: UpdateRealm(ctx, want, "displayName", "attributes.x") writes exactly the named fields
// and nothing else, so a step's plan (which names the fields that differ) is what gets written. Keycloak's quirks
// (realm attributes are replaced as a whole on PUT, protocol mappers and users are replaced as a whole) are
// handled here by merging with the current object, so callers never send more than they mean to change.
package keycloak

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/Nerzal/gocloak/v13"
	"github.com/go-resty/resty/v2"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/invalid"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/redact"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
)

// System is the name calls are counted under.
const System = "keycloak"

// tokenPath ends every token endpoint; a token request opens a session and is counted as a read.
const tokenPath = "/protocol/openid-connect/token"

const (
	adminRealm    = "master"
	adminClientID = "admin-cli"
	// renewBefore is how long before its expiry the admin token is replaced.
	renewBefore = 15 * time.Second
)

// Options say how to reach Keycloak's admin API.
type Options struct {
	URL           *url.URL // base URL, e.g. http://127.0.0.1:8180 (include /auth for Keycloak < 17)
	AdminUser     string   // a user of the master realm allowed to administer realms
	AdminPassword redact.Secret
	// AdminClientID and AdminClientSecret name a confidential client of the master realm whose service account
	// administers realms (Keycloak's KC_BOOTSTRAP_ADMIN_CLIENT_ID/SECRET make one on the first start). When
	// AdminClientID is set the client logs in with the client credentials grant: no password hash for Keycloak to compute,
	// which makes the login several times cheaper. A client Keycloak does not know (invalid_client: e.g. a database
	// older than the setting) falls back to the user's password login when AdminPassword is set.
	AdminClientID     string
	AdminClientSecret redact.Secret
	Counter           *calls.Counter // every HTTP call is counted here; nil counts nothing
	// Transport is the base HTTP transport; http.DefaultTransport when nil and CAFile is empty.
	Transport http.RoundTripper
	// CAFile (KEYCLOAK_CA_FILE), when Transport is nil: a PEM bundle, the only roots that verify Keycloak.
	CAFile string
	// CA, when Transport is nil and CAFile empty: the same as PEM data (KEYCLOAK_CA of the stacks).
	CA []byte
	// Timeout bounds each HTTP request; 30 s when zero.
	Timeout time.Duration
}

// Client talks to one Keycloak server as its administrator. It is safe for concurrent use.
type Client struct {
	gc   *gocloak.GoCloak
	base string
	opts Options

	loginMu  sync.Mutex // one login at a time
	mu       sync.Mutex
	token    string
	expires  time.Time
	logins   int  // successful admin logins
	byClient bool // false once the service account was refused and the password login took over
}

// New connects to Keycloak and logs in to the master realm with admin-cli.
//
// A rejected login (invalid_grant) is an invalid configuration (config.IsInvalid) naming KEYCLOAK_ADMIN_PASSWORD,
// wrapped in wait.Permanent so that wait.For stops at once. A server that is down, starting (5xx) or hidden behind a
// proxy that does not route yet (404) gives a plain, retryable error naming the URL and the HTTP status.
func New(ctx context.Context, opts Options) (*Client, error) {
	c, err := Dial(opts)
	if err != nil {
		return nil, err
	}
	if err := c.login(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Connect waits, within t's deadline, until Keycloak accepts the admin login and answers Ping, and returns the
// client and the server version. t.What and t.Where default to "Keycloak" and the URL. After the deadline the error
// is a *wait.UnreachableError carrying the last failure (e.g. "503 Service Unavailable").
func Connect(ctx context.Context, opts Options, t wait.Target) (*Client, string, error) {
	if t.What == "" {
		t.What = "Keycloak"
	}
	if t.Where == "" && opts.URL != nil {
		t.Where = opts.URL.Redacted()
	}
	var (
		c       *Client
		version string
	)
	err := wait.For(ctx, t, func(ctx context.Context) error {
		var err error
		if c == nil {
			if c, err = New(ctx, opts); err != nil {
				return err
			}
		}
		version, err = c.Ping(ctx)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	return c, version, nil
}

// Errors of the admin login, the causes (errors.Is) of its invalid-configuration errors.
var (
	ErrLoginRejected = errors.New("admin login rejected") // wrong user name or password
	ErrLoginRefused  = errors.New("admin login refused")  // the user may not log in (disabled, actions pending)
)

// Dial returns a client without contacting Keycloak: it logs in on its first call, with the same errors as New.
// Use it to build steps before Keycloak is up; the "keycloak/reachable" step can then probe with Ping.
func Dial(opts Options) (*Client, error) {
	if opts.URL == nil || opts.URL.Host == "" {
		return nil, wait.Permanent(&invalid.Error{Problems: []invalid.Problem{{Var: "KEYCLOAK_URL", Msg: "required; set it to Keycloak's base URL such as https://keycloak.example.com"}}})
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if problems := credentialProblems(opts); len(problems) > 0 {
		return nil, wait.Permanent(&invalid.Error{Problems: problems})
	}
	if opts.Transport == nil && (opts.CAFile != "" || len(opts.CA) > 0) {
		t, err := pinnedTransportPEM(opts.CA, "KEYCLOAK_CA")
		if opts.CAFile != "" {
			t, err = pinnedTransport(opts.CAFile)
		}
		if err != nil {
			return nil, err
		}
		opts.Transport = t
	}
	base := strings.TrimRight(opts.URL.String(), "/")
	gc := gocloak.NewClient(base)
	gc.RestyClient().
		SetTransport(calls.Transport(opts.Counter, System, opts.Transport, tokenPath)).
		SetTimeout(opts.Timeout).
		SetLogger(restyLogger{})
	return &Client{gc: gc, base: base, opts: opts, byClient: opts.AdminClientID != ""}, nil
}

// credentialProblems checks that a service account comes with its secret.
func credentialProblems(opts Options) []invalid.Problem {
	if opts.AdminClientID != "" && !opts.AdminClientSecret.IsSet() {
		return []invalid.Problem{{Var: "KEYCLOAK_ADMIN_CLIENT_SECRET", Msg: "required with KEYCLOAK_ADMIN_CLIENT_ID; set it (or KEYCLOAK_ADMIN_CLIENT_SECRET_FILE), or unset KEYCLOAK_ADMIN_CLIENT_ID to log in with KEYCLOAK_ADMIN_PASSWORD"}}
	}
	return nil
}

// Logins is the number of admin logins the client made: one per run unless the token expired or was refused.
func (c *Client) Logins() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.logins
}

// LoginMethod says how the client logs in: "client credentials of CLIENT_ID" or "password of user USER".
func (c *Client) LoginMethod() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byClient {
		return "client credentials of " + c.opts.AdminClientID
	}
	return "password of user " + c.opts.AdminUser
}

// URL is the base URL of the server.
func (c *Client) URL() string { return c.base }

// Ping checks that the admin API answers with the current session and returns the server version.
func (c *Client) Ping(ctx context.Context) (string, error) {
	info, err := authedValue(ctx, c, func(tok string) (*gocloak.ServerInfoRepresentation, error) {
		return c.gc.GetServerInfo(ctx, tok)
	})
	if err != nil {
		return "", c.wrap(err, "read server info")
	}
	if info == nil || info.SystemInfo == nil || info.SystemInfo.Version == nil {
		return "", nil
	}
	return *info.SystemInfo.Version, nil
}

// login obtains a fresh admin token: with the service account's client credentials when configured (falling back
// for good to the password when Keycloak does not know the client and a password is set), else with the password.
func (c *Client) login(ctx context.Context) error {
	c.mu.Lock()
	byClient := c.byClient
	c.mu.Unlock()
	if byClient {
		oe, err := c.adminGrant(ctx, map[string]string{"grant_type": "client_credentials",
			"client_id": c.opts.AdminClientID, "client_secret": c.opts.AdminClientSecret.Value()})
		if oe == nil {
			return err
		}
		if (oe.Code != "invalid_client" && oe.Code != "unauthorized_client") || !c.opts.AdminPassword.IsSet() {
			return c.clientLoginError(oe)
		}
		slog.Info("Keycloak refused the admin service account; logging in with the admin password instead",
			"url", c.base, "client", c.opts.AdminClientID, "error", oe.Error(),
			"note", "Keycloak makes its bootstrap service account (KC_BOOTSTRAP_ADMIN_CLIENT_ID) on its first start only: a database made before keeps the password login")
		c.mu.Lock()
		c.byClient = false
		c.mu.Unlock()
	}
	oe, err := c.adminGrant(ctx, passwordForm(adminClientID, "", c.opts.AdminUser, c.opts.AdminPassword.Value()))
	if oe == nil {
		return err
	}
	switch {
	case oe.Code == "invalid_grant" && strings.Contains(oe.Description, "credentials"):
		return wait.Permanent(&invalid.Error{Problems: []invalid.Problem{{Var: "KEYCLOAK_ADMIN_PASSWORD",
			Msg: fmt.Sprintf("Keycloak at %s rejected the admin login of user %q in realm %s (%s); check KEYCLOAK_ADMIN_USER and KEYCLOAK_ADMIN_PASSWORD",
				c.base, c.opts.AdminUser, adminRealm, oe.Description)}}, Cause: ErrLoginRejected})
	case oe.Code == "invalid_grant":
		return wait.Permanent(&invalid.Error{Problems: []invalid.Problem{{Var: "KEYCLOAK_ADMIN_USER",
			Msg: fmt.Sprintf("Keycloak at %s refused the admin login of user %q in realm %s (%s); the user must be enabled and have no pending required actions",
				c.base, c.opts.AdminUser, adminRealm, oe.Description)}}, Cause: ErrLoginRefused})
	default:
		return c.otherLoginError(oe, adminClientID)
	}
}

// otherLoginError is a refused admin login that names no credential: retried when Keycloak is starting up,
// overloaded, or behind a reverse proxy that has no route to it yet (5xx, 404, 429); final otherwise.
func (c *Client) otherLoginError(oe *OAuthError, clientID string) error {
	if oe.Status >= 500 || oe.Status == http.StatusNotFound || oe.Status == http.StatusTooManyRequests {
		return fmt.Errorf("Keycloak at %s: admin login: %w", c.base, oe)
	}
	return wait.Permanent(fmt.Errorf("Keycloak at %s: admin login with client %s of realm %s: %w", c.base, clientID, adminRealm, oe))
}

// adminGrant asks the master realm for an admin token and keeps it. A refusal is returned as oe; anything else
// (nil on success, a transport error, retryable) as err.
func (c *Client) adminGrant(ctx context.Context, form map[string]string) (oe *OAuthError, err error) {
	jwt, err := c.grant(ctx, adminRealm, form)
	if err == nil {
		c.setToken(jwt)
		return nil, nil
	}
	if errors.As(err, &oe) {
		return oe, nil
	}
	return nil, fmt.Errorf("Keycloak at %s: admin login: %w", c.base, err)
}

// clientLoginError classifies a refused client credentials login as loginError does a password login.
func (c *Client) clientLoginError(oe *OAuthError) error {
	switch {
	case oe.Code == "invalid_client" || oe.Code == "unauthorized_client":
		return wait.Permanent(&invalid.Error{Problems: []invalid.Problem{{Var: "KEYCLOAK_ADMIN_CLIENT_SECRET",
			Msg: fmt.Sprintf("Keycloak at %s rejected the admin login of client %q in realm %s (%s); check KEYCLOAK_ADMIN_CLIENT_ID and KEYCLOAK_ADMIN_CLIENT_SECRET, or set KEYCLOAK_ADMIN_PASSWORD to log in as KEYCLOAK_ADMIN_USER",
				c.base, c.opts.AdminClientID, adminRealm, oe.Description)}}, Cause: ErrLoginRejected})
	default:
		return c.otherLoginError(oe, c.opts.AdminClientID)
	}
}

// dropToken forgets tok (unless another login replaced it already): the next call logs in again.
func (c *Client) dropToken(tok string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == tok {
		c.token = ""
	}
}

func (c *Client) loggedInByClient() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byClient
}

func (c *Client) setToken(jwt *gocloak.JWT) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.token = jwt.AccessToken
	c.expires = time.Now().Add(time.Duration(jwt.ExpiresIn) * time.Second)
	c.logins++
}

// currentToken returns a valid admin token, logging in again when the current one is about to expire. Callers
// that find no token at once wait for one login: concurrent steps share one token.
func (c *Client) currentToken(ctx context.Context) (string, error) {
	if tok := c.validToken(); tok != "" {
		return tok, nil
	}
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	if tok := c.validToken(); tok != "" {
		return tok, nil // another caller logged in meanwhile
	}
	if err := c.login(ctx); err != nil {
		return "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token, nil
}

// validToken is the current token unless it is missing or about to expire.
func (c *Client) validToken() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && time.Until(c.expires) > renewBefore {
		return c.token
	}
	return ""
}

// authed runs fn with an admin token; on 401 (session ended early, e.g. Keycloak restarted) it logs in once more
// and retries, and so it does on 403 with a service account's token, whose rights are those of its roles when
// it was issued (a realm created since is not in them).
func (c *Client) authed(ctx context.Context, fn func(token string) error) error {
	tok, err := c.currentToken(ctx)
	if err != nil {
		return err
	}
	err = fn(tok)
	switch st := statusOf(err); {
	case st == http.StatusUnauthorized:
	case st == http.StatusForbidden && c.loggedInByClient():
	default:
		return err
	}
	c.dropToken(tok)
	if tok, err = c.currentToken(ctx); err != nil {
		return err
	}
	return fn(tok)
}

// authedValue is authed for a call that returns a value.
func authedValue[T any](ctx context.Context, c *Client, fn func(token string) (T, error)) (T, error) {
	var v T
	err := c.authed(ctx, func(tok string) error {
		var err error
		v, err = fn(tok)
		return err
	})
	return v, err
}

// Token obtains an access token for username with the resource owner password grant (direct access grant) of
// clientID in realm. clientSecret is empty for public clients. It is meant for tests and verification; a refused
// grant is an *OAuthError (see IsInvalidGrant).
func (c *Client) Token(ctx context.Context, realm, clientID, clientSecret, username, password string) (string, error) {
	jwt, err := c.passwordGrant(ctx, realm, clientID, clientSecret, username, password)
	if err != nil {
		return "", fmt.Errorf("keycloak: token for user %q from client %s of realm %s: %w", username, clientID, realm, err)
	}
	return jwt.AccessToken, nil
}

func (c *Client) passwordGrant(ctx context.Context, realm, clientID, clientSecret, username, password string) (*gocloak.JWT, error) {
	if err := checkName("realm", realm); err != nil {
		return nil, err
	}
	return c.grant(ctx, realm, passwordForm(clientID, clientSecret, username, password))
}

// passwordForm is the form of a resource owner password grant; clientSecret is empty for public clients.
func passwordForm(clientID, clientSecret, username, password string) map[string]string {
	form := map[string]string{"grant_type": "password", "client_id": clientID, "username": username, "password": password, "scope": "openid"}
	if clientSecret != "" {
		form["client_secret"] = clientSecret // client_secret_post
	}
	return form
}

// grant posts form to realm's token endpoint and returns the tokens, or an *OAuthError for a refusal.
func (c *Client) grant(ctx context.Context, realm string, form map[string]string) (*gocloak.JWT, error) {
	var jwt gocloak.JWT
	var herr gocloak.HTTPErrorResponse
	resp, err := c.gc.RestyClient().R().SetContext(ctx).SetFormData(form).SetResult(&jwt).SetError(&herr).
		Post(c.realmURL(realm) + tokenPath)
	if err != nil {
		return nil, err
	}
	if resp.IsError() {
		return nil, &OAuthError{Status: resp.StatusCode(), StatusText: resp.Status(), Code: herr.Error, Description: herr.Description}
	}
	if jwt.AccessToken == "" {
		return nil, fmt.Errorf("token endpoint of realm %s answered %s without an access token", realm, resp.Status())
	}
	return &jwt, nil
}

func (c *Client) realmURL(realm string) string      { return c.base + "/realms/" + realm }
func (c *Client) adminRealmURL(realm string) string { return c.base + "/admin/realms/" + realm }

// wrap names the operation and, for transport failures, the server.
func (c *Client) wrap(err error, op string, args ...any) error {
	if err == nil {
		return nil
	}
	var perm *invalid.Error
	if errors.As(err, &perm) {
		return err // already says what to fix
	}
	return fmt.Errorf("keycloak: %s: %w", fmt.Sprintf(op, args...), normalize(err))
}

// checkName rejects names that would change the meaning of a URL path (gocloak does not escape path segments).
func checkName(kind, name string) error {
	if name == "" || strings.ContainsAny(name, "/?#%\\") || name == "." || name == ".." {
		return fmt.Errorf("keycloak: invalid %s name %q", kind, name)
	}
	return nil
}

// restyLogger sends resty's own messages to slog at debug level instead of stderr.
type restyLogger struct{}

func (restyLogger) Errorf(format string, v ...any) { slog.Debug("resty: " + fmt.Sprintf(format, v...)) }
func (restyLogger) Warnf(format string, v ...any)  { slog.Debug("resty: " + fmt.Sprintf(format, v...)) }
func (restyLogger) Debugf(format string, v ...any) { slog.Debug("resty: " + fmt.Sprintf(format, v...)) }

var _ resty.Logger = restyLogger{}
