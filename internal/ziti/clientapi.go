package ziti

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"time"

	"github.com/go-openapi/runtime"
	httptransport "github.com/go-openapi/runtime/client"
	"github.com/go-openapi/strfmt"
	"github.com/openziti/edge-api/rest_client_api_client"
	"github.com/openziti/edge-api/rest_client_api_client/authentication"
	"github.com/openziti/edge-api/rest_client_api_client/enroll"
	"github.com/openziti/edge-api/rest_model"
	"github.com/openziti/edge-api/rest_util"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/redact"
)

// ClientAPI addresses the controller's client API (/edge/client/v1) for calls made as an identity, without an
// admin session: enrolling with a CA-issued certificate and logging in. Client.ClientAPI returns one.
type ClientAPI struct {
	URL     *url.URL       // controller base URL, https://host:port
	Roots   *x509.CertPool // the pinned CA pool the controller's certificate must verify against
	Counter *calls.Counter // may be nil; enrollments count as writes, logins as reads
}

// Session is an API session opened by a login.
type Session struct {
	ID           string
	IdentityID   string
	IdentityName string
	Token        redact.Secret // the zt-session token
	ExpiresAt    time.Time
	// AuthQueries lists the further factors (e.g. TOTP, a second ext-jwt signer) the session still needs; a
	// session with pending queries is only partially authenticated.
	AuthQueries []string
}

// EnrollWithCA enrolls the holder of cert through a third-party CA (POST /enroll?method=ca): the controller
// verifies cert (leaf first, then any intermediates) against its verified CAs with auto-enrollment enabled and
// creates an identity named by the CA's IdentityNameFormat. name, when not empty, is the [requestedName].
func (a ClientAPI) EnrollWithCA(ctx context.Context, cert tls.Certificate, name string) error {
	op := "enroll " + certSubject(cert) + " with a CA certificate"
	hc, rt, err := a.runtime(&cert)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer hc.CloseIdleConnections()
	ctx, st := withStatus(ctx)
	p := enroll.NewEnrollParamsWithContext(ctx)
	method := "ca"
	p.Method = &method
	p.Body = &rest_model.GenericEnroll{Name: name}
	if _, err := rest_client_api_client.New(rt, strfmt.Default).Enroll.Enroll(p); err != nil {
		return wrapAPI(op, st, err)
	}
	return nil
}

// AuthenticateCert logs in with a client certificate (POST /authenticate?method=cert).
func (a ClientAPI) AuthenticateCert(ctx context.Context, cert tls.Certificate) (Session, error) {
	return a.authenticate(ctx, "log in with certificate "+certSubject(cert), "cert", &cert, nil)
}

// AuthenticateJWT logs in with a token from an external JWT signer (POST /authenticate?method=ext-jwt with
// Authorization: Bearer token).
func (a ClientAPI) AuthenticateJWT(ctx context.Context, token string) (Session, error) {
	bearer := func(op *runtime.ClientOperation) {
		op.AuthInfo = &rest_util.HeaderAuth{HeaderName: "Authorization", HeaderValue: "Bearer " + token}
	}
	return a.authenticate(ctx, "log in with an external JWT", "ext-jwt", nil, bearer)
}

func (a ClientAPI) authenticate(ctx context.Context, op, method string, cert *tls.Certificate, opt authentication.ClientOption) (Session, error) {
	hc, rt, err := a.runtime(cert)
	if err != nil {
		return Session{}, fmt.Errorf("%s: %w", op, err)
	}
	defer hc.CloseIdleConnections()
	ctx, st := withStatus(ctx)
	p := authentication.NewAuthenticateParamsWithContext(ctx)
	p.Method = method
	p.Auth = &rest_model.Authenticate{}
	var opts []authentication.ClientOption
	if opt != nil {
		opts = append(opts, opt)
	}
	resp, err := rest_client_api_client.New(rt, strfmt.Default).Authentication.Authenticate(p, opts...)
	if err != nil {
		return Session{}, wrapAPIValues(op, st, err, false)
	}
	if resp.Payload == nil || resp.Payload.Data == nil {
		return Session{}, fmt.Errorf("%s: empty answer", op)
	}
	d := resp.Payload.Data
	s := Session{ID: str(d.ID), IdentityID: str(d.IdentityID), Token: redact.NewSecret(str(d.Token))}
	if d.Identity != nil {
		s.IdentityName = d.Identity.Name
	}
	if d.ExpiresAt != nil {
		s.ExpiresAt = time.Time(*d.ExpiresAt)
	}
	for _, q := range d.AuthQueries {
		if q == nil {
			continue
		}
		desc := string(q.TypeID)
		if q.Provider != nil {
			desc += "/" + string(*q.Provider)
		}
		s.AuthQueries = append(s.AuthQueries, desc)
	}
	return s, nil
}

func (a ClientAPI) runtime(cert *tls.Certificate) (interface{ CloseIdleConnections() }, *httptransport.Runtime, error) {
	base, err := baseURL(a.URL)
	if err != nil {
		return nil, nil, err
	}
	if a.Roots == nil {
		return nil, nil, fmt.Errorf("no CA pool to verify the controller with")
	}
	hc := newHTTPClient(a.Roots, a.Counter, cert, 0)
	return hc, newRuntime(base, clientPath, hc), nil
}

func certSubject(cert tls.Certificate) string {
	leaf := cert.Leaf
	if leaf == nil && len(cert.Certificate) > 0 {
		leaf, _ = x509.ParseCertificate(cert.Certificate[0])
	}
	if leaf == nil {
		return "(no certificate)"
	}
	if len(leaf.URIs) > 0 {
		return leaf.URIs[0].String()
	}
	if s := leaf.Subject.String(); s != "" {
		return s
	}
	return "serial " + leaf.SerialNumber.String()
}
