package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/ziti-bootstrap/ziti-bootstrap/app"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/stack"
)

func newStatusCommand(g *globals) *cobra.Command {
	var withStacks bool
	o := &stackOptions{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Check that every configured system is reachable and show what answered; --stacks: the Swarm stacks' services",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !withStacks {
				return runSteps(cmd.Context(), g, steps.PlanOnly, func(name string) bool { return strings.HasSuffix(name, "/reachable") })
			}
			sc, err := g.stackConfig(o, nil)
			if err != nil {
				return err
			}
			var namespaces []string
			for _, s := range stacks.All {
				namespaces = append(namespaces, stacks.DefaultNames(o.prefix)[s])
			}
			return execSteps(cmd.Context(), g, steps.PlanOnly, stackSteps(sc, o, nil, func(cfg stack.Config) []steps.Step {
				return []steps.Step{stack.StatusStep(func() stack.StatusEngine { return cfg.Engine() }, app.DockerReachable, namespaces...)}
			}))
		},
	}
	cmd.Flags().BoolVar(&withStacks, "stacks", false, "show each stack's services instead: tasks running/desired, image, last task error")
	cmd.Flags().StringVar(&o.prefix, "prefix", "", "prefix of the stack names (as given to up)")
	return cmd
}
