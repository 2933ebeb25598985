package main

import (
	"slices"

	"github.com/spf13/cobra"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
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
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := g.cli()
			rep, err := c.RunReport(cmd.Context(), steps.PlanOnly, c.PlanBuilder(nil))
			if err != nil {
				return err
			}
			if err := c.FinishReport(rep); err != nil {
				return err
			}
			if detailed && !rep.Converged() {
				return &exitError{exitcode.Pending, errPending}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&detailed, "detailed-exitcode", false, "exit 0 when converged, 2 when changes are pending (invalid configuration: 6)")
	return cmd
}

// pendingError is the "error" of a plan --detailed-exitcode with changes pending: not printed as an error.
type pendingError struct{}

func (pendingError) Error() string { return "changes pending" }

var errPending error = pendingError{}

// detailedExitcode maps the exit code of a run with the arguments args: with plan's --detailed-exitcode, code 2
// means "changes pending", so invalid configuration or usage (2 otherwise) becomes InvalidConfigDetailed.
func detailedExitcode(args []string, code int) int {
	if code != exitcode.InvalidConfig {
		return code
	}
	if slices.Contains(args, "--detailed-exitcode") || slices.Contains(args, "--detailed-exitcode=true") {
		return exitcode.InvalidConfigDetailed
	}
	return code
}
