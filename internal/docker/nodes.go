package docker

import (
	"context"
	"fmt"
	"sort"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
)

// Node is a Swarm node as a manager sees it.
type Node struct {
	ID, Hostname, Role, State, Availability, Addr string
	Labels                                        map[string]string
	Leader                                        bool
	Ready                                         bool // status ready and availability active: a global service gets a task there
	Manager                                       bool
}

// Nodes lists the Swarm's nodes (a manager's call), sorted by hostname then ID.
func (c *Client) Nodes(ctx context.Context) ([]Node, error) {
	list, err := c.api.NodeList(ctx, swarm.NodeListOptions{Filters: filters.NewArgs()})
	if err != nil {
		return nil, fmt.Errorf("list Swarm nodes: %w", err)
	}
	out := make([]Node, 0, len(list))
	for _, n := range list {
		nd := Node{ID: n.ID, Hostname: n.Description.Hostname, Role: string(n.Spec.Role), State: string(n.Status.State),
			Availability: string(n.Spec.Availability), Addr: n.Status.Addr, Labels: n.Spec.Labels,
			Manager: n.Spec.Role == swarm.NodeRoleManager,
			Ready:   n.Status.State == swarm.NodeStateReady && n.Spec.Availability == swarm.NodeAvailabilityActive}
		if n.ManagerStatus != nil {
			nd.Leader = n.ManagerStatus.Leader
		}
		out = append(out, nd)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Hostname != out[j].Hostname {
			return out[i].Hostname < out[j].Hostname
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// LabelNode sets label=value on node id (a versioned update: a concurrent change of the node fails it rather than
// being overwritten).
func (c *Client) LabelNode(ctx context.Context, id, label, value string) error {
	n, _, err := c.api.NodeInspectWithRaw(ctx, id)
	if err != nil {
		return fmt.Errorf("inspect node %s: %w", id, err)
	}
	spec := n.Spec
	if spec.Labels == nil {
		spec.Labels = map[string]string{}
	}
	spec.Labels[label] = value
	if err := c.api.NodeUpdate(ctx, id, n.Version, spec); err != nil {
		return fmt.Errorf("label node %s (%s) %s=%s: %w", n.Description.Hostname, id, label, value, err)
	}
	return nil
}

// SwarmRootCA returns the PEM of the Swarm's root CA: the issuer of every node's TLS certificate (a manager's
// call).
func (c *Client) SwarmRootCA(ctx context.Context) (string, error) {
	s, err := c.api.SwarmInspect(ctx)
	if err != nil {
		return "", fmt.Errorf("inspect the swarm: %w", err)
	}
	if s.ClusterInfo.TLSInfo.TrustRoot == "" {
		return "", fmt.Errorf("inspect the swarm: no root CA in its TLS info")
	}
	return s.ClusterInfo.TLSInfo.TrustRoot, nil
}
