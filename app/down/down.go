// Package down is `ziti-bootstrap down`: remove the stacks OpenZiti → Keycloak → SPIRE, as docker stack rm would,
// with the objects local to each node (containers, and volumes with --volumes), or the compose project of up
// --compose; and `down clean-node`, the job down runs on every node.
package down

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/app"
	"github.com/ziti-bootstrap/ziti-bootstrap/app/command"
	"github.com/ziti-bootstrap/ziti-bootstrap/app/deploy"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/stack"
)

// Options are down's flags.
type Options struct {
	deploy.StackOptions
	Volumes bool // also remove the stacks' volumes (their data) on every node
	Dev     deploy.DevOptions
	Compose deploy.ComposeOptions
}

// Run is down.
func Run(ctx context.Context, c *command.CLI, opts *Options) error {
	o, dev, comp := &opts.StackOptions, &opts.Dev, &opts.Compose
	if comp.Enabled {
		return Compose(ctx, c, dev, comp, opts.Volumes)
	}
	names, err := o.Selected()
	if err != nil {
		return err
	}
	sc, err := deploy.LoadStack(c, o, nil)
	if err != nil {
		return err
	}
	ns := stacks.DefaultNames(o.Prefix)
	var pairs [][2]string
	var namespaces []string
	for _, n := range names {
		pairs = append(pairs, [2]string{n, ns[n]})
		namespaces = append(namespaces, ns[n])
	}
	mode := steps.Apply
	if o.DryRun {
		mode = steps.PlanOnly
	}
	return deploy.UnderLock(ctx, c, sc, mode, func(ctx context.Context) error {
		defer c.LiveView("down")()
		return c.Exec(ctx, mode, deploy.Steps(sc, o, nil, nil, func(cfg stack.Config) []steps.Step {
			// volumes=false: the stack steps would remove this node's volumes while a plain container of
			// the stacks (a per-node SPIRE agent) still holds one; nodesStep removes the containers first,
			// then the volumes, on every node
			// then the networks: the per-node agents are plain containers on the SPIRE stack's overlay
			remove := stack.RemoveStepsKeepingNetworks(cfg, app.DockerReachable, false, pairs)
			nodes := &nodesStep{engine: func() nodeEngine { return cfg.Engine().(nodeEngine) }, image: sc.Vars["ZB_IMAGE"],
				namespaces: namespaces, volumes: opts.Volumes, timeout: o.Timeout, log: c.Log, deps: []string{app.DockerReachable}}
			if len(remove) > 0 {
				nodes.deps = []string{remove[len(remove)-1].Name()}
			}
			return append(append(remove, nodes), stack.RemoveNetworkSteps(cfg, nodes.Name(), pairs)...)
		}))
	})
}

// nodeEngine is what nodesStep needs of the Docker Engine.
type nodeEngine interface {
	Nodes(ctx context.Context) ([]docker.Node, error)
	Containers(ctx context.Context, namespace string) ([]docker.Container, error)
	Volumes(ctx context.Context, namespace string) ([]docker.Volume, error)
	CleanNode(ctx context.Context, namespaces []string, volumes bool, deadline time.Duration) (docker.NodeCleanup, error)
	RunOnEveryNode(ctx context.Context, job docker.NodeJob) ([]docker.NodeResult, error)
}

var _ nodeEngine = (*docker.Client)(nil)

// NodesStepName is the step that removes the stacks' objects local to each node.
const NodesStepName = "down/nodes"

// KindNodeObjects is a planned change on another node: its containers and volumes of the stacks, which only a
// job on that node can list.
const KindNodeObjects = "node-objects"

// nodesStep removes, on every node, the containers labelled with the stacks' namespaces and, with volumes, the
// volumes so labelled. On a single node it lists and removes them through the engine; on several it runs
// `ziti-bootstrap down clean-node` as a global job of image (docker.RunOnEveryNode).
type nodesStep struct {
	engine     func() nodeEngine
	image      string
	namespaces []string
	volumes    bool
	timeout    time.Duration
	log        *slog.Logger
	deps       []string
}

func (s *nodesStep) Name() string        { return NodesStepName }
func (s *nodesStep) DependsOn() []string { return s.deps }

func (s *nodesStep) Plan(ctx context.Context) (*steps.Plan, error) {
	e := s.engine()
	nodes, err := e.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	what := "containers"
	if s.volumes {
		what += " and volumes"
	}
	reason := fmt.Sprintf("%s of stacks %s are local to each node", what, strings.Join(s.namespaces, ", "))
	if len(nodes) <= 1 {
		return s.planLocal(ctx, e)
	}
	var changes []steps.Change
	var down []string
	for _, n := range nodes {
		if !n.Ready {
			down = append(down, n.Hostname)
			continue
		}
		changes = append(changes, steps.Change{Action: steps.Delete, Kind: KindNodeObjects, Key: n.Hostname,
			Reason: reason + "; listed and removed there by a global job of " + s.image})
	}
	p := steps.NewPlan(changes, func(ctx context.Context) error { return s.applyEveryNode(ctx, e) })
	if len(down) > 0 {
		p.Note("node(s) %s are not ready: their %s are left; run down again once they are back", strings.Join(down, ", "), what)
	}
	return p, nil
}

