package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/app"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/stack"
)

// newDownCommand is `ziti-bootstrap down`: remove the stacks OpenZiti → Keycloak → SPIRE, as docker stack rm
// would; volumes are kept unless --volumes.
func newDownCommand(g *globals) *cobra.Command {
	o := &stackOptions{}
	var volumes bool
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Remove the OpenZiti, Keycloak and SPIRE stacks (services, secrets, configs, networks; volumes with --volumes)",
		Long: `Removes, in reverse order, every service, secret, config and network labelled with a stack's
com.docker.stack.namespace, and nothing else; also the stopped containers Swarm leaves behind for the tasks of a
job such as bootstrap (moby/moby#44312), which would keep the volumes in use. Volumes hold the stacks' data
(SPIRE's datastore, Keycloak's database, OpenZiti's PKI and database) and are kept unless --volumes; Swarm
volumes are local to each node, and only those of the node whose engine is at DOCKER_HOST are removed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
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
			for _, n := range names {
				pairs = append(pairs, [2]string{n, ns[n]})
			}
			mode := steps.Apply
			if o.dryRun {
				mode = steps.PlanOnly
			}
			return underStackLock(cmd.Context(), g, sc, mode, func(ctx context.Context) error {
				return execSteps(ctx, g, mode, stackSteps(sc, o, nil, func(cfg stack.Config) []steps.Step {
					return stack.RemoveSteps(cfg, app.DockerReachable, volumes, pairs)
				}))
			})
		},
	}
	o.bind(cmd)
	cmd.Flags().BoolVar(&volumes, "volumes", false, "also remove the stacks' volumes (their data) on this node")
	return cmd
}
