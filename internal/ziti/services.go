package ziti

import (
	"context"

	"github.com/openziti/edge-api/rest_management_api_client/service"
	"github.com/openziti/edge-api/rest_model"
)

// DefaultTerminatorStrategy is what the controller stores when a service is created without a strategy.
const DefaultTerminatorStrategy = "smartrouting"

// Service is a Ziti service.
type Service struct {
	ID   string
	Name string
	// Configs are the ids of the service's configs (at most one of each config type).
	Configs            []string
	RoleAttributes     []string
	EncryptionRequired bool
	// TerminatorStrategy "" means DefaultTerminatorStrategy on create and update; lists give the stored value.
	TerminatorStrategy string
	MaxIdleTimeMillis  int64
	Tags               map[string]any
}

// ListServices returns every service matching filter ("" for all).
func (c *Client) ListServices(ctx context.Context, filter string) ([]Service, error) {
	return listOf(ctx, c, "list services", filter, service.NewListServicesParamsWithContext,
		func(p *service.ListServicesParams) (*service.ListServicesOK, error) {
			return c.mgmt.Service.ListServices(p, c.session())
		},
		func(r *service.ListServicesOK) ([]*rest_model.ServiceDetail, *rest_model.Meta) {
			return r.Payload.Data, r.Payload.Meta
		}, serviceFromWire)
}

// CreateService creates s and returns its id.
func (c *Client) CreateService(ctx context.Context, s Service) (string, error) {
	return created(ctx, c, "create service "+s.Name, func(ctx context.Context) (*service.CreateServiceCreated, error) {
		p := service.NewCreateServiceParamsWithContext(ctx)
		p.Service = &rest_model.ServiceCreate{
			Name:               &s.Name,
			Configs:            list(s.Configs),
			RoleAttributes:     list(s.RoleAttributes),
			EncryptionRequired: &s.EncryptionRequired,
			TerminatorStrategy: terminatorStrategy(s.TerminatorStrategy),
			MaxIdleTimeMillis:  s.MaxIdleTimeMillis,
			Tags:               tagsToWire(s.Tags),
		}
		return c.mgmt.Service.CreateService(p, c.session())
	})
}

// UpdateService replaces every field of service id with those of s (a full update).
func (c *Client) UpdateService(ctx context.Context, id string, s Service) error {
	return c.do(ctx, "update service "+nameOr(s.Name, id), func(ctx context.Context) error {
		p := service.NewUpdateServiceParamsWithContext(ctx).WithID(id)
		p.Service = &rest_model.ServiceUpdate{
			Name:               &s.Name,
			Configs:            list(s.Configs),
			RoleAttributes:     list(s.RoleAttributes),
			EncryptionRequired: s.EncryptionRequired,
			TerminatorStrategy: terminatorStrategy(s.TerminatorStrategy),
			MaxIdleTimeMillis:  s.MaxIdleTimeMillis,
			Tags:               tagsToWire(s.Tags),
		}
		return discard(c.mgmt.Service.UpdateService(p, c.session()))
	})
}

// DeleteService removes service id. Policies that name it by id lose that role.
func (c *Client) DeleteService(ctx context.Context, id string) error {
	return c.do(ctx, "delete service "+id, func(ctx context.Context) error {
		p := service.NewDeleteServiceParamsWithContext(ctx).WithID(id)
		return discard(c.mgmt.Service.DeleteService(p, c.session()))
	})
}

func terminatorStrategy(s string) string {
	if s == "" {
		return DefaultTerminatorStrategy
	}
	return s
}

// list returns l, or an empty list for nil: the controller wants a list, not null.
func list(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

func serviceFromWire(d *rest_model.ServiceDetail) Service {
	if d == nil {
		return Service{}
	}
	out := Service{
		ID:                 str(d.ID),
		Name:               str(d.Name),
		Configs:            d.Configs,
		EncryptionRequired: boolean(d.EncryptionRequired),
		TerminatorStrategy: str(d.TerminatorStrategy),
		MaxIdleTimeMillis:  i64(d.MaxIdleTimeMillis),
		Tags:               tagsFromWire(d.Tags),
	}
	if d.RoleAttributes != nil {
		out.RoleAttributes = []string(*d.RoleAttributes)
	}
	return out
}
