package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/ziti-bootstrap/ziti-bootstrap/app/down"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/devenv"
)

// newDownCommand is `ziti-bootstrap down`: remove the stacks OpenZiti → Keycloak → SPIRE, as docker stack rm
// would; volumes are kept unless --volumes.
func newDownCommand(g *globals) *cobra.Command {
	o := &down.Options{}
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
		RunE: func(cmd *cobra.Command, _ []string) error { return down.Run(cmd.Context(), g.cli(), o) },
	}
	o.StackOptions.Bind(cmd.Flags())
	f := cmd.Flags()
	f.BoolVar(&o.Volumes, "volumes", false, "also remove the stacks' volumes (their data) on every node")
	o.Compose.Bind(f)
	f.BoolVar(&o.Dev.Enabled, "dev", false, "with --compose: the project of up --compose --dev (in --state-dir)")
	f.StringVar(&o.Dev.StateDir, "state-dir", "", "with --compose: the --state-dir of up --compose --dev (default "+devenv.DefaultDir()+")")
	cmd.AddCommand(newCleanNodeCommand(g))
	return cmd
}

// newCleanNodeCommand is `ziti-bootstrap down clean-node`, run by down on every node as a global job: it
// removes this node's containers and (with --volumes) volumes labelled with the named stack namespaces, through
// the node's Docker socket, and prints one line per object removed.
func newCleanNodeCommand(g *globals) *cobra.Command {
	o := &down.CleanNodeOptions{}
	cmd := &cobra.Command{
		Use:    "clean-node",
		Short:  "Remove this node's containers and volumes of the named stacks (run by down on every node)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE:   func(cmd *cobra.Command, _ []string) error { return down.CleanNode(cmd.Context(), g.cli(), o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.Reap, "reap", "", "remove this container once it has exited (run by clean-node in a container of its own)")
	f.StringArrayVar(&o.Namespaces, "namespace", nil, "a stack namespace (com.docker.stack.namespace; repeatable)")
	f.BoolVar(&o.Volumes, "volumes", false, "also remove the stacks' volumes on this node")
	f.DurationVar(&o.Timeout, "timeout", 2*time.Minute, "how long to wait for volumes still in use")
	return cmd
}
