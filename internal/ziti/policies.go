package ziti

import (
	"context"

	"github.com/openziti/edge-api/rest_management_api_client/edge_router_policy"
	"github.com/openziti/edge-api/rest_management_api_client/identity"
	"github.com/openziti/edge-api/rest_management_api_client/service_edge_router_policy"
	"github.com/openziti/edge-api/rest_management_api_client/service_policy"
	"github.com/openziti/edge-api/rest_model"
)

// Roles select the entities of a policy. Each is "#all", "#attribute" (entities with that role attribute), or
// "@id" (one entity by id: the controller refuses "@name" on writes). Lists give both forms: the XRoles field
// as stored, and XRoleNames with every "@id" shown as "@name" (from the controller's *RolesDisplay).

// Semantics say whether an entity must match all roles of a list (AllOf) or any of them (AnyOf).
const (
	SemanticAllOf = "AllOf"
	SemanticAnyOf = "AnyOf" // the controller's default
)

// Service policy types.
const (
	PolicyDial = "Dial" // identities may connect to the services
	PolicyBind = "Bind" // identities may host the services
)

// ServicePolicy grants identities Dial or Bind on services, when they pass the posture checks.
type ServicePolicy struct {
	ID                    string
	Name                  string
	Type                  string // PolicyDial or PolicyBind
	Semantic              string // of IdentityRoles and ServiceRoles; "" means SemanticAnyOf on writes
	IdentityRoles         []string
	ServiceRoles          []string
	PostureCheckRoles     []string
	IdentityRoleNames     []string // read only
	ServiceRoleNames      []string // read only
	PostureCheckRoleNames []string // read only
	Tags                  map[string]any
}

// EdgeRouterPolicy lets identities connect to edge routers.
type EdgeRouterPolicy struct {
	ID                  string
	Name                string
	Semantic            string
	IdentityRoles       []string
	EdgeRouterRoles     []string
	IdentityRoleNames   []string // read only
	EdgeRouterRoleNames []string // read only
	// IsSystem marks the policies the controller makes for each router's own identity (read only; never change
	// or delete them).
	IsSystem bool
	Tags     map[string]any
}

// ServiceEdgeRouterPolicy lets services be reached through edge routers.
type ServiceEdgeRouterPolicy struct {
	ID                  string
	Name                string
	Semantic            string
	ServiceRoles        []string
	EdgeRouterRoles     []string
	ServiceRoleNames    []string // read only
	EdgeRouterRoleNames []string // read only
	Tags                map[string]any
}

// PolicyAdvice is the controller's own verdict on whether an identity can use a service.
type PolicyAdvice struct {
	IdentityID, ServiceID string
	DialAllowed           bool // a Dial service policy grants it (posture checks aside)
	BindAllowed           bool
	IdentityRouterCount   int // edge routers the identity may use
	ServiceRouterCount    int // edge routers the service may be reached through
	CommonRouters         []string
}

// ListServicePolicies returns every service policy matching filter ("" for all).
func (c *Client) ListServicePolicies(ctx context.Context, filter string) ([]ServicePolicy, error) {
	return listOf(ctx, c, "list service policies", filter, service_policy.NewListServicePoliciesParamsWithContext,
		func(p *service_policy.ListServicePoliciesParams) (*service_policy.ListServicePoliciesOK, error) {
			return c.mgmt.ServicePolicy.ListServicePolicies(p, c.session())
		},
		func(r *service_policy.ListServicePoliciesOK) ([]*rest_model.ServicePolicyDetail, *rest_model.Meta) {
			return r.Payload.Data, r.Payload.Meta
		}, servicePolicyFromWire)
}

func servicePolicyFromWire(d *rest_model.ServicePolicyDetail) ServicePolicy {
	return ServicePolicy{
		ID: str(d.ID), Name: str(d.Name), Type: enumStr(d.Type), Semantic: enumStr(d.Semantic),
		IdentityRoles: d.IdentityRoles, ServiceRoles: d.ServiceRoles, PostureCheckRoles: d.PostureCheckRoles,
		IdentityRoleNames:     roleNames(d.IdentityRoles, d.IdentityRolesDisplay),
		ServiceRoleNames:      roleNames(d.ServiceRoles, d.ServiceRolesDisplay),
		PostureCheckRoleNames: roleNames(d.PostureCheckRoles, d.PostureCheckRolesDisplay),
		Tags:                  tagsFromWire(d.Tags),
	}
}

