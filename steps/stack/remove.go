package stack

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

// RemoveStepName is the name of the step that removes stack name, e.g. "down/spire".
func RemoveStepName(name string) string { return "down/" + name }

// Remove is the step that removes one stack as `docker stack rm` does: its services, secrets, configs and
// networks, and with Volumes its volumes on the engine's node (Swarm volumes are local to each node). Only
// objects labelled with the stack's namespace are removed.
type Remove struct {
	cfg       Config
	name      string
	namespace string
	volumes   bool
	networks  networkPart
	deps      []string
}

// networkPart says whether a Remove step removes a stack's networks.
type networkPart int

const (
	withNetworks    networkPart = iota // everything
	withoutNetworks                    // everything but the networks
	onlyNetworks                       // the networks only
)

// RemoveSteps returns one removal step per stack, given in deployment order as stack name → namespace pairs;
// the steps run in reverse order (OpenZiti, then Keycloak, then SPIRE), each after first and the one before.
func RemoveSteps(cfg Config, first string, volumes bool, stacks [][2]string) []steps.Step {
	return removeSteps(cfg, first, volumes, withNetworks, stacks)
}

// RemoveStepsKeepingNetworks is RemoveSteps without the networks, which RemoveNetworkSteps removes later: plain
// containers attached to a stack's attachable overlay (the per-node SPIRE agents) must go first, on every node.
func RemoveStepsKeepingNetworks(cfg Config, first string, volumes bool, stacks [][2]string) []steps.Step {
	return removeSteps(cfg, first, volumes, withoutNetworks, stacks)
}

// RemoveNetworkSteps returns one step per stack that removes its networks ("down/NAME/networks"), in reverse order.
func RemoveNetworkSteps(cfg Config, first string, stacks [][2]string) []steps.Step {
	return removeSteps(cfg, first, false, onlyNetworks, stacks)
}

func removeSteps(cfg Config, first string, volumes bool, part networkPart, stacks [][2]string) []steps.Step {
	var out []steps.Step
	prev := first
	for i := len(stacks) - 1; i >= 0; i-- {
		r := &Remove{cfg: cfg, name: stacks[i][0], namespace: stacks[i][1], volumes: volumes, networks: part}
		if prev != "" {
			r.deps = []string{prev}
		}
		out = append(out, r)
		prev = r.Name()
	}
	return out
}

func (r *Remove) Name() string {
	if r.networks == onlyNetworks {
		return RemoveStepName(r.name) + "/networks"
	}
	return RemoveStepName(r.name)
}
func (r *Remove) DependsOn() []string { return r.deps }

// Plan lists what would be removed.
func (r *Remove) Plan(ctx context.Context) (*steps.Plan, error) {
	e, err := (&Deploy{cfg: r.cfg}).engine()
	if err != nil {
		return nil, err
	}
	o, err := observe(ctx, e, r.namespace)
	if err != nil {
		return nil, err
	}
	switch r.networks {
	case onlyNetworks:
		o = &observed{networks: o.networks}
	case withoutNetworks:
		o.networks = nil
	}
	var vols []docker.Volume
	if r.volumes {
		if vols, err = e.Volumes(ctx, r.namespace); err != nil {
			return nil, err
		}
	}
	var leftovers []docker.Container
	if r.networks != onlyNetworks {
		if leftovers, err = jobLeftovers(ctx, e, r.namespace, o.services); err != nil {
			return nil, err
		}
	}
	sortServices(o.services)
	var changes []steps.Change
	del := func(kind, key string) {
		changes = append(changes, steps.Change{Action: steps.Delete, Kind: kind, Key: key, Reason: "stack " + r.namespace + " removed"})
	}
	for _, s := range o.services {
		del(KindService, s.Spec.Name)
	}
	for _, c := range leftovers {
		changes = append(changes, steps.Change{Action: steps.Delete, Kind: KindContainer, Key: c.Name,
			Reason: "left by a job task (Swarm keeps the containers of jobs, moby/moby#44312); holds the stack's volumes"})
	}
	for _, s := range o.secrets {
		del(KindSecret, s.Name)
	}
	for _, c := range o.configs {
		del(KindConfig, c.Name)
	}
	for _, n := range o.networks {
		del(KindNetwork, n.Name)
	}
	for _, v := range vols {
		del(KindVolume, v.Name)
	}
	p := steps.NewPlan(changes, func(ctx context.Context) error { return r.apply(ctx, e, o, leftovers, vols) })
	if !r.volumes && r.networks == withNetworks { // with the others, down's node step removes the volumes and says so
		p.Note("volumes of stack %s are kept (use --volumes to remove them)", r.namespace)
	}
	return p, nil
}

