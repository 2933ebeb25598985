package main

import (
	"github.com/spf13/cobra"

	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

func newPlanCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "plan",
		Short: "Show, per step, what apply would create, update or delete (writes nothing)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSteps(cmd.Context(), g, steps.PlanOnly, nil)
		},
	}
}
