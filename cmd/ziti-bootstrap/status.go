package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

func newStatusCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Check that every configured system is reachable and show what answered",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSteps(cmd.Context(), g, steps.PlanOnly, func(name string) bool { return strings.HasSuffix(name, "/reachable") })
		},
	}
}
