package ziti

import (
	"context"

	"github.com/openziti/edge-api/rest_management_api_client/edge_router"
	"github.com/openziti/edge-api/rest_model"
)

// EdgeRouter is an edge router as policies see it: its id, name and role attributes.
type EdgeRouter struct {
	ID             string
	Name           string
	RoleAttributes []string
	IsOnline       bool
}

// ListEdgeRouters returns every edge router matching filter ("" for all).
func (c *Client) ListEdgeRouters(ctx context.Context, filter string) ([]EdgeRouter, error) {
	var out []EdgeRouter
	err := listAll(ctx, c, "list edge routers", func(ctx context.Context, limit, offset int64) (int, *rest_model.Meta, error) {
		p := edge_router.NewListEdgeRoutersParamsWithContext(ctx)
		p.Limit, p.Offset = &limit, &offset
		p.Filter = optString(filter)
		resp, err := c.mgmt.EdgeRouter.ListEdgeRouters(p, c.session())
		if err != nil {
			return 0, nil, err
		}
		for _, d := range resp.Payload.Data {
			if d == nil {
				continue
			}
			r := EdgeRouter{ID: str(d.ID), Name: str(d.Name), IsOnline: boolean(d.IsOnline)}
			if d.RoleAttributes != nil {
				r.RoleAttributes = []string(*d.RoleAttributes)
			}
			out = append(out, r)
		}
		return len(resp.Payload.Data), resp.Payload.Meta, nil
	})
	return out, err
}
