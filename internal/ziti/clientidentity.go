package ziti

import (
	"context"
	"fmt"

	"github.com/go-openapi/runtime"
	"github.com/go-openapi/strfmt"
	"github.com/openziti/edge-api/rest_client_api_client"
	"github.com/openziti/edge-api/rest_client_api_client/current_api_session"
	"github.com/openziti/edge-api/rest_client_api_client/current_identity"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/redact"
)

// NewClientAPI checks opts.URL and establishes the trust anchor as New does (opts.CAFile pinned, or the
// controller's published CA bundle when opts.TOFU), without logging in: for callers that act as an identity
// and hold no admin credentials. User and Password are ignored. Errors are classified as in New.
func NewClientAPI(ctx context.Context, opts Options) (ClientAPI, error) {
	base, err := baseURL(opts.URL)
	if err != nil {
		return ClientAPI{}, err
	}
	roots, err := loadRoots(ctx, base, opts)
	if err != nil {
		return ClientAPI{}, err
	}
	return ClientAPI{URL: base, Roots: roots, Counter: opts.Counter}, nil
}

// CurrentIdentity reads the identity a session belongs to (GET /current-identity): id, name, externalId and
// role attributes. It is a read.
func (a ClientAPI) CurrentIdentity(ctx context.Context, token redact.Secret) (Identity, error) {
	const op = "read the current identity"
	hc, rt, err := a.runtime(nil)
	if err != nil {
		return Identity{}, fmt.Errorf("%s: %w", op, err)
	}
	defer hc.CloseIdleConnections()
	ctx, st := withStatus(ctx)
	p := current_identity.NewGetCurrentIdentityParamsWithContext(ctx)
	resp, err := rest_client_api_client.New(rt, strfmt.Default).CurrentIdentity.GetCurrentIdentity(p, sessionToken(token))
	if err != nil {
		return Identity{}, wrapAPI(op, st, err)
	}
	if resp.Payload == nil || resp.Payload.Data == nil {
		return Identity{}, fmt.Errorf("%s: empty answer", op)
	}
	return identityFromWire(resp.Payload.Data), nil
}

// Logout ends a session (DELETE /current-api-session).
func (a ClientAPI) Logout(ctx context.Context, token redact.Secret) error {
	const op = "log out"
	hc, rt, err := a.runtime(nil)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer hc.CloseIdleConnections()
	ctx, st := withStatus(ctx)
	p := current_api_session.NewDeleteCurrentAPISessionParamsWithContext(ctx)
	if _, err := rest_client_api_client.New(rt, strfmt.Default).CurrentAPISession.DeleteCurrentAPISession(p, sessionToken(token)); err != nil {
		return wrapAPI(op, st, err)
	}
	return nil
}

func sessionToken(token redact.Secret) runtime.ClientAuthInfoWriter {
	return runtime.ClientAuthInfoWriterFunc(func(r runtime.ClientRequest, _ strfmt.Registry) error {
		return r.SetHeaderParam("zt-session", token.Value())
	})
}
