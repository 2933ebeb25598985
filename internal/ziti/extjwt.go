package ziti

import (
	"context"

	"github.com/go-openapi/strfmt"
	"github.com/openziti/edge-api/rest_management_api_client/external_jwt_signer"
	"github.com/openziti/edge-api/rest_model"
)

// ExtJWTSigner is an external JWT signer: an issuer whose tokens identities may log in with
// (POST /edge/client/v1/authenticate?method=ext-jwt, Authorization: Bearer <token>).
type ExtJWTSigner struct {
	ID       string
	Name     string
	Issuer   string // must equal the token's iss
	Audience string // must be in the token's aud
	// Exactly one of JWKSEndpoint and CertPEM. With CertPEM, tokens are matched by Kid (when Kid is empty the
	// controller uses the certificate's fingerprint as kid).
	JWKSEndpoint string
	CertPEM      string
	Kid          string
	// ClaimsProperty names the claim that identifies the identity (the controller's default is "sub"); it is
	// matched against the identity's externalId when UseExternalID, else against its id.
	ClaimsProperty string
	UseExternalID  bool
	Enabled        bool
	// ClientID, ExternalAuthURL, Scopes and TargetToken ("ACCESS" or "ID"; "" means ACCESS) tell SDKs and
	// tunnelers how to obtain a token from the identity provider.
	ClientID        string
	ExternalAuthURL string
	Scopes          []string
	TargetToken     string
	Tags            map[string]any
}

// ListExtJWTSigners returns every external JWT signer matching filter ("" for all).
func (c *Client) ListExtJWTSigners(ctx context.Context, filter string) ([]ExtJWTSigner, error) {
	return listOf(ctx, c, "list external JWT signers", filter, external_jwt_signer.NewListExternalJWTSignersParamsWithContext,
		func(p *external_jwt_signer.ListExternalJWTSignersParams) (*external_jwt_signer.ListExternalJWTSignersOK, error) {
			return c.mgmt.ExternalJWTSigner.ListExternalJWTSigners(p, c.session())
		},
		func(r *external_jwt_signer.ListExternalJWTSignersOK) ([]*rest_model.ExternalJWTSignerDetail, *rest_model.Meta) {
			return r.Payload.Data, r.Payload.Meta
		}, signerFromWire)
}

// CreatingSuffix ends the name of a signer that CreateExtJWTSigner created and has not yet given its tags.
const CreatingSuffix = ".zb-creating"

// CreateExtJWTSigner creates s and returns its id. Controller 1.7.2 drops the tags of a create, so when s has
// tags they are set with a second call (UpdateExtJWTSigner): two writes. So that a process that dies between
// the two does not leave an untagged signer under s.Name (which its owner could no longer tell from someone
// else's), the signer is created as s.Name+CreatingSuffix and renamed by the second call: a signer with that
// suffix is an unfinished create, and the next run can finish it.
func (c *Client) CreateExtJWTSigner(ctx context.Context, s ExtJWTSigner) (string, error) {
	name := s.Name
	if len(s.Tags) > 0 {
		name += CreatingSuffix
	}
	id, err := created(ctx, c, "create external JWT signer "+name, func(ctx context.Context) (*external_jwt_signer.CreateExternalJWTSignerCreated, error) {
		p := external_jwt_signer.NewCreateExternalJWTSignerParamsWithContext(ctx)
		p.ExternalJWTSigner = signerToWire(name, s)
		return c.mgmt.ExternalJWTSigner.CreateExternalJWTSigner(p, c.session())
	})
	if IsConflict(err) && len(s.Tags) > 0 {
		// the unfinished create of an earlier process, killed while it was in flight, that the controller
		// carried out after the caller had listed: finished here as if this create had made it
		if found, lerr := c.ListExtJWTSigners(ctx, FilterEq("name", name)); lerr == nil && len(found) == 1 {
			id, err = found[0].ID, nil
		}
	}
	if err == nil && len(s.Tags) > 0 {
		err = c.UpdateExtJWTSigner(ctx, id, s)
	}
	return id, err
}

// UpdateExtJWTSigner replaces every field of signer id with those of s (a full update).
func (c *Client) UpdateExtJWTSigner(ctx context.Context, id string, s ExtJWTSigner) error {
	return c.do(ctx, "update external JWT signer "+nameOr(s.Name, id), func(ctx context.Context) error {
		p := external_jwt_signer.NewUpdateExternalJWTSignerParamsWithContext(ctx).WithID(id)
		u := rest_model.ExternalJWTSignerUpdate(*signerToWire(s.Name, s)) // the same fields
		p.ExternalJWTSigner = &u
		return discard(c.mgmt.ExternalJWTSigner.UpdateExternalJWTSigner(p, c.session()))
	})
}

// DeleteExtJWTSigner removes signer id. The controller refuses while an auth policy names it.
func (c *Client) DeleteExtJWTSigner(ctx context.Context, id string) error {
	return c.do(ctx, "delete external JWT signer "+id, func(ctx context.Context) error {
		p := external_jwt_signer.NewDeleteExternalJWTSignerParamsWithContext(ctx).WithID(id)
		return discard(c.mgmt.ExternalJWTSigner.DeleteExternalJWTSigner(p, c.session()))
	})
}

// signerToWire is the body of a create of s under name; an update has the same fields.
func signerToWire(name string, s ExtJWTSigner) *rest_model.ExternalJWTSignerCreate {
	return &rest_model.ExternalJWTSignerCreate{
		Name:            &name,
		Issuer:          &s.Issuer,
		Audience:        &s.Audience,
		JwksEndpoint:    uri(s.JWKSEndpoint),
		CertPem:         optString(s.CertPEM),
		Kid:             optString(s.Kid),
		ClaimsProperty:  optString(s.ClaimsProperty),
		UseExternalID:   &s.UseExternalID,
		Enabled:         &s.Enabled,
		ClientID:        optString(s.ClientID),
		ExternalAuthURL: optString(s.ExternalAuthURL),
		Scopes:          scopes(s.Scopes),
		TargetToken:     targetToken(s.TargetToken),
		Tags:            tagsToWire(s.Tags),
	}
}

func signerFromWire(d *rest_model.ExternalJWTSignerDetail) ExtJWTSigner {
	if d == nil {
		return ExtJWTSigner{}
	}
	s := ExtJWTSigner{
		ID:              str(d.ID),
		Name:            str(d.Name),
		Issuer:          str(d.Issuer),
		Audience:        str(d.Audience),
		CertPEM:         str(d.CertPem),
		Kid:             str(d.Kid),
		ClaimsProperty:  str(d.ClaimsProperty),
		UseExternalID:   boolean(d.UseExternalID),
		Enabled:         boolean(d.Enabled),
		ClientID:        str(d.ClientID),
		ExternalAuthURL: str(d.ExternalAuthURL),
		Scopes:          d.Scopes,
		Tags:            tagsFromWire(d.Tags),
	}
	if d.JwksEndpoint != nil {
		s.JWKSEndpoint = d.JwksEndpoint.String()
	}
	if d.TargetToken != nil {
		s.TargetToken = string(*d.TargetToken)
	}
	return s
}

func uri(s string) *strfmt.URI {
	if s == "" {
		return nil
	}
	u := strfmt.URI(s)
	return &u
}

func scopes(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func targetToken(t string) *rest_model.TargetToken {
	if t == "" {
		return nil
	}
	return rest_model.NewTargetToken(rest_model.TargetToken(t))
}
