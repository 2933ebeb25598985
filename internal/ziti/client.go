// Package ziti is ziti-bootstrap's one client for the OpenZiti controller: its management API (certificate
// authorities, identities, external JWT signers, auth policies) with an admin session, and a few client-API calls
// (enrollment, login) used to verify the result.
//
// TLS is always verified: the controller's CA is pinned from a file, or fetched once from the controller's
// well-known CA endpoint when trust on first use is asked for. Every HTTP call goes through a calls.Counter.
// The types here are plain structs; the edge-api wire types stay inside the package.
package ziti

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-openapi/runtime"
	httptransport "github.com/go-openapi/runtime/client"
	"github.com/go-openapi/strfmt"
	"github.com/openziti/edge-api/rest_management_api_client"
	"github.com/openziti/edge-api/rest_management_api_client/authentication"
	"github.com/openziti/edge-api/rest_management_api_client/informational"
	"github.com/openziti/edge-api/rest_model"
	"github.com/openziti/edge-api/rest_util"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/invalid"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/redact"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/safefile"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
)

// System is the name calls are counted under.
const System = "ziti"

const (
	managementPath = "/edge/management/v1"
	clientPath     = "/edge/client/v1"
	pageSize       = 500 // the controller's largest page
)

// Options say how to reach and log in to the controller.
type Options struct {
	URL      *url.URL // https://host:port of the controller (an API path such as /edge/management/v1 is accepted)
	User     string
	Password redact.Secret
	// CAFile is a PEM bundle holding the CA of the controller's TLS certificate; it is the only trust anchor.
	CAFile string
	// TOFU, when CAFile is empty, trusts the CA bundle the controller publishes at /.well-known/est/cacerts.
	// Only that one fetch skips verification; every API call verifies against the fetched bundle.
	TOFU    bool
	Counter *calls.Counter // may be nil
	// AnswerTimeout bounds the wait for each answer (calls.AnswerTimeout when 0).
	AnswerTimeout time.Duration
}

// Client is a management API client. Dial makes one without any network call; the trust anchor (fetched with
// TOFU) and the session are established on first use, and the session again when it expires. It is safe for
// concurrent use.
type Client struct {
	base     *url.URL // scheme://host plus any path prefix in front of /edge/...
	opts     Options
	pageSize int64 // items per list page

	connMu  sync.Mutex // serializes connect
	loginMu sync.Mutex // serializes Login
	roots   *x509.CertPool
	hc      *http.Client
	mgmt    *rest_management_api_client.ZitiEdgeManagement

	mu     sync.Mutex
	token  string
	logins int // successful logins, for tests
}

// ErrLoginRejected is the cause (errors.Is) of the error of a login the controller refused: wrong user name or
// password.
var ErrLoginRejected = errors.New("login rejected")

// Dial checks opts and returns a client, without any network call: the CA file (when given) is read now, the
// controller's CA bundle (TOFU) is fetched and the login made by the first call that needs them.
//
// Errors: a missing or wrong setting (no URL, unreadable CA file, and later a certificate that does not verify
// or a rejected login) is an *invalid.Error (invalid.Is) wrapped with wait.Permanent, so wait.For stops at once.
// Anything else (connection refused, timeouts, 5xx) is a plain error, worth retrying.
func Dial(opts Options) (*Client, error) {
	base, err := baseURL(opts.URL)
	if err != nil {
		return nil, err
	}
	if opts.User == "" {
		return nil, badSetting("ZITI_USER", "must not be empty")
	}
	if !opts.Password.IsSet() {
		return nil, badSetting("ZITI_PWD", "must not be empty")
	}
	c := &Client{base: base, opts: opts, pageSize: pageSize}
	if opts.CAFile != "" || !opts.TOFU {
		roots, err := loadRoots(context.Background(), base, opts) // a local file: no network call
		if err != nil {
			return nil, err
		}
		c.setRoots(roots)
	}
	return c, nil
}

