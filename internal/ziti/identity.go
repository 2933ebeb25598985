package ziti

import (
	"context"

	"github.com/openziti/edge-api/rest_management_api_client/identity"
	"github.com/openziti/edge-api/rest_model"
)

// DefaultAuthPolicyID is the id of the auth policy every identity has unless given another.
const DefaultAuthPolicyID = "default"

// Identity is a Ziti identity (type Default).
type Identity struct {
	ID   string
	Name string
	// ExternalID is matched by external-JWT signers with UseExternalID and by CAs with an ExternalIDClaim.
	// It is unique among identities; "" means none.
	ExternalID     string
	RoleAttributes []string
	AuthPolicyID   string // "" means DefaultAuthPolicyID on create and update; lists always give the id
	IsAdmin        bool
	Tags           map[string]any
}

// ListIdentities returns every identity matching filter (e.g. FilterEq("externalId", id); "" for all).
func (c *Client) ListIdentities(ctx context.Context, filter string) ([]Identity, error) {
	return listOf(ctx, c, "list identities", filter, identity.NewListIdentitiesParamsWithContext,
		func(p *identity.ListIdentitiesParams) (*identity.ListIdentitiesOK, error) {
			return c.mgmt.Identity.ListIdentities(p, c.session())
		},
		func(r *identity.ListIdentitiesOK) ([]*rest_model.IdentityDetail, *rest_model.Meta) {
			return r.Payload.Data, r.Payload.Meta
		}, identityFromWire)
}

// GetIdentity returns one identity by id; IsNotFound(err) when there is none.
func (c *Client) GetIdentity(ctx context.Context, id string) (Identity, error) {
	return fetched(ctx, c, "get identity "+id, func(ctx context.Context) (*identity.DetailIdentityOK, error) {
		p := identity.NewDetailIdentityParamsWithContext(ctx).WithID(id)
		return c.mgmt.Identity.DetailIdentity(p, c.session())
	}, func(r *identity.DetailIdentityOK) (Identity, error) { return identityFromWire(r.Payload.Data), nil })
}

// CreateIdentity creates an identity of type Default without an enrollment (it can log in through an external
// JWT signer or a CA's ExternalIDClaim) and returns its id.
func (c *Client) CreateIdentity(ctx context.Context, in Identity) (string, error) {
	return created(ctx, c, "create identity "+in.Name, func(ctx context.Context) (*identity.CreateIdentityCreated, error) {
		p := identity.NewCreateIdentityParamsWithContext(ctx)
		p.Identity = &rest_model.IdentityCreate{
			Name:           &in.Name,
			Type:           rest_model.NewIdentityType(rest_model.IdentityTypeDefault),
			IsAdmin:        &in.IsAdmin,
			ExternalID:     optString(in.ExternalID),
			RoleAttributes: attributes(in.RoleAttributes),
			AuthPolicyID:   authPolicy(in.AuthPolicyID),
			Tags:           tagsToWire(in.Tags),
		}
		return c.mgmt.Identity.CreateIdentity(p, c.session())
	})
}

// UpdateIdentity sets Name, ExternalID ("" removes it), RoleAttributes, AuthPolicyID, IsAdmin and Tags of
// identity id. It patches, so fields this package does not model (app data, hosting costs, authenticators,
// enrollments) are left alone. Non-empty Tags replace all tags; empty or nil Tags leave them unchanged (the
// controller's PATCH cannot clear tags).
func (c *Client) UpdateIdentity(ctx context.Context, id string, in Identity) error {
	return c.do(ctx, "update identity "+nameOr(in.Name, id), func(ctx context.Context) error {
		p := identity.NewPatchIdentityParamsWithContext(ctx).WithID(id)
		ext := in.ExternalID // the controller stores "" as no externalId
		p.Identity = &rest_model.IdentityPatch{
			Name:           optString(in.Name),
			ExternalID:     &ext,
			RoleAttributes: attributes(in.RoleAttributes),
			AuthPolicyID:   authPolicy(in.AuthPolicyID),
			IsAdmin:        &in.IsAdmin,
		}
		if len(in.Tags) > 0 {
			p.Identity.Tags = tagsToWire(in.Tags)
		}
		return discard(c.mgmt.Identity.PatchIdentity(p, c.session()))
	})
}

// DeleteIdentity removes identity id.
func (c *Client) DeleteIdentity(ctx context.Context, id string) error {
	return c.do(ctx, "delete identity "+id, func(ctx context.Context) error {
		p := identity.NewDeleteIdentityParamsWithContext(ctx).WithID(id)
		return discard(c.mgmt.Identity.DeleteIdentity(p, c.session()))
	})
}

func authPolicy(id string) *string {
	if id == "" {
		id = DefaultAuthPolicyID
	}
	return &id
}

func identityFromWire(d *rest_model.IdentityDetail) Identity {
	if d == nil {
		return Identity{}
	}
	out := Identity{
		ID:           str(d.ID),
		Name:         str(d.Name),
		ExternalID:   str(d.ExternalID),
		AuthPolicyID: str(d.AuthPolicyID),
		IsAdmin:      boolean(d.IsAdmin),
		Tags:         tagsFromWire(d.Tags),
	}
	if d.RoleAttributes != nil {
		out.RoleAttributes = []string(*d.RoleAttributes)
	}
	return out
}
