package main

import (
	"github.com/spf13/cobra"

	"github.com/ziti-bootstrap/ziti-bootstrap/app/up"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/devenv"
)

// newUpCommand is `ziti-bootstrap up`: deploy the stacks SPIRE → Keycloak → OpenZiti to Docker Swarm, each once
// the previous one is healthy, and report what the bootstrap job did.
func newUpCommand(g *globals) *cobra.Command {
	o := &up.Options{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Deploy the SPIRE, Keycloak and OpenZiti stacks to Docker Swarm, in order, each gated on the previous one's health",
		Long: `Deploys the stacks embedded in ziti-bootstrap (see stacks/) through the Docker Engine API, as docker stack
deploy would: networks, secrets, configs, then services, all labelled com.docker.stack.namespace so that
docker stack ls/ps/rm see them. A stack that matches its file is not touched. Every stack file is checked
before anything is written. After each stack, up waits until every task runs and is healthy; the OpenZiti
stack's one-shot bootstrap job (ziti-bootstrap's own image, running apply inside the Swarm) must have run to
completion, and its report is shown. The job runs again when its spec changes (image, configuration, secrets)
or with --rerun-bootstrap.

The stack variables come from the configuration (--set, the environment, --env-file; see .env.example).
With --dev, up brings the stacks up on a local single-node Swarm with built-in development settings: the
passwords, the SPIRE upstream root and the SPIRE agent certificate are generated once into --state-dir (mode
0700, files 0600) and reused on every run, and without IPVS in the kernel the services use DNS round robin and
ports published on the node. Anything set explicitly takes precedence.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return up.Run(cmd.Context(), g.cli(), o) },
	}
	o.StackOptions.Bind(cmd.Flags())
	f := cmd.Flags()
	f.BoolVar(&o.WithoutSnapshot, "upgrade-without-snapshot", false, "upgrade a server that migrates its data although no backup service (BACKUP_SCHEDULE) can take a snapshot first: a rollback then restores its previous version, not its data")
	f.StringSliceVar(&o.Without, "without", nil, "leave these services out (e.g. bootstrap, to run ziti-bootstrap from this machine instead; backup is left out unless BACKUP_SCHEDULE is set)")
	f.BoolVar(&o.Rerun, "rerun-bootstrap", false, "run the bootstrap job again although nothing it depends on changed")
	f.BoolVar(&o.Dev.Enabled, "dev", false, "local development: generate secrets and PKI once into --state-dir, pick dnsrr/host without IPVS")
	f.StringVar(&o.Dev.StateDir, "state-dir", "", "directory of --dev's generated settings (default "+devenv.DefaultDir()+")")
	o.Compose.Bind(f)
	return cmd
}
