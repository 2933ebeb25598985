package docker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
)

// NamespaceLabel marks the objects of one stack, as `docker stack deploy` does. Every list below filters on it,
// so whoever deletes what a list returned can only ever delete objects of that stack.
const NamespaceLabel = "com.docker.stack.namespace"

// IsNotFound reports whether err says the object does not exist.
func IsNotFound(err error) bool { return client.IsErrNotFound(err) }

func byNamespace(namespace string) filters.Args {
	if namespace == "" {
		return filters.NewArgs()
	}
	return filters.NewArgs(filters.Arg("label", NamespaceLabel+"="+namespace))
}

// Network is a network as listed.
type Network struct {
	ID, Name, Driver, Scope string
	Labels                  map[string]string
	Options                 map[string]string
	Attachable, Internal    bool
}

// NetworkSpec is a network to create.
type NetworkSpec struct {
	Name, Driver         string
	Labels, Options      map[string]string
	Attachable, Internal bool
}

// Networks lists the networks of namespace; "" lists every network (to map IDs to names, find external ones).
func (c *Client) Networks(ctx context.Context, namespace string) ([]Network, error) {
	list, err := c.api.NetworkList(ctx, network.ListOptions{Filters: byNamespace(namespace)})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	out := make([]Network, 0, len(list))
	for _, n := range list {
		out = append(out, Network{ID: n.ID, Name: n.Name, Driver: n.Driver, Scope: n.Scope, Labels: n.Labels,
			Options: n.Options, Attachable: n.Attachable, Internal: n.Internal})
	}
	return out, nil
}

// CreateNetwork creates a swarm-scoped network and returns its ID.
func (c *Client) CreateNetwork(ctx context.Context, s NetworkSpec) (string, error) {
	resp, err := c.api.NetworkCreate(ctx, s.Name, network.CreateOptions{Driver: s.Driver, Scope: "swarm", Labels: s.Labels,
		Options: s.Options, Attachable: s.Attachable, Internal: s.Internal})
	if err != nil {
		return "", fmt.Errorf("create network %s: %w", s.Name, err)
	}
	return resp.ID, nil
}

// RemoveNetwork removes a network by ID or name.
func (c *Client) RemoveNetwork(ctx context.Context, id string) error {
	if err := c.api.NetworkRemove(ctx, id); err != nil {
		return fmt.Errorf("remove network %s: %w", id, err)
	}
	return nil
}

// Object is a Swarm secret or config as listed: its name and labels, never its data.
type Object struct {
	ID, Name  string
	Labels    map[string]string
	CreatedAt time.Time
}

// Secrets lists the secrets of namespace.
func (c *Client) Secrets(ctx context.Context, namespace string) ([]Object, error) {
	list, err := c.api.SecretList(ctx, swarm.SecretListOptions{Filters: byNamespace(namespace)})
	return objects("secrets", list, err, func(s swarm.Secret) Object {
		return Object{ID: s.ID, Name: s.Spec.Name, Labels: s.Spec.Labels, CreatedAt: s.CreatedAt}
	})
}

// CreateSecret creates a secret and returns its ID.
func (c *Client) CreateSecret(ctx context.Context, name string, data []byte, labels map[string]string) (string, error) {
	resp, err := c.api.SecretCreate(ctx, swarm.SecretSpec{Annotations: swarm.Annotations{Name: name, Labels: labels}, Data: data})
	return resp.ID, wrapObject(err, "create secret", name)
}

// RemoveSecret removes a secret by ID.
func (c *Client) RemoveSecret(ctx context.Context, id string) error {
	return wrapObject(c.api.SecretRemove(ctx, id), "remove secret", id)
}

// Configs lists the configs of namespace.
func (c *Client) Configs(ctx context.Context, namespace string) ([]Object, error) {
	list, err := c.api.ConfigList(ctx, swarm.ConfigListOptions{Filters: byNamespace(namespace)})
	return objects("configs", list, err, func(s swarm.Config) Object {
		return Object{ID: s.ID, Name: s.Spec.Name, Labels: s.Spec.Labels, CreatedAt: s.CreatedAt}
	})
}

// CreateConfig creates a config and returns its ID.
func (c *Client) CreateConfig(ctx context.Context, name string, data []byte, labels map[string]string) (string, error) {
	resp, err := c.api.ConfigCreate(ctx, swarm.ConfigSpec{Annotations: swarm.Annotations{Name: name, Labels: labels}, Data: data})
	return resp.ID, wrapObject(err, "create config", name)
}

// RemoveConfig removes a config by ID.
func (c *Client) RemoveConfig(ctx context.Context, id string) error {
	return wrapObject(c.api.ConfigRemove(ctx, id), "remove config", id)
}

// objects is a list of secrets or configs (kind) as Objects, or its error.
func objects[T any](kind string, list []T, err error, object func(T) Object) ([]Object, error) {
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", kind, err)
	}
	out := make([]Object, 0, len(list))
	for _, x := range list {
		out = append(out, object(x))
	}
	return out, nil
}

// wrapObject prefixes err (nil stays nil) with the operation and the object.
func wrapObject(err error, op, what string) error {
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, what, err)
	}
	return nil
}

