package ziti

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/openziti/edge-api/rest_management_api_client/config"
	"github.com/openziti/edge-api/rest_model"
)

// Names of the config types services use most (built into every controller).
const (
	ConfigTypeIntercept = "intercept.v1" // where a tunneler intercepts a service (client side)
	ConfigTypeHost      = "host.v1"      // where a hosting tunneler or router forwards it (server side)
)

// ConfigType is a config type: a name and a JSON schema the controller checks config data against.
type ConfigType struct {
	ID   string
	Name string
}

// Config is a named, typed JSON document that services reference (e.g. an intercept.v1 or host.v1 config).
type Config struct {
	ID           string
	Name         string
	ConfigTypeID string
	// ConfigTypeName is set by lists (read only).
	ConfigTypeName string
	// Data is the config's JSON document as maps, slices, strings, bools and numbers. Numbers the controller
	// returns are json.Number; compare documents with EqualJSON.
	Data map[string]any
	Tags map[string]any
}

// ListConfigTypes returns every config type matching filter ("" for all).
func (c *Client) ListConfigTypes(ctx context.Context, filter string) ([]ConfigType, error) {
	return listOf(ctx, c, "list config types", filter, config.NewListConfigTypesParamsWithContext,
		func(p *config.ListConfigTypesParams) (*config.ListConfigTypesOK, error) {
			return c.mgmt.Config.ListConfigTypes(p, c.session())
		},
		func(r *config.ListConfigTypesOK) ([]*rest_model.ConfigTypeDetail, *rest_model.Meta) {
			return r.Payload.Data, r.Payload.Meta
		}, configTypeFromWire)
}

func configTypeFromWire(d *rest_model.ConfigTypeDetail) ConfigType {
	return ConfigType{ID: str(d.ID), Name: str(d.Name)}
}

// ListConfigs returns every config matching filter (e.g. FilterEq("name", "x"); "" for all).
func (c *Client) ListConfigs(ctx context.Context, filter string) ([]Config, error) {
	return listOf(ctx, c, "list configs", filter, config.NewListConfigsParamsWithContext,
		func(p *config.ListConfigsParams) (*config.ListConfigsOK, error) {
			return c.mgmt.Config.ListConfigs(p, c.session())
		},
		func(r *config.ListConfigsOK) ([]*rest_model.ConfigDetail, *rest_model.Meta) {
			return r.Payload.Data, r.Payload.Meta
		}, configFromWire)
}

// CreateConfig creates cfg (Name, ConfigTypeID, Data, Tags) and returns its id. The controller checks Data
// against the type's schema and refuses a name in use (COULD_NOT_VALIDATE).
func (c *Client) CreateConfig(ctx context.Context, cfg Config) (string, error) {
	return created(ctx, c, "create config "+cfg.Name, func(ctx context.Context) (*config.CreateConfigCreated, error) {
		p := config.NewCreateConfigParamsWithContext(ctx)
		p.Config = &rest_model.ConfigCreate{
			Name:         &cfg.Name,
			ConfigTypeID: &cfg.ConfigTypeID,
			Data:         data(cfg.Data),
			Tags:         tagsToWire(cfg.Tags),
		}
		return c.mgmt.Config.CreateConfig(p, c.session())
	})
}

// UpdateConfig replaces Name, Data and Tags of config id (a full update). Its type cannot change: delete the
// config and create another.
func (c *Client) UpdateConfig(ctx context.Context, id string, cfg Config) error {
	return c.do(ctx, "update config "+nameOr(cfg.Name, id), func(ctx context.Context) error {
		p := config.NewUpdateConfigParamsWithContext(ctx).WithID(id)
		p.Config = &rest_model.ConfigUpdate{Name: &cfg.Name, Data: data(cfg.Data), Tags: tagsToWire(cfg.Tags)}
		return discard(c.mgmt.Config.UpdateConfig(p, c.session()))
	})
}

// DeleteConfig removes config id.
func (c *Client) DeleteConfig(ctx context.Context, id string) error {
	return c.do(ctx, "delete config "+id, func(ctx context.Context) error {
		p := config.NewDeleteConfigParamsWithContext(ctx).WithID(id)
		return discard(c.mgmt.Config.DeleteConfig(p, c.session()))
	})
}

// EqualJSON reports whether a and b are the same JSON document: numbers compare by value whether they are
// json.Number, int or float64, and map keys in any order.
func EqualJSON(a, b any) bool {
	ca, errA := CanonicalJSON(a)
	cb, errB := CanonicalJSON(b)
	return errA == nil && errB == nil && ca == cb
}

// CanonicalJSON returns v as JSON with sorted object keys and numbers in one form.
func CanonicalJSON(v any) (string, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	var generic any
	if err := json.Unmarshal(raw, &generic); err != nil {
		return "", err
	}
	out, err := json.Marshal(generic)
	if err != nil {
		return "", fmt.Errorf("canonical JSON: %w", err)
	}
	return string(out), nil
}

func data(d map[string]any) any {
	if d == nil {
		return map[string]any{}
	}
	return d
}

func configFromWire(d *rest_model.ConfigDetail) Config {
	if d == nil {
		return Config{}
	}
	out := Config{
		ID:           str(d.ID),
		Name:         str(d.Name),
		ConfigTypeID: str(d.ConfigTypeID),
		Tags:         tagsFromWire(d.Tags),
	}
	if d.ConfigType != nil {
		out.ConfigTypeName = d.ConfigType.Name
	}
	if m, ok := d.Data.(map[string]any); ok {
		out.Data = m
	}
	return out
}
