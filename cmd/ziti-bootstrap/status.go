package main

import (
	"github.com/spf13/cobra"

	"github.com/ziti-bootstrap/ziti-bootstrap/app/deploy"
	"github.com/ziti-bootstrap/ziti-bootstrap/app/inspect"
)

func newStatusCommand(g *globals) *cobra.Command {
	var withStacks bool
	o := &deploy.StackOptions{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Answer an operator: systems reachable? drift? last convergence? last and next backup? what runs on each node?",
		Long: `Answers an operator's questions in one report (-o json: the document of schema ziti-bootstrap.status/v1,
described in internal/status):

  systems      each system reachable, and what answered (version, trust domain, …)
  drift        a plan of every step (writes nothing): the changes apply would make; none when converged
  convergence  the converge service's last convergence, last pass and next one (with ZB_CONVERGE_URL)
  backups      the last snapshot set (age, size, verified by the listing or not), the last valid one, and the
               next scheduled run (with S3_ENDPOINT; BACKUP_SCHEDULE)
  swarm        per node: role, state, the SPIRE agent attested there, and the tasks of the stacks (--prefix)
               running on it (with ZB_DOCKER=true)

The exit code is that of the reachability checks (0: every system answered; 3: one did not): drift and failed
plans are reported, not failures of status. --stacks shows each stack's services instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if withStacks {
				return inspect.Stacks(cmd.Context(), g.cli(), o)
			}
			return inspect.Run(cmd.Context(), g.cli(), o.Prefix)
		},
	}
	cmd.Flags().BoolVar(&withStacks, "stacks", false, "show each stack's services instead: tasks running/desired, image, last task error")
	cmd.Flags().StringVar(&o.Prefix, "prefix", "", "prefix of the stack names (as given to up)")
	return cmd
}
