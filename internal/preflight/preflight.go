// Package preflight checks, before up writes anything, what would otherwise fail only once the stacks are
// deployed: the Swarm state, the node labels the stacks' placement needs, the published ports (free on the nodes
// that bind them, and the process holding one when it is this machine's), every image (on the node or pullable),
// and the disk space of the engine's data directory. It reads only, and reports every problem at once.
package preflight

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/docker/docker/api/types/swarm"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/porthold"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
)

// Engine is what the checks read from the Docker Engine (a Swarm manager); *docker.Client has it.
type Engine interface {
	Swarm(ctx context.Context) (docker.SwarmInfo, error)
	Nodes(ctx context.Context) ([]docker.Node, error)
	Services(ctx context.Context, namespace string) ([]swarm.Service, error)
	ImageID(ctx context.Context, ref string) (string, error)
	Pullable(ctx context.Context, ref string) error
}

var _ Engine = (*docker.Client)(nil)

// Input is what to check.
type Input struct {
	Stacks []*stacks.Stack
	// Provided are node labels up sets itself before it deploys (the state label): constraints on them are not
	// checked.
	Provided []string
	// Local reports that the engine runs on this machine: ports are checked in /proc, the disk with statfs.
	Local bool
	// MinFree is the free space the engine's data directory needs (volumes live there); 0 means 1 GiB.
	MinFree uint64
}

// Problem is one thing that would fail.
type Problem struct {
	What string // port 8080, image X, service Y, swarm, disk
	Msg  string // what is wrong and how to fix it
}

func (p Problem) String() string { return p.What + ": " + p.Msg }

// Error lists every problem preflight found.
type Error struct{ Problems []Problem }

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "preflight found %d problem(s); nothing was written:", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  - " + p.String())
	}
	return b.String()
}

// Check runs every check and returns an *Error listing the problems, nil when there are none, or another error
// when the engine could not be read.
func Check(ctx context.Context, e Engine, in Input) error {
	o, err := Observe(ctx, e)
	if err != nil {
		return err
	}
	return CheckObserved(ctx, e, o, in)
}

// Observed is what the checks read of the engine before they look at the stacks: its Swarm state, nodes and
// services. Observe reads it; up does while it loads the stack files.
type Observed struct {
	info  docker.SwarmInfo
	nodes []docker.Node
	live  []swarm.Service
}

// Swarm is the engine's Swarm state, as Observe read it.
func (o Observed) Swarm() docker.SwarmInfo { return o.info }

// Services are the services Observe read of the stack namespace (the label docker.NamespaceLabel), as the engine
// lists them with that filter (a docker.ServiceLister that reads nothing more).
func (o Observed) Services(_ context.Context, namespace string) ([]swarm.Service, error) {
	var out []swarm.Service
	for _, s := range o.live {
		if s.Spec.Labels[docker.NamespaceLabel] == namespace {
			out = append(out, s)
		}
	}
	return out, nil
}

// Observe reads the engine's Swarm state, nodes and services, at once. On an engine that is not a Swarm manager
// only the state is kept (the others fail there; CheckObserved says why).
func Observe(ctx context.Context, e Engine) (Observed, error) {
	var (
		o                         Observed
		infoErr, nodesErr, svcErr error
		wg                        sync.WaitGroup
	)
	wg.Go(func() { o.info, infoErr = e.Swarm(ctx) })
	wg.Go(func() { o.nodes, nodesErr = e.Nodes(ctx) })
	wg.Go(func() { o.live, svcErr = e.Services(ctx, "") })
	wg.Wait()
	switch {
	case infoErr != nil:
		return Observed{}, infoErr
	case o.info.NodeState != "active" || !o.info.Manager:
		return Observed{info: o.info}, nil
	}
	return o, cmp.Or(nodesErr, svcErr)
}

