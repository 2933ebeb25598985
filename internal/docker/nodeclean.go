package docker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/volume"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
)

// Volumes and plain containers are local to a node: a manager's Engine API lists only its own. CleanNode removes
// a stack's leftovers on the node of the engine it talks to; RunOnEveryNode (globaljob.go) runs it on every node
// of the Swarm as a global job of the tool's own image.

// NodeCleanup is what CleanNode removed on one node.
type NodeCleanup struct {
	Containers []string // names
	Volumes    []string
}

// CleanNode removes, on this engine's node, every container labelled with one of namespaces (NamespaceLabel), in
// any state and running or not (a stack's plain containers, such as a per-node SPIRE agent, and task containers
// Swarm has not removed yet), then, when volumes, every volume so labelled. A volume still held by a container
// the engine is removing is retried until deadline. Objects without the label are never touched.
func (c *Client) CleanNode(ctx context.Context, namespaces []string, volumes bool, deadline time.Duration) (NodeCleanup, error) {
	var done NodeCleanup
	var errs []error
	var removing []string // containers the engine is removing already
	for _, ns := range namespaces {
		if ns == "" {
			return done, errors.New("clean node: empty stack namespace (it would match every object)")
		}
		list, err := c.api.ContainerList(ctx, container.ListOptions{All: true, Filters: byNamespace(ns)})
		if err != nil {
			return done, fmt.Errorf("list containers of stack %s: %w", ns, err)
		}
		// Swarm's task containers first: a task that keeps plain containers in place (the SPIRE agent launcher)
		// must be gone before the containers it keeps, or it would make them again
		sort.SliceStable(list, func(i, j int) bool {
			return list[i].Labels["com.docker.swarm.task.id"] != "" && list[j].Labels["com.docker.swarm.task.id"] == ""
		})
		for _, k := range list {
			name := ShortID(k.ID)
			if len(k.Names) > 0 {
				name = k.Names[0][1:]
			}
			err := c.api.ContainerRemove(ctx, k.ID, container.RemoveOptions{Force: true})
			switch {
			case err == nil:
				done.Containers = append(done.Containers, name)
			case IsConflict(err): // "removal … already in progress": Swarm is removing a task's container
				removing = append(removing, k.ID)
			case !IsNotFound(err): // else Swarm removed it meanwhile
				errs = append(errs, fmt.Errorf("remove container %s of stack %s: %w", name, ns, err))
			}
		}
	}
	if len(removing) > 0 {
		err := wait.For(ctx, wait.Target{What: "removal of task containers", Where: c.host, Deadline: deadline}, func(ctx context.Context) error {
			for _, id := range removing {
				if _, err := c.api.ContainerInspect(ctx, id); !IsNotFound(err) {
					return fmt.Errorf("container %s still there (%v)", ShortID(id), err)
				}
			}
			return nil
		})
		errs = append(errs, err)
	}
	if !volumes {
		return done, errors.Join(errs...)
	}
	var pending []string
	for _, ns := range namespaces {
		resp, err := c.api.VolumeList(ctx, volume.ListOptions{Filters: byNamespace(ns)})
		if err != nil {
			return done, fmt.Errorf("list volumes of stack %s: %w", ns, err)
		}
		for _, v := range resp.Volumes {
			pending = append(pending, v.Name)
		}
	}
	err := wait.For(ctx, wait.Target{What: "removal of volumes in use", Where: c.host, Deadline: deadline}, func(ctx context.Context) error {
		var busy []error
		for _, v := range slices.Clone(pending) {
			err := c.api.VolumeRemove(ctx, v, false)
			switch {
			case err == nil || IsNotFound(err):
				if err == nil {
					done.Volumes = append(done.Volumes, v)
				}
				pending = slices.DeleteFunc(pending, func(p string) bool { return p == v })
			case IsConflict(err): // in use by a container being removed
				busy = append(busy, fmt.Errorf("volume %s: %w", v, err))
			default:
				return wait.Permanent(fmt.Errorf("remove volume %s: %w", v, err))
			}
		}
		return errors.Join(busy...)
	})
	return done, errors.Join(append(errs, err)...)
}