// servicePolicyToWire is the body of a create of sp; an update has the same fields.
func servicePolicyToWire(sp ServicePolicy) *rest_model.ServicePolicyCreate {
	return &rest_model.ServicePolicyCreate{
		Name: &sp.Name, Type: dialBind(sp.Type), Semantic: semantic(sp.Semantic),
		IdentityRoles: roles(sp.IdentityRoles), ServiceRoles: roles(sp.ServiceRoles),
		PostureCheckRoles: roles(sp.PostureCheckRoles), Tags: tagsToWire(sp.Tags),
	}
}

// CreateServicePolicy creates sp and returns its id.
func (c *Client) CreateServicePolicy(ctx context.Context, sp ServicePolicy) (string, error) {
	return created(ctx, c, "create service policy "+sp.Name, func(ctx context.Context) (*service_policy.CreateServicePolicyCreated, error) {
		p := service_policy.NewCreateServicePolicyParamsWithContext(ctx).WithPolicy(servicePolicyToWire(sp))
		return c.mgmt.ServicePolicy.CreateServicePolicy(p, c.session())
	})
}

// UpdateServicePolicy replaces every field of service policy id with those of sp (a full update).
func (c *Client) UpdateServicePolicy(ctx context.Context, id string, sp ServicePolicy) error {
	return c.do(ctx, "update service policy "+nameOr(sp.Name, id), func(ctx context.Context) error {
		p := service_policy.NewUpdateServicePolicyParamsWithContext(ctx).WithID(id).
			WithPolicy((*rest_model.ServicePolicyUpdate)(servicePolicyToWire(sp))) // the same fields
		return discard(c.mgmt.ServicePolicy.UpdateServicePolicy(p, c.session()))
	})
}

// DeleteServicePolicy removes service policy id.
func (c *Client) DeleteServicePolicy(ctx context.Context, id string) error {
	return c.do(ctx, "delete service policy "+id, func(ctx context.Context) error {
		p := service_policy.NewDeleteServicePolicyParamsWithContext(ctx).WithID(id)
		return discard(c.mgmt.ServicePolicy.DeleteServicePolicy(p, c.session()))
	})
}

// ListEdgeRouterPolicies returns every edge-router policy matching filter ("" for all), system ones included.
func (c *Client) ListEdgeRouterPolicies(ctx context.Context, filter string) ([]EdgeRouterPolicy, error) {
	return listOf(ctx, c, "list edge router policies", filter, edge_router_policy.NewListEdgeRouterPoliciesParamsWithContext,
		func(p *edge_router_policy.ListEdgeRouterPoliciesParams) (*edge_router_policy.ListEdgeRouterPoliciesOK, error) {
			return c.mgmt.EdgeRouterPolicy.ListEdgeRouterPolicies(p, c.session())
		},
		func(r *edge_router_policy.ListEdgeRouterPoliciesOK) ([]*rest_model.EdgeRouterPolicyDetail, *rest_model.Meta) {
			return r.Payload.Data, r.Payload.Meta
		}, edgeRouterPolicyFromWire)
}

func edgeRouterPolicyFromWire(d *rest_model.EdgeRouterPolicyDetail) EdgeRouterPolicy {
	return EdgeRouterPolicy{
		ID: str(d.ID), Name: str(d.Name), Semantic: enumStr(d.Semantic),
		IdentityRoles: d.IdentityRoles, EdgeRouterRoles: d.EdgeRouterRoles,
		IdentityRoleNames:   roleNames(d.IdentityRoles, d.IdentityRolesDisplay),
		EdgeRouterRoleNames: roleNames(d.EdgeRouterRoles, d.EdgeRouterRolesDisplay),
		IsSystem:            boolean(d.IsSystem),
		Tags:                tagsFromWire(d.Tags),
	}
}

// edgeRouterPolicyToWire is the body of a create of erp; an update has the same fields.
func edgeRouterPolicyToWire(erp EdgeRouterPolicy) *rest_model.EdgeRouterPolicyCreate {
	return &rest_model.EdgeRouterPolicyCreate{
		Name: &erp.Name, Semantic: semantic(erp.Semantic),
		IdentityRoles: roles(erp.IdentityRoles), EdgeRouterRoles: roles(erp.EdgeRouterRoles), Tags: tagsToWire(erp.Tags),
	}
}

