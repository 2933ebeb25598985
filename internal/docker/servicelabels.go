package docker

import (
	"context"
	"fmt"
	"maps"
	"strings"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
)

// ServiceLabels returns the labels of a service (by name or ID): its own, not its tasks'.
func (c *Client) ServiceLabels(ctx context.Context, service string) (map[string]string, error) {
	s, _, err := c.api.ServiceInspectWithRaw(ctx, service, swarm.ServiceInspectOptions{})
	if err != nil {
		return nil, fmt.Errorf("inspect Swarm service %s: %w", service, err)
	}
	return maps.Clone(s.Spec.Labels), nil
}

// SetServiceLabels sets (value non-empty) or removes (value "") the service's own labels. The Swarm stores them
// with the service (in its Raft log), and changing them restarts no task.
func (c *Client) SetServiceLabels(ctx context.Context, service string, labels map[string]string) error {
	for attempt := 0; ; attempt++ {
		s, _, err := c.api.ServiceInspectWithRaw(ctx, service, swarm.ServiceInspectOptions{})
		if err != nil {
			return fmt.Errorf("inspect Swarm service %s: %w", service, err)
		}
		spec := s.Spec
		spec.Labels = maps.Clone(spec.Labels)
		if spec.Labels == nil {
			spec.Labels = map[string]string{}
		}
		changed := false
		for k, v := range labels {
			old, had := spec.Labels[k]
			switch {
			case v == "" && had:
				delete(spec.Labels, k)
				changed = true
			case v != "" && old != v:
				spec.Labels[k] = v
				changed = true
			}
		}
		if !changed {
			return nil
		}
		_, err = c.api.ServiceUpdate(ctx, s.ID, s.Version, spec, swarm.ServiceUpdateOptions{QueryRegistry: false})
		if err == nil {
			return nil
		}
		// "update out of sequence": the service changed since it was read; read it again (a few times)
		if attempt >= 3 || !strings.Contains(err.Error(), "out of sequence") {
			return fmt.Errorf("label Swarm service %s: %w", service, err)
		}
	}
}

// ServicesLabelled returns the names of the services that have the label key (any value).
func (c *Client) ServicesLabelled(ctx context.Context, key string) ([]string, error) {
	list, err := c.api.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("label", key))})
	if err != nil {
		return nil, fmt.Errorf("list Swarm services labelled %s: %w", key, err)
	}
	var out []string
	for _, s := range list {
		out = append(out, s.Spec.Name)
	}
	return out, nil
}