// Volume is a volume of this engine's node as listed (volumes are per node; Swarm creates them where tasks run).
type Volume struct {
	Name, Driver string
	Labels       map[string]string
	Mountpoint   string // where its data is on the node (local driver)
}

// Volumes lists the volumes of namespace on this engine's node.
func (c *Client) Volumes(ctx context.Context, namespace string) ([]Volume, error) {
	resp, err := c.api.VolumeList(ctx, volume.ListOptions{Filters: byNamespace(namespace)})
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	out := make([]Volume, 0, len(resp.Volumes))
	for _, v := range resp.Volumes {
		out = append(out, Volume{Name: v.Name, Driver: v.Driver, Labels: v.Labels, Mountpoint: v.Mountpoint})
	}
	return out, nil
}

// RemoveVolume removes a volume of this engine's node.
func (c *Client) RemoveVolume(ctx context.Context, name string) error {
	if err := c.api.VolumeRemove(ctx, name, false); err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	return nil
}

// Services lists the services of namespace, with their running/desired task counts.
func (c *Client) Services(ctx context.Context, namespace string) ([]swarm.Service, error) {
	list, err := c.api.ServiceList(ctx, swarm.ServiceListOptions{Filters: byNamespace(namespace), Status: true})
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	return list, nil
}

// CreateService creates a service (without asking a registry for the image digest: images may be local) and
// returns its ID and the engine's warnings.
func (c *Client) CreateService(ctx context.Context, spec swarm.ServiceSpec) (string, []string, error) {
	resp, err := c.api.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{QueryRegistry: false})
	if err != nil {
		return "", nil, fmt.Errorf("create service %s: %w", spec.Name, err)
	}
	return resp.ID, resp.Warnings, nil
}

// UpdateService replaces the spec of service id at version (optimistic concurrency: a service changed since it
// was read is an error) and returns the engine's warnings.
func (c *Client) UpdateService(ctx context.Context, id string, version uint64, spec swarm.ServiceSpec) ([]string, error) {
	resp, err := c.api.ServiceUpdate(ctx, id, swarm.Version{Index: version}, spec, swarm.ServiceUpdateOptions{QueryRegistry: false})
	if err != nil {
		return nil, fmt.Errorf("update service %s: %w", spec.Name, err)
	}
	return resp.Warnings, nil
}

// RemoveService removes a service by ID.
func (c *Client) RemoveService(ctx context.Context, id string) error {
	if err := c.api.ServiceRemove(ctx, id); err != nil {
		return fmt.Errorf("remove service %s: %w", id, err)
	}
	return nil
}

// Tasks lists the tasks of the services serviceIDs (IDs or names; all of their tasks, including finished ones
// Swarm still keeps), in one call; none for no service.
func (c *Client) Tasks(ctx context.Context, serviceIDs ...string) ([]swarm.Task, error) {
	if len(serviceIDs) == 0 {
		return nil, nil
	}
	f := filters.NewArgs()
	for _, id := range serviceIDs {
		f.Add("service", id)
	}
	list, err := c.api.TaskList(ctx, swarm.TaskListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list tasks of service %s: %w", strings.Join(serviceIDs, ", "), err)
	}
	return list, nil
}

// TaskLister lists the tasks of services, in one call; *Client has it.
type TaskLister interface {
	Tasks(ctx context.Context, serviceIDs ...string) ([]swarm.Task, error)
}

// ServiceLister lists the services of a stack namespace; *Client has it.
type ServiceLister interface {
	Services(ctx context.Context, namespace string) ([]swarm.Service, error)
}

// ServicesByNamespace lists the services of each namespace, the namespaces at once.
func ServicesByNamespace(ctx context.Context, e ServiceLister, namespaces ...string) (map[string][]swarm.Service, error) {
	lists := make([][]swarm.Service, len(namespaces))
	errs := make([]error, len(namespaces))
	var wg sync.WaitGroup
	for i, ns := range namespaces {
		wg.Go(func() { lists[i], errs[i] = e.Services(ctx, ns) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	by := make(map[string][]swarm.Service, len(namespaces))
	for i, ns := range namespaces {
		by[ns] = lists[i]
	}
	return by, nil
}

// TasksByService lists the tasks of svcs in one call, by service ID.
func TasksByService(ctx context.Context, e TaskLister, svcs []swarm.Service) (map[string][]swarm.Task, error) {
	ids := make([]string, len(svcs))
	for i, s := range svcs {
		ids[i] = s.ID
	}
	tasks, err := e.Tasks(ctx, ids...)
	if err != nil {
		return nil, err
	}
	by := make(map[string][]swarm.Task, len(svcs))
	for _, t := range tasks {
		by[t.ServiceID] = append(by[t.ServiceID], t)
	}
	return by, nil
}

// NamespaceTasks lists the tasks of every service of namespace (tasks carry their service's labels).
func (c *Client) NamespaceTasks(ctx context.Context, namespace string) ([]swarm.Task, error) {
	list, err := c.api.TaskList(ctx, swarm.TaskListOptions{Filters: byNamespace(namespace)})
	if err != nil {
		return nil, fmt.Errorf("list tasks of stack %s: %w", namespace, err)
	}
	return list, nil
}