// CreateEdgeRouterPolicy creates erp and returns its id.
func (c *Client) CreateEdgeRouterPolicy(ctx context.Context, erp EdgeRouterPolicy) (string, error) {
	return created(ctx, c, "create edge router policy "+erp.Name, func(ctx context.Context) (*edge_router_policy.CreateEdgeRouterPolicyCreated, error) {
		p := edge_router_policy.NewCreateEdgeRouterPolicyParamsWithContext(ctx).WithPolicy(edgeRouterPolicyToWire(erp))
		return c.mgmt.EdgeRouterPolicy.CreateEdgeRouterPolicy(p, c.session())
	})
}

// UpdateEdgeRouterPolicy replaces every field of edge-router policy id with those of erp (a full update).
func (c *Client) UpdateEdgeRouterPolicy(ctx context.Context, id string, erp EdgeRouterPolicy) error {
	return c.do(ctx, "update edge router policy "+nameOr(erp.Name, id), func(ctx context.Context) error {
		p := edge_router_policy.NewUpdateEdgeRouterPolicyParamsWithContext(ctx).WithID(id).
			WithPolicy((*rest_model.EdgeRouterPolicyUpdate)(edgeRouterPolicyToWire(erp))) // the same fields
		return discard(c.mgmt.EdgeRouterPolicy.UpdateEdgeRouterPolicy(p, c.session()))
	})
}

// DeleteEdgeRouterPolicy removes edge-router policy id.
func (c *Client) DeleteEdgeRouterPolicy(ctx context.Context, id string) error {
	return c.do(ctx, "delete edge router policy "+id, func(ctx context.Context) error {
		p := edge_router_policy.NewDeleteEdgeRouterPolicyParamsWithContext(ctx).WithID(id)
		return discard(c.mgmt.EdgeRouterPolicy.DeleteEdgeRouterPolicy(p, c.session()))
	})
}

// ListServiceEdgeRouterPolicies returns every service-edge-router policy matching filter ("" for all).
func (c *Client) ListServiceEdgeRouterPolicies(ctx context.Context, filter string) ([]ServiceEdgeRouterPolicy, error) {
	return listOf(ctx, c, "list service edge router policies", filter, service_edge_router_policy.NewListServiceEdgeRouterPoliciesParamsWithContext,
		func(p *service_edge_router_policy.ListServiceEdgeRouterPoliciesParams) (*service_edge_router_policy.ListServiceEdgeRouterPoliciesOK, error) {
			return c.mgmt.ServiceEdgeRouterPolicy.ListServiceEdgeRouterPolicies(p, c.session())
		},
		func(r *service_edge_router_policy.ListServiceEdgeRouterPoliciesOK) ([]*rest_model.ServiceEdgeRouterPolicyDetail, *rest_model.Meta) {
			return r.Payload.Data, r.Payload.Meta
		}, serviceEdgeRouterPolicyFromWire)
}

func serviceEdgeRouterPolicyFromWire(d *rest_model.ServiceEdgeRouterPolicyDetail) ServiceEdgeRouterPolicy {
	return ServiceEdgeRouterPolicy{
		ID: str(d.ID), Name: str(d.Name), Semantic: enumStr(d.Semantic),
		ServiceRoles: d.ServiceRoles, EdgeRouterRoles: d.EdgeRouterRoles,
		ServiceRoleNames:    roleNames(d.ServiceRoles, d.ServiceRolesDisplay),
		EdgeRouterRoleNames: roleNames(d.EdgeRouterRoles, d.EdgeRouterRolesDisplay),
		Tags:                tagsFromWire(d.Tags),
	}
}

// serviceEdgeRouterPolicyToWire is the body of a create of serp; an update has the same fields.
func serviceEdgeRouterPolicyToWire(serp ServiceEdgeRouterPolicy) *rest_model.ServiceEdgeRouterPolicyCreate {
	return &rest_model.ServiceEdgeRouterPolicyCreate{
		Name: &serp.Name, Semantic: semantic(serp.Semantic),
		ServiceRoles: roles(serp.ServiceRoles), EdgeRouterRoles: roles(serp.EdgeRouterRoles), Tags: tagsToWire(serp.Tags),
	}
}

