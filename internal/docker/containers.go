package docker

import (
	"context"
	"fmt"
	"strings"

	"github.com/docker/docker/api/types/container"
)

// ServiceIDLabel is the label Swarm puts on the containers of a service's tasks.
const ServiceIDLabel = "com.docker.swarm.service.id"

// Container is a container of this engine's node as listed.
type Container struct {
	ID, Name  string
	State     string // created, running, exited, dead, …
	ServiceID string // the Swarm service it ran a task of; "" for none
}

// Containers lists this node's containers of namespace (labelled com.docker.stack.namespace), in any state.
// Swarm labels the containers of a stack's tasks so: they are the containers of its services.
func (c *Client) Containers(ctx context.Context, namespace string) ([]Container, error) {
	list, err := c.api.ContainerList(ctx, container.ListOptions{All: true, Filters: byNamespace(namespace)})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]Container, 0, len(list))
	for _, k := range list {
		name := k.ID
		if len(k.Names) > 0 {
			name = strings.TrimPrefix(k.Names[0], "/")
		}
		out = append(out, Container{ID: k.ID, Name: name, State: k.State, ServiceID: k.Labels[ServiceIDLabel]})
	}
	return out, nil
}

// RemoveContainer removes a stopped container (its anonymous volumes are not removed: a stack has none).
func (c *Client) RemoveContainer(ctx context.Context, id string) error {
	if err := c.api.ContainerRemove(ctx, id, container.RemoveOptions{}); err != nil {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	return nil
}