// New is Dial followed by Login: it establishes the trust anchor and logs in now. Errors are classified as in
// Dial.
func New(ctx context.Context, opts Options) (*Client, error) {
	c, err := Dial(opts)
	if err != nil {
		return nil, err
	}
	if err := c.Login(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Login establishes the trust anchor if needed and logs in unless a session exists: the check that the
// configured user may log in.
func (c *Client) Login(ctx context.Context) error {
	if err := c.connect(ctx); err != nil {
		return err
	}
	c.loginMu.Lock() // one first login, however many calls start at once
	defer c.loginMu.Unlock()
	c.mu.Lock()
	have := c.token != ""
	c.mu.Unlock()
	if have {
		return nil
	}
	return c.login(ctx)
}

// connect fetches the controller's CA bundle (TOFU) once it is needed; later calls return at once.
func (c *Client) connect(ctx context.Context) error {
	c.connMu.Lock()
	defer c.connMu.Unlock()
	if c.mgmt != nil {
		return nil
	}
	roots, err := loadRoots(ctx, c.base, c.opts)
	if err != nil {
		return err
	}
	c.setRoots(roots)
	return nil
}

// setRoots pins roots and builds the HTTP and API clients on them. Callers hold connMu or own c alone.
func (c *Client) setRoots(roots *x509.CertPool) {
	c.roots = roots
	c.hc = newHTTPClient(roots, c.opts.Counter, nil, c.opts.AnswerTimeout)
	c.mgmt = rest_management_api_client.New(newRuntime(c.base, managementPath, c.hc), strfmt.Default)
}

// Probe checks that the controller answers on its management API with a TLS certificate that verifies, without
// logging in, and returns its version. Errors are classified as in New.
func Probe(ctx context.Context, opts Options) (version string, err error) {
	base, err := baseURL(opts.URL)
	if err != nil {
		return "", err
	}
	roots, err := loadRoots(ctx, base, opts)
	if err != nil {
		return "", err
	}
	hc := newHTTPClient(roots, opts.Counter, nil, opts.AnswerTimeout)
	defer hc.CloseIdleConnections()
	mgmt := rest_management_api_client.New(newRuntime(base, managementPath, hc), strfmt.Default)
	return getVersion(ctx, mgmt, base, opts.CAFile == "")
}

// Ping asks the controller for its version: a cheap reachability check that needs no session.
func (c *Client) Ping(ctx context.Context) (string, error) {
	if err := c.connect(ctx); err != nil {
		return "", err
	}
	return getVersion(ctx, c.mgmt, c.base, c.opts.CAFile == "")
}

// URL is the controller's base URL (scheme, host and any path prefix).
func (c *Client) URL() *url.URL { u := *c.base; return &u }

// Roots is the pinned CA pool every call verifies the controller against (useful with TOFU); nil until the
// first call when it is fetched (TOFU).
func (c *Client) Roots() *x509.CertPool { return c.roots }

// ClientAPI addresses the controller's client API with this client's URL, trust anchor and counter.
func (c *Client) ClientAPI() ClientAPI {
	return ClientAPI{URL: c.URL(), Roots: c.roots, Counter: c.opts.Counter}
}

func getVersion(ctx context.Context, mgmt *rest_management_api_client.ZitiEdgeManagement, base *url.URL, tofu bool) (string, error) {
	ctx, st := withStatus(ctx)
	resp, err := mgmt.Informational.ListVersion(informational.NewListVersionParamsWithContext(ctx))
	if err != nil {
		if cerr := classifyTLS(err, base, tofu); cerr != nil {
			return "", cerr
		}
		return "", wrapAPI("get controller version", st, err)
	}
	if resp.Payload == nil || resp.Payload.Data == nil {
		return "", fmt.Errorf("get controller version: empty answer from %s", base.Redacted())
	}
	return resp.Payload.Data.Version, nil
}

func (c *Client) login(ctx context.Context) error {
	ctx, st := withStatus(ctx)
	params := authentication.NewAuthenticateParamsWithContext(ctx)
	params.Method = "password"
	params.Auth = &rest_model.Authenticate{
		Username: rest_model.Username(c.opts.User),
		Password: rest_model.Password(c.opts.Password.Value()),
	}
	resp, err := c.mgmt.Authentication.Authenticate(params)
	where := c.base.Redacted()
	if err != nil {
		if cerr := classifyTLS(err, c.base, c.opts.CAFile == ""); cerr != nil {
			return cerr
		}
		var unauth *authentication.AuthenticateUnauthorized
		if errors.As(err, &unauth) || st.get() == http.StatusUnauthorized {
			code := ""
			if unauth != nil && unauth.Payload != nil && unauth.Payload.Error != nil {
				code = " (" + unauth.Payload.Error.Code + ")"
			}
			return wait.Permanent(&invalid.Error{Problems: []invalid.Problem{{
				Var: "ZITI_PWD",
				Msg: fmt.Sprintf("the controller at %s rejected the login of user %q%s; check ZITI_USER and ZITI_PWD", where, c.opts.User, code),
			}}, Cause: ErrLoginRejected})
		}
		// Never include the request: it carries the password. wrapAPI only uses the answer.
		return wrapAPIValues(fmt.Sprintf("log in to %s as %q", where, c.opts.User), st, err, false)
	}
	if resp.Payload == nil || resp.Payload.Data == nil || resp.Payload.Data.Token == nil || *resp.Payload.Data.Token == "" {
		return fmt.Errorf("log in to %s as %q: the controller returned no session token", where, c.opts.User)
	}
	c.mu.Lock()
	c.token = *resp.Payload.Data.Token
	c.logins++
	c.mu.Unlock()
	return nil
}

// session returns the auth writer of management calls: it sets the zt-session header to the current token.
func (c *Client) session() runtime.ClientAuthInfoWriter {
	return runtime.ClientAuthInfoWriterFunc(func(r runtime.ClientRequest, _ strfmt.Registry) error {
		return r.SetHeaderParam("zt-session", c.sessionToken())
	})
}

// sessionToken is the current session's token ("" before the first login).
func (c *Client) sessionToken() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token
}

// do runs one API call, logging in first when there is no session; on 401 (an expired session) it logs in
// again once and retries.
func (c *Client) do(ctx context.Context, op string, call func(ctx context.Context) error) error {
	if err := c.Login(ctx); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	sctx, st := withStatus(ctx)
	err := call(sctx)
	if err != nil && st.get() == http.StatusUnauthorized {
		if lerr := c.login(ctx); lerr != nil {
			return fmt.Errorf("%s: session expired and logging in again failed: %w", op, lerr)
		}
		sctx, st = withStatus(ctx)
		err = call(sctx)
	}
	if err != nil {
		return wrapAPI(op, st, err)
	}
	return nil
}

// baseURL validates u and strips a trailing API path.
func baseURL(u *url.URL) (*url.URL, error) {
	if u == nil || u.Host == "" {
		return nil, badSetting("ZITI_CTRL_URL", "required; set it to the controller's https://host:port")
	}
	if u.Scheme != "https" {
		return nil, badSetting("ZITI_CTRL_URL", fmt.Sprintf("scheme %q not allowed; the controller API is served over https://", u.Scheme))
	}
	b := &url.URL{Scheme: u.Scheme, Host: u.Host, Path: strings.TrimSuffix(u.Path, "/")}
	for _, p := range []string{managementPath, clientPath} {
		b.Path = strings.TrimSuffix(b.Path, p)
	}
	return b, nil
}

// loadRoots reads the CA file, or fetches the controller's well-known CA bundle when TOFU.
func loadRoots(ctx context.Context, base *url.URL, opts Options) (*x509.CertPool, error) {
	if opts.CAFile != "" {
		pem, err := safefile.ReadValue(opts.CAFile)
		if err != nil {
			return nil, badSetting("ZITI_CA_FILE", fmt.Sprintf("cannot read %s: %v", opts.CAFile, errors.Unwrap(err)))
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, badSetting("ZITI_CA_FILE", fmt.Sprintf("%s holds no PEM certificate; point it at the controller's CA bundle", opts.CAFile))
		}
		return pool, nil
	}
	if !opts.TOFU {
		return nil, badSetting("ZITI_CA_FILE", "required to verify the controller's TLS certificate; or set ZITI_CA_TOFU=true")
	}
	type result struct {
		pool *x509.CertPool
		err  error
	}
	ch := make(chan result, 1)
	go func() { // rest_util takes no context; it has its own 10 s timeout
		p, err := rest_util.GetControllerWellKnownCaPool(base.String())
		ch <- result{p, err}
	}()
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("fetch the controller's CA bundle from %s/.well-known/est/cacerts: %w", base.Redacted(), ctx.Err())
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("fetch the controller's CA bundle from %s/.well-known/est/cacerts: %w", base.Redacted(), r.err)
		}
		if r.pool == nil || r.pool.Equal(x509.NewCertPool()) {
			return nil, fmt.Errorf("fetch the controller's CA bundle from %s/.well-known/est/cacerts: no certificate in the answer", base.Redacted())
		}
		opts.Counter.Read(System)
		return r.pool, nil
	}
}

