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
	return listOf(ctx, c, "list edge routers", filter, edge_router.NewListEdgeRoutersParamsWithContext,
		c.edgeRouterPage, edgeRouterItems, edgeRouterFromWire)
}

// edgeRouterPage and edgeRouterItems list one page of edge routers, for ListEdgeRouters and FindEdgeRouter.
func (c *Client) edgeRouterPage(p *edge_router.ListEdgeRoutersParams) (*edge_router.ListEdgeRoutersOK, error) {
	return c.mgmt.EdgeRouter.ListEdgeRouters(p, c.session())
}

func edgeRouterItems(r *edge_router.ListEdgeRoutersOK) ([]*rest_model.EdgeRouterDetail, *rest_model.Meta) {
	return r.Payload.Data, r.Payload.Meta
}

func edgeRouterFromWire(d *rest_model.EdgeRouterDetail) EdgeRouter {
	r := EdgeRouter{ID: str(d.ID), Name: str(d.Name), IsOnline: boolean(d.IsOnline)}
	if d.RoleAttributes != nil {
		r.RoleAttributes = []string(*d.RoleAttributes)
	}
	return r
}