func (r *Remove) apply(ctx context.Context, e Engine, o *observed, leftovers []docker.Container, vols []docker.Volume) error {
	for _, s := range o.services {
		if err := e.RemoveService(ctx, s.ID); err != nil && !docker.IsNotFound(err) {
			return err
		}
	}
	if cs, ok := e.(Containers); ok {
		for _, c := range leftovers {
			if err := cs.RemoveContainer(ctx, c.ID); err != nil && !docker.IsNotFound(err) {
				return err
			}
		}
	}
	// secrets and configs are released once the tasks are gone; retry while they are in use
	retry := func(what string, fn func(ctx context.Context) error) error {
		return wait.For(ctx, wait.Target{What: what, Where: r.namespace, Deadline: r.cfg.timeout(), Initial: 500 * time.Millisecond,
			Max: 5 * time.Second, Progress: r.cfg.Progress}, func(ctx context.Context) error {
			err := fn(ctx)
			if err == nil || docker.IsNotFound(err) {
				return nil
			}
			if !strings.Contains(err.Error(), "in use") && !strings.Contains(err.Error(), "active endpoints") {
				return wait.Permanent(err)
			}
			return err
		})
	}
	for _, s := range o.secrets {
		if err := retry("removal of secret "+s.Name, func(ctx context.Context) error { return e.RemoveSecret(ctx, s.ID) }); err != nil {
			return err
		}
	}
	for _, c := range o.configs {
		if err := retry("removal of config "+c.Name, func(ctx context.Context) error { return e.RemoveConfig(ctx, c.ID) }); err != nil {
			return err
		}
	}
	for _, n := range o.networks {
		if err := removeNetwork(ctx, r.cfg, e, n); err != nil {
			return err
		}
	}
	for _, v := range vols {
		if err := retry("removal of volume "+v.Name, func(ctx context.Context) error { return e.RemoveVolume(ctx, v.Name) }); err != nil {
			return err
		}
	}
	return nil
}

// Containers lists and removes containers of this engine's node; *docker.Client implements it. Engines without
// it leave the containers of jobs behind.
type Containers interface {
	Containers(ctx context.Context, namespace string) ([]docker.Container, error)
	RemoveContainer(ctx context.Context, id string) error
}

// KindContainer is the kind of container removals in plans.
const KindContainer = "container"

// jobLeftovers returns the stopped containers of the stack's job services, and those of services that no longer
// exist: Swarm does not remove the containers of a job's tasks with the service (moby/moby#44312), and they keep
// the stack's volumes in use.
func jobLeftovers(ctx context.Context, e Engine, namespace string, services []swarm.Service) ([]docker.Container, error) {
	cs, ok := e.(Containers)
	if !ok {
		return nil, nil
	}
	list, err := cs.Containers(ctx, namespace)
	if err != nil {
		return nil, err
	}
	job, live := map[string]bool{}, map[string]bool{}
	for _, s := range services {
		live[s.ID] = true
		job[s.ID] = s.Spec.Mode.ReplicatedJob != nil || s.Spec.Mode.GlobalJob != nil
	}
	var out []docker.Container
	for _, c := range list {
		if c.State == "running" || c.State == "restarting" || c.State == "removing" || c.ServiceID == "" {
			continue
		}
		if job[c.ServiceID] || !live[c.ServiceID] {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
