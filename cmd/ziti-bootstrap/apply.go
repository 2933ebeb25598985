package main

import (
	"github.com/spf13/cobra"
)

// applyOptions are the apply command's flags.
type applyOptions struct {
	policies string // reconcile only this policy file
}

func newApplyCommand(g *globals) *cobra.Command {
	var o applyOptions
	cmd := &cobra.Command{
		Use:   "apply",
		Short: "Converge every system to the configuration; a converged system sees no writes",
		Long: `Converge every system to the configuration; a converged system sees no writes.

With --policies FILE only the OpenZiti policy file is reconciled (and the controller checked first): the quick
path to tighten a segment after a security event. Only the objects that differ are written.

Two applies never write at the same time: apply first takes the apply lock, a Swarm config named
ziti-bootstrap.lock (ZB_DOCKER=true; it holds across the Swarm's nodes) or a flock on ZB_LOCK_FILE (this host
only). While another run holds it, apply waits up to ZB_LOCK_WAIT, then exits with code 5 naming the holder
(ZB_LOCK_WAIT=0: at once). A lock left by a run that died expires after ZB_LOCK_TTL, or at once when that run
was on this host.

A dependency that goes away while a step uses it is waited for like at start (ZB_WAIT_TIMEOUT): when it comes
back the step is planned and applied again; when it does not, apply exits with code 3 naming it and its last
error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return g.cli().Apply(cmd.Context(), o.policies) },
	}
	cmd.Flags().StringVar(&o.policies, "policies", "", "reconcile only this OpenZiti policy file (see examples/policies)")
	return cmd
}