// planLocal lists this node's objects of the stacks: the plan of a single-node Swarm is exact, and empty once
// they are gone.
func (s *nodesStep) planLocal(ctx context.Context, e nodeEngine) (*steps.Plan, error) {
	var changes []steps.Change
	for _, ns := range s.namespaces {
		cs, err := e.Containers(ctx, ns)
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			changes = append(changes, steps.Change{Action: steps.Delete, Kind: stack.KindContainer, Key: c.Name, Reason: "stack " + ns + " removed"})
		}
		if !s.volumes {
			continue
		}
		vs, err := e.Volumes(ctx, ns)
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			changes = append(changes, steps.Change{Action: steps.Delete, Kind: stack.KindVolume, Key: v.Name, Reason: "stack " + ns + " removed"})
		}
	}
	p := steps.NewPlan(changes, func(ctx context.Context) error {
		_, err := e.CleanNode(ctx, s.namespaces, s.volumes, s.timeout)
		return err
	})
	if !s.volumes {
		p.Note("volumes of stacks %s are kept (use --volumes to remove them)", strings.Join(s.namespaces, ", "))
	}
	return p, nil
}

func (s *nodesStep) applyEveryNode(ctx context.Context, e nodeEngine) error {
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	res, err := e.RunOnEveryNode(ctx, docker.NodeJob{Name: "ziti-bootstrap-down-" + hex.EncodeToString(suffix), Purpose: "down",
		Image: s.image, Args: cleanNodeArgs(s.namespaces, s.volumes, s.timeout), Timeout: s.timeout})
	if err != nil {
		return fmt.Errorf("clean every node with a global job of %s (ZB_IMAGE; it must be on every node): %w", s.image, err)
	}
	var errs []error
	for _, r := range res {
		s.log.Info("node cleaned", "node", r.Node, "state", r.State, "output", r.Output)
		if r.Failed() || strings.Contains("\n"+r.Output, "\n"+cleanNodeError) {
			errs = append(errs, fmt.Errorf("node %s: clean-node %s %s: %s", r.Node, r.State, r.Err, r.Output))
		}
	}
	return errors.Join(errs...)
}

// cleanNodeError starts the lines in which clean-node reports a failure (it exits 0: see RunOnEveryNode).
const cleanNodeError = "error:"

// cleanNodeArgs is the command line of the node job (the image's entrypoint is ziti-bootstrap).
func cleanNodeArgs(namespaces []string, volumes bool, timeout time.Duration) []string {
	args := []string{"down", "clean-node", "--timeout", timeout.String()}
	for _, ns := range namespaces {
		args = append(args, "--namespace", ns)
	}
	if volumes {
		args = append(args, "--volumes")
	}
	return args
}

// CleanNodeOptions are the flags of down clean-node.
type CleanNodeOptions struct {
	Namespaces []string
	Volumes    bool
	Timeout    time.Duration
	Reap       string // remove this container once it has exited
}

// CleanNode is `down clean-node`: it removes this node's containers and (with Volumes) volumes labelled with the
// stack namespaces, through the node's Docker socket, and prints one line per object removed.
func CleanNode(ctx context.Context, c *command.CLI, o *CleanNodeOptions) error {
	d, err := docker.New("unix://"+docker.Socket, nil)
	if err != nil {
		return err
	}
	defer d.Close()
	if o.Reap != "" {
		return d.RemoveWhenExited(ctx, o.Reap, docker.ReaperGrace)
	}
	if len(o.Namespaces) == 0 {
		return errors.New("--namespace: name at least one stack namespace")
	}
	done, err := d.CleanNode(ctx, o.Namespaces, o.Volumes, o.Timeout)
	for _, n := range done.Containers {
		fmt.Fprintln(c.Stdout, "removed container", n)
	}
	for _, n := range done.Volumes {
		fmt.Fprintln(c.Stdout, "removed volume", n)
	}
	// this job's container outlives the job (moby/moby#44312): a reaper removes it once it has exited
	self, herr := os.Hostname() // a task's container is named so (its short ID) unless the spec says otherwise
	if herr == nil {
		herr = d.StartReaper(ctx, self, []string{"down", "clean-node", "--reap", self})
	}
	// exit 0 whatever happened: Swarm would run a failed task of the global job again and again
	if err := errors.Join(err, herr); err != nil {
		fmt.Fprintln(c.Stdout, cleanNodeError, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return nil
}