// CreateServiceEdgeRouterPolicy creates serp and returns its id.
func (c *Client) CreateServiceEdgeRouterPolicy(ctx context.Context, serp ServiceEdgeRouterPolicy) (string, error) {
	return created(ctx, c, "create service edge router policy "+serp.Name, func(ctx context.Context) (*service_edge_router_policy.CreateServiceEdgeRouterPolicyCreated, error) {
		p := service_edge_router_policy.NewCreateServiceEdgeRouterPolicyParamsWithContext(ctx).WithPolicy(serviceEdgeRouterPolicyToWire(serp))
		return c.mgmt.ServiceEdgeRouterPolicy.CreateServiceEdgeRouterPolicy(p, c.session())
	})
}

// UpdateServiceEdgeRouterPolicy replaces every field of service-edge-router policy id with those of serp.
func (c *Client) UpdateServiceEdgeRouterPolicy(ctx context.Context, id string, serp ServiceEdgeRouterPolicy) error {
	return c.do(ctx, "update service edge router policy "+nameOr(serp.Name, id), func(ctx context.Context) error {
		p := service_edge_router_policy.NewUpdateServiceEdgeRouterPolicyParamsWithContext(ctx).WithID(id).
			WithPolicy((*rest_model.ServiceEdgeRouterPolicyUpdate)(serviceEdgeRouterPolicyToWire(serp))) // the same fields
		return discard(c.mgmt.ServiceEdgeRouterPolicy.UpdateServiceEdgeRouterPolicy(p, c.session()))
	})
}

// DeleteServiceEdgeRouterPolicy removes service-edge-router policy id.
func (c *Client) DeleteServiceEdgeRouterPolicy(ctx context.Context, id string) error {
	return c.do(ctx, "delete service edge router policy "+id, func(ctx context.Context) error {
		p := service_edge_router_policy.NewDeleteServiceEdgeRouterPolicyParamsWithContext(ctx).WithID(id)
		return discard(c.mgmt.ServiceEdgeRouterPolicy.DeleteServiceEdgeRouterPolicy(p, c.session()))
	})
}

// PolicyAdvice asks the controller whether identity identityID can dial and bind service serviceID, and
// through which edge routers (GET /identities/{id}/policy-advice/{serviceId}).
func (c *Client) PolicyAdvice(ctx context.Context, identityID, serviceID string) (PolicyAdvice, error) {
	var out PolicyAdvice
	err := c.do(ctx, "policy advice for identity "+identityID+" and service "+serviceID, func(ctx context.Context) error {
		p := identity.NewGetIdentityPolicyAdviceParamsWithContext(ctx)
		p.ID, p.ServiceID = identityID, serviceID
		resp, err := c.mgmt.Identity.GetIdentityPolicyAdvice(p, c.session())
		if err != nil {
			return err
		}
		d := resp.Payload.Data
		if d == nil {
			return nil
		}
		out = PolicyAdvice{
			IdentityID: d.IdentityID, ServiceID: d.ServiceID,
			DialAllowed: d.IsDialAllowed, BindAllowed: d.IsBindAllowed,
			IdentityRouterCount: int(d.IdentityRouterCount), ServiceRouterCount: int(d.ServiceRouterCount),
		}
		for _, r := range d.CommonRouters {
			if r != nil {
				out.CommonRouters = append(out.CommonRouters, r.Name)
			}
		}
		return nil
	})
	return out, err
}

// roleNames shows roles with every "@id" replaced by the "@name" the controller displays for it.
func roleNames(stored rest_model.Roles, display rest_model.NamedRoles) []string {
	names := make(map[string]string, len(display))
	for _, d := range display {
		if d != nil && d.Name != "" {
			names[d.Role] = d.Name
		}
	}
	out := make([]string, 0, len(stored))
	for _, r := range stored {
		if n, ok := names[r]; ok {
			r = n
		}
		out = append(out, r)
	}
	return out
}

func semantic(s string) *rest_model.Semantic {
	if s == "" {
		s = SemanticAnyOf
	}
	return rest_model.NewSemantic(rest_model.Semantic(s))
}

func dialBind(t string) *rest_model.DialBind { return rest_model.NewDialBind(rest_model.DialBind(t)) }

func enumStr[T ~string](p *T) string {
	if p == nil {
		return ""
	}
	return string(*p)
}
