package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/ziti-bootstrap/ziti-bootstrap/app/command"
	"github.com/ziti-bootstrap/ziti-bootstrap/app/services"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
)

func newWorkloadCommand(g *globals) *cobra.Command {
	return newServiceCommand(g, &cobra.Command{
		Use:   "workload",
		Short: "Run a small workload that logs in to OpenZiti with its SPIFFE X509-SVID, again at every rotation",
		Long: `Run until stopped: fetch this process's X509-SVID from the SPIRE agent's Workload API (SPIFFE_ENDPOINT_SOCKET),
enrol in OpenZiti through the verified SPIRE CA if no identity has its SPIFFE ID yet, log in with the SVID
(method=cert, a fresh TLS connection), read the identity, log out; again for every new SVID the agent rotates in.

Each enrolment, login and failure is one JSON line on stdout (see internal/workload): event, spiffeId, serial,
identityId, identityName, externalId, roleAttributes, time. Failed attempts are retried with backoff until
ZB_WAIT_TIMEOUT; after it the command exits with code 3.

Variables: SPIFFE_ENDPOINT_SOCKET, ZITI_CTRL_URL, ZITI_CA_FILE (or ZITI_CA_TOFU=true), ZB_WORKLOAD_SPIFFE_ID,
ZB_WORKLOAD_NAME, ZB_WORKLOAD_LISTEN (its /healthz, for "workload healthcheck"), ZB_WAIT_TIMEOUT.`,
	}, config.LoadWorkload, services.Workload,
		"Exit 0 if the workload in this container has logged in with its current X509-SVID (for a HEALTHCHECK)",
		config.LoadWorkloadListen, func(ctx context.Context, c *command.CLI, listen string) error {
			return services.Healthz(ctx, c.Stdout, listen, "workload")
		})
}

// newServiceCommand completes cmd, the command of a long-running service of the tool: it loads its section of
// the configuration (load) and runs run until stopped, exiting with the code services.ExitFor gives run's error.
// Its healthcheck subcommand (healthShort its help) loads its own section (healthLoad) and runs health, in the
// service's container.
func newServiceCommand[T, H any](g *globals, cmd *cobra.Command, load func(config.Sources) (T, error),
	run func(context.Context, *command.CLI, T) error, healthShort string, healthLoad func(config.Sources) (H, error),
	health func(context.Context, *command.CLI, H) error) *cobra.Command {
	cmd.Args = cobra.NoArgs
	cmd.RunE = loaded(g, load, func(ctx context.Context, c *command.CLI, cfg T) error {
		return services.ExitFor(run(ctx, c, cfg))
	})
	cmd.AddCommand(&cobra.Command{Use: "healthcheck", Short: healthShort, Args: cobra.NoArgs, RunE: loaded(g, healthLoad, health)})
	return cmd
}

// loaded is a RunE that loads a section of the configuration (load) and runs run with it.
func loaded[T any](g *globals, load func(config.Sources) (T, error), run func(context.Context, *command.CLI, T) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		c := g.cli()
		cfg, err := load(c.Sources())
		if err != nil {
			return err
		}
		return run(cmd.Context(), c, cfg)
	}
}
