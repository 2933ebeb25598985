package ziti

import (
	"context"

	"github.com/openziti/edge-api/rest_management_api_client/identity"
	"github.com/openziti/edge-api/rest_model"
)

// SetIdentityRoleAttributes sets the role attributes of identity id to attrs and, when tags is not empty,
// replaces all its tags with tags (the controller cannot clear tags: keep at least one). Nothing else of the
// identity is sent, so a concurrent change of its name, auth policy or externalId is not undone.
func (c *Client) SetIdentityRoleAttributes(ctx context.Context, id string, attrs []string, tags map[string]any) error {
	return c.do(ctx, "set role attributes of identity "+id, func(ctx context.Context) error {
		p := identity.NewPatchIdentityParamsWithContext(ctx).WithID(id)
		p.Identity = &rest_model.IdentityPatch{RoleAttributes: attributes(attrs)}
		if len(tags) > 0 {
			p.Identity.Tags = tagsToWire(tags)
		}
		return discard(c.mgmt.Identity.PatchIdentity(p, c.session()))
	})
}
