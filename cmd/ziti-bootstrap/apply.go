package main

import (
	"github.com/spf13/cobra"

	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

func newApplyCommand(g *globals) *cobra.Command {
	var policies string
	cmd := &cobra.Command{
		Use:   "apply",
		Short: "Converge every system to the configuration; a converged system sees no writes",
		Long: `Converge every system to the configuration; a converged system sees no writes.

With --policies FILE only the OpenZiti policy file is reconciled (and the controller checked first): the quick
path to tighten a segment after a security event. Only the objects that differ are written.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var only func(string) bool
			if policies != "" {
				g.set = append(g.set, "POLICIES_FILE="+policies)
				only = func(name string) bool { return name == "ziti/reachable" || name == "ziti/policies" }
			}
			return runSteps(cmd.Context(), g, steps.Apply, only)
		},
	}
	cmd.Flags().StringVar(&policies, "policies", "", "reconcile only this OpenZiti policy file (see examples/policies)")
	return cmd
}
