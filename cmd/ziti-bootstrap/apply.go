package main

import (
	"github.com/spf13/cobra"

	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

func newApplyCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "apply",
		Short: "Converge every system to the configuration; a converged system sees no writes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSteps(cmd.Context(), g, steps.Apply, nil)
		},
	}
}
