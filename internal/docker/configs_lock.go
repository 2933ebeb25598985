package docker

import (
	"context"
	"fmt"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/errdefs"
)

// The calls below are what internal/lock needs to hold a lock in the Swarm: a config object created atomically
// (the Swarm refuses a second object of the same name), read with its version, and relabelled with
// compare-and-swap (an update carrying an older version fails).

// LabelledConfig is a Swarm config as inspected: its name, labels and version, never its data.
type LabelledConfig struct {
	ID, Name  string
	Version   uint64 // Meta.Version.Index: what UpdateConfigLabels must be given
	Labels    map[string]string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// IsConflict reports whether err says an object of that name exists already (HTTP 409).
//
// errdefs.IsConflict is containerd's errdefs.IsConflict under Docker's name; containerd/errdefs is only an
// indirect requirement of go.mod, so Docker's alias is used.
func IsConflict(err error) bool { return errdefs.IsConflict(err) }

// InspectConfig reads the config named or identified by nameOrID. A missing config satisfies IsNotFound.
func (c *Client) InspectConfig(ctx context.Context, nameOrID string) (LabelledConfig, error) {
	cfg, _, err := c.api.ConfigInspectWithRaw(ctx, nameOrID)
	if err != nil {
		return LabelledConfig{}, fmt.Errorf("inspect config %s: %w", nameOrID, err)
	}
	return LabelledConfig{ID: cfg.ID, Name: cfg.Spec.Name, Version: cfg.Version.Index, Labels: cfg.Spec.Labels,
		CreatedAt: cfg.CreatedAt, UpdatedAt: cfg.UpdatedAt}, nil
}

// UpdateConfigLabels replaces the labels of config id (named name) if its version is still version. Swarm only
// lets labels of a config change; a config updated since it was read makes the call fail ("update out of
// sequence"), which is what makes this a compare-and-swap.
func (c *Client) UpdateConfigLabels(ctx context.Context, id, name string, version uint64, labels map[string]string) error {
	spec := swarm.ConfigSpec{Annotations: swarm.Annotations{Name: name, Labels: labels}} // no Data: left as it is
	if err := c.api.ConfigUpdate(ctx, id, swarm.Version{Index: version}, spec); err != nil {
		return fmt.Errorf("update labels of config %s at version %d: %w", name, version, err)
	}
	return nil
}

// EngineTime is the engine's own clock (docker info's SystemTime): compared with a config's UpdatedAt, which a
// manager of the same Swarm stamped, it tells how long ago the config was last updated without reading the
// clock of the machine that runs this process.
func (c *Client) EngineTime(ctx context.Context) (time.Time, error) {
	info, err := c.api.Info(ctx)
	if err != nil {
		return time.Time{}, fmt.Errorf("docker info at %s: %w", c.host, err)
	}
	t, err := time.Parse(time.RFC3339Nano, info.SystemTime)
	if err != nil {
		return time.Time{}, fmt.Errorf("docker info at %s: system time %q: %w", c.host, info.SystemTime, err)
	}
	return t, nil
}
