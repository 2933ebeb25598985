package main

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

	"github.com/spf13/cobra"

	"github.com/ziti-bootstrap/ziti-bootstrap/app"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/devenv"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/stack"
)

// newDownCommand is `ziti-bootstrap down`: remove the stacks OpenZiti → Keycloak → SPIRE, as docker stack rm
// would; volumes are kept unless --volumes.
func newDownCommand(g *globals) *cobra.Command {
	o := &stackOptions{}
	var volumes bool
	dev, comp := &devOptions{}, &composeOptions{}
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Remove the OpenZiti, Keycloak and SPIRE stacks (services, secrets, configs, networks; volumes with --volumes)",
		Long: `Removes, in reverse order, every service, secret, config and network labelled with a stack's
com.docker.stack.namespace, and nothing else; also the stopped containers Swarm leaves behind for the tasks of a
job such as bootstrap (moby/moby#44312), which would keep the volumes in use. Volumes hold the stacks' data
(SPIRE's datastore, Keycloak's database, OpenZiti's PKI and database) and are kept unless --volumes.

Volumes and plain containers (such as the per-node SPIRE agents) are local to each node, and a manager's API sees
only its own. On a Swarm of several nodes, down therefore runs a global job of the tool's image (ZB_IMAGE) with
the node's Docker socket, which removes on every ready node the containers labelled with the stacks' namespaces
and, with --volumes, their volumes, then removes the job. A node that is down keeps its objects (down names it):
run down again once it is back. On a single node, down removes them through the engine at DOCKER_HOST.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if comp.enabled {
				return downCompose(cmd.Context(), g, dev, comp, volumes)
			}
			names, err := o.selected()
			if err != nil {
				return err
			}
			sc, err := g.stackConfig(o, nil)
			if err != nil {
				return err
			}
			ns := stacks.DefaultNames(o.prefix)
			var pairs [][2]string
			var namespaces []string
			for _, n := range names {
				pairs = append(pairs, [2]string{n, ns[n]})
				namespaces = append(namespaces, ns[n])
			}
			mode := steps.Apply
			if o.dryRun {
				mode = steps.PlanOnly
			}
			return underStackLock(cmd.Context(), g, sc, mode, func(ctx context.Context) error {
				defer startLiveView(g, "down")()
				return execSteps(ctx, g, mode, stackSteps(sc, o, nil, func(cfg stack.Config) []steps.Step {
					// volumes=false: the stack steps would remove this node's volumes while a plain container of
					// the stacks (a per-node SPIRE agent) still holds one; nodesStep removes the containers first,
					// then the volumes, on every node
					// then the networks: the per-node agents are plain containers on the SPIRE stack's overlay
					remove := stack.RemoveStepsKeepingNetworks(cfg, app.DockerReachable, false, pairs)
					nodes := &nodesStep{engine: func() nodeEngine { return cfg.Engine().(nodeEngine) }, image: sc.Vars["ZB_IMAGE"],
						namespaces: namespaces, volumes: volumes, timeout: o.timeout, log: g.log, deps: []string{app.DockerReachable}}
					if len(remove) > 0 {
						nodes.deps = []string{remove[len(remove)-1].Name()}
					}
					return append(append(remove, nodes), stack.RemoveNetworkSteps(cfg, nodes.Name(), pairs)...)
				}))
			})
		},
	}
	o.bind(cmd)
	cmd.Flags().BoolVar(&volumes, "volumes", false, "also remove the stacks' volumes (their data) on every node")
	comp.bind(cmd.Flags())
	cmd.Flags().BoolVar(&dev.enabled, "dev", false, "with --compose: the project of up --compose --dev (in --state-dir)")
	cmd.Flags().StringVar(&dev.stateDir, "state-dir", "", "with --compose: the --state-dir of up --compose --dev (default "+devenv.DefaultDir()+")")
	cmd.AddCommand(newCleanNodeCommand(g))
	return cmd
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

// nodesStepName is the step that removes the stacks' objects local to each node.
const nodesStepName = "down/nodes"

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

func (s *nodesStep) Name() string        { return nodesStepName }
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

// newCleanNodeCommand is `ziti-bootstrap down clean-node`, run by down on every node as a global job: it
// removes this node's containers and (with --volumes) volumes labelled with the named stack namespaces, through
// the node's Docker socket, and prints one line per object removed.
func newCleanNodeCommand(g *globals) *cobra.Command {
	var namespaces []string
	var volumes bool
	var timeout time.Duration
	var reap string
	cmd := &cobra.Command{
		Use:    "clean-node",
		Short:  "Remove this node's containers and volumes of the named stacks (run by down on every node)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := docker.New("unix://"+docker.Socket, nil)
			if err != nil {
				return err
			}
			defer c.Close()
			if reap != "" {
				return c.RemoveWhenExited(cmd.Context(), reap, docker.ReaperGrace)
			}
			if len(namespaces) == 0 {
				return errors.New("--namespace: name at least one stack namespace")
			}
			done, err := c.CleanNode(cmd.Context(), namespaces, volumes, timeout)
			for _, n := range done.Containers {
				fmt.Fprintln(g.stdout, "removed container", n)
			}
			for _, n := range done.Volumes {
				fmt.Fprintln(g.stdout, "removed volume", n)
			}
			// this job's container outlives the job (moby/moby#44312): a reaper removes it once it has exited
			self, herr := os.Hostname() // a task's container is named so (its short ID) unless the spec says otherwise
			if herr == nil {
				herr = c.StartReaper(cmd.Context(), self, []string{"down", "clean-node", "--reap", self})
			}
			// exit 0 whatever happened: Swarm would run a failed task of the global job again and again
			if err := errors.Join(err, herr); err != nil {
				fmt.Fprintln(g.stdout, cleanNodeError, strings.ReplaceAll(err.Error(), "\n", "; "))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&reap, "reap", "", "remove this container once it has exited (run by clean-node in a container of its own)")
	f.StringArrayVar(&namespaces, "namespace", nil, "a stack namespace (com.docker.stack.namespace; repeatable)")
	f.BoolVar(&volumes, "volumes", false, "also remove the stacks' volumes on this node")
	f.DurationVar(&timeout, "timeout", 2*time.Minute, "how long to wait for volumes still in use")
	return cmd
}