// CheckObserved runs every check on what Observe read, and reads the stacks' images (at once).
func CheckObserved(ctx context.Context, e Engine, o Observed, in Input) error {
	info, nodes, live := o.info, o.nodes, o.live
	if info.NodeState != "active" || !info.Manager {
		return &Error{Problems: []Problem{{What: "swarm", Msg: fmt.Sprintf("the engine is not an active Swarm manager (node state %q, manager %v): run `docker swarm init` or point DOCKER_HOST at a manager", info.NodeState, info.Manager)}}}
	}
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		imageErrs = map[string]error{}
	)
	for _, ref := range ImageRefs(in.Stacks) {
		wg.Go(func() {
			_, err := e.ImageID(ctx, ref)
			mu.Lock()
			imageErrs[ref] = err
			mu.Unlock()
		})
	}
	wg.Wait()
	var local *docker.Node
	for i := range nodes {
		if nodes[i].ID == info.NodeID {
			local = &nodes[i]
		}
	}
	var probs []Problem
	images := map[string][]string{} // image → services
	for _, st := range in.Stacks {
		for _, s := range st.Services {
			spec := s.Spec
			cs := constraints(spec)
			var fits []docker.Node
			for _, n := range nodes {
				if n.Ready && satisfies(n, cs, in.Provided) {
					fits = append(fits, n)
				}
			}
			if len(fits) == 0 {
				probs = append(probs, Problem{What: "service " + spec.Name, Msg: fmt.Sprintf("no ready node satisfies its placement %q: label a node (docker node update --label-add NAME=VALUE NODE) or change the constraint variable", cs)})
			}
			if c := spec.TaskTemplate.ContainerSpec; c != nil && c.Image != "" {
				images[c.Image] = append(images[c.Image], spec.Name)
			}
			if spec.EndpointSpec == nil {
				continue
			}
			for _, p := range spec.EndpointSpec.Ports {
				if p.PublishedPort == 0 {
					continue
				}
				probs = append(probs, checkPort(spec.Name, p, live, local, fits, in.Local)...)
			}
		}
	}
	refs := make([]string, 0, len(images))
	for ref := range images {
		refs = append(refs, ref)
	}
	sort.Strings(refs)
	for _, ref := range refs {
		err := imageErrs[ref]
		if err == nil {
			continue
		}
		if !docker.IsNotFound(err) {
			return err
		}
		if perr := e.Pullable(ctx, ref); perr != nil {
			probs = append(probs, Problem{What: "image " + ref, Msg: fmt.Sprintf("not on this node and cannot be pulled (%v); used by %s: build or load it (scripts/images.sh), or set the stack variable of that image", perr, strings.Join(images[ref], ", "))})
		}
	}
	if in.Local && info.RootDir != "" {
		min := in.MinFree
		if min == 0 {
			min = 1 << 30
		}
		var fs syscall.Statfs_t
		if err := syscall.Statfs(info.RootDir, &fs); err == nil {
			if free := fs.Bavail * uint64(fs.Bsize); free < min {
				probs = append(probs, Problem{What: "disk " + info.RootDir, Msg: fmt.Sprintf("%d MiB free, the volumes need at least %d MiB: free some space (docker system df shows what Docker holds)", free>>20, min>>20)})
			}
		}
	}
	if len(probs) > 0 {
		return &Error{Problems: probs}
	}
	return nil
}

// ImageRefs lists the images of the stacks' services, each once.
func ImageRefs(sts []*stacks.Stack) []string {
	var refs []string
	for _, st := range sts {
		for _, s := range st.Services {
			if c := s.Spec.TaskTemplate.ContainerSpec; c != nil && c.Image != "" && !slices.Contains(refs, c.Image) {
				refs = append(refs, c.Image)
			}
		}
	}
	return refs
}

// IsProblems reports whether err lists preflight problems.
func IsProblems(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

func checkPort(service string, p swarm.PortConfig, live []swarm.Service, local *docker.Node, fits []docker.Node, isLocal bool) []Problem {
	what := fmt.Sprintf("port %d/%s", p.PublishedPort, p.Protocol)
	for _, s := range live {
		if s.Spec.Name == service {
			continue
		}
		ports := slices.Clone(s.Endpoint.Ports)
		if s.Spec.EndpointSpec != nil {
			ports = append(ports, s.Spec.EndpointSpec.Ports...)
		}
		for _, q := range ports {
			if q.PublishedPort == p.PublishedPort && q.Protocol == p.Protocol {
				return []Problem{{What: what, Msg: fmt.Sprintf("wanted by %s, already published by service %s: publish one of them on another port (ZITI_CTRL_PUBLISHED_PORT, ZITI_ROUTER_PUBLISHED_PORT, KEYCLOAK_PUBLISHED_PORT)", service, s.Spec.Name)}}
			}
		}
	}
	for _, s := range live {
		if s.Spec.Name == service {
			return nil // ours, deployed before: its own task holds the port
		}
	}
	if !isLocal || local == nil || p.Protocol != swarm.PortConfigProtocolTCP {
		return nil
	}
	binds := p.PublishMode != swarm.PortConfigPublishModeHost // ingress: every node binds it
	for _, n := range fits {
		binds = binds || n.ID == local.ID
	}
	if !binds {
		return nil
	}
	holders, err := porthold.Listening(int(p.PublishedPort))
	if err != nil || len(holders) == 0 {
		return nil
	}
	var hs []string
	for _, h := range holders {
		hs = append(hs, h.String())
	}
	return []Problem{{What: what, Msg: fmt.Sprintf("wanted by %s, already in use on node %s by %s: stop it, or publish the service on another port (ZITI_CTRL_PUBLISHED_PORT, ZITI_ROUTER_PUBLISHED_PORT, KEYCLOAK_PUBLISHED_PORT; the README lists free ones)", service, local.Hostname, strings.Join(hs, ", "))}}
}

func constraints(spec swarm.ServiceSpec) []string {
	if p := spec.TaskTemplate.Placement; p != nil {
		return p.Constraints
	}
	return nil
}

// satisfies evaluates the placement constraints Swarm understands that name a node's labels, role, hostname, ID
// and OS; others (engine labels, platform architecture) are left to Swarm. Labels in provided are taken as set.
func satisfies(n docker.Node, cs []string, provided []string) bool {
	for _, c := range cs {
		op := "=="
		k, v, ok := strings.Cut(c, "==")
		if !ok {
			if k, v, ok = strings.Cut(c, "!="); !ok {
				continue
			}
			op = "!="
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		var have string
		var known bool
		switch {
		case strings.HasPrefix(k, "node.labels."):
			label := strings.TrimPrefix(k, "node.labels.")
			if slices.Contains(provided, label) {
				continue
			}
			have, known = n.Labels[label], true
		case k == "node.role":
			have, known = n.Role, true
		case k == "node.hostname":
			have, known = n.Hostname, true
		case k == "node.id":
			have, known = n.ID, true
		}
		if !known {
			continue
		}
		if (op == "==") != strings.EqualFold(have, v) {
			return false
		}
	}
	return true
}