// classifyTLS turns a failed certificate verification into a permanent configuration error.
func classifyTLS(err error, base *url.URL, tofu bool) error {
	var cve *tls.CertificateVerificationError
	if !errors.As(err, &cve) {
		return nil
	}
	var host x509.HostnameError
	if errors.As(cve.Err, &host) {
		return badSetting("ZITI_CTRL_URL", fmt.Sprintf("the controller's TLS certificate is not valid for %s (%v); use a host name or address the certificate names", base.Host, cve.Err))
	}
	if tofu {
		return badSetting("ZITI_CA_TOFU", fmt.Sprintf("the TLS certificate of %s does not verify against the CA bundle it publishes (%v); set ZITI_CA_FILE to the controller's CA bundle", base.Redacted(), cve.Err))
	}
	return badSetting("ZITI_CA_FILE", fmt.Sprintf("the TLS certificate of %s does not verify against this CA bundle (%v); point ZITI_CA_FILE at the CA that issued the controller's certificate", base.Redacted(), cve.Err))
}

func badSetting(v, msg string) error {
	return wait.Permanent(&invalid.Error{Problems: []invalid.Problem{{Var: v, Msg: msg}}})
}

// newHTTPClient returns a client that verifies the controller against roots, counts every call, and records the
// status of each answer for error reports. cert, when set, is always offered as the TLS client certificate.
func newHTTPClient(roots *x509.CertPool, counter *calls.Counter, cert *tls.Certificate, answer time.Duration) *http.Client {
	tr := calls.Bound(http.DefaultTransport.(*http.Transport).Clone(), answer)
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if cert != nil {
		// Offer the certificate even when the server's list of acceptable CAs does not name its issuer.
		tr.TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return &http.Client{Transport: &statusTransport{base: calls.Transport(counter, System, tr, "/authenticate")}}
}

func newRuntime(base *url.URL, apiPath string, hc *http.Client) *httptransport.Runtime {
	rt := httptransport.NewWithClient(base.Host, base.Path+apiPath, []string{base.Scheme}, hc)
	rt.SetDebug(false) // the runtime would dump requests (passwords included) when DEBUG is set
	rt.Consumers[runtime.JSONMime] = listConsumer(rt.Consumers[runtime.JSONMime])
	return rt
}

// statusTransport records the HTTP status of each answer in the request's context (see withStatus).
type statusTransport struct{ base http.RoundTripper }

type statusKey struct{}

type status struct {
	mu   sync.Mutex
	code int
}

func (s *status) get() int {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.code
}

func withStatus(ctx context.Context) (context.Context, *status) {
	st := &status{}
	return context.WithValue(ctx, statusKey{}, st), st
}

func (t *statusTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if resp != nil {
		if st, ok := r.Context().Value(statusKey{}).(*status); ok {
			st.mu.Lock()
			st.code = resp.StatusCode
			st.mu.Unlock()
		}
	}
	return resp, err
}
