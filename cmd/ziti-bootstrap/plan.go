package main

import (
	"github.com/spf13/cobra"
)

func newPlanCommand(g *globals) *cobra.Command {
	var detailed bool
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Show, per step, what apply would create, update or delete (writes nothing)",
		Long: `Show, per step, what apply would create, update or delete (writes nothing).

--detailed-exitcode (Terraform's convention, for a CI job that gates on drift): exit 0 when every step is
converged, 2 when changes are pending. Errors keep their codes (1 unexpected, 3 unreachable, 4 a step failed),
except invalid configuration or usage, which exits 6 instead of 2.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return g.cli().Plan(cmd.Context(), detailed) },
	}
	cmd.Flags().BoolVar(&detailed, "detailed-exitcode", false, "exit 0 when converged, 2 when changes are pending (invalid configuration: 6)")
	return cmd
}
