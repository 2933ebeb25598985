package main

import (
	"github.com/spf13/cobra"

	"github.com/ziti-bootstrap/ziti-bootstrap/app/deploy"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/devenv"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/render"
)

// newRenderCommand is `ziti-bootstrap render`: the stacks as plain files for docker stack deploy and compose.
func newRenderCommand(g *globals) *cobra.Command {
	o, dev, r := &deploy.StackOptions{}, &deploy.DevOptions{}, &deploy.RenderOptions{}
	cmd := &cobra.Command{
		Use:   "render --out DIR [--stack|--compose]",
		Short: "Write the stacks as plain files: stack files for docker stack deploy, a compose project for one engine",
		Long: `Writes into DIR, from the stack files embedded in ziti-bootstrap and the configuration (the same variables and
defaults as up; --dev: the same generated secrets), files that run without ziti-bootstrap:

  DIR/stack/    spire.yml, keycloak.yml, openziti.yml with their secrets and configs as files, for
                docker stack deploy -c (objects named and labelled as up names them)
  DIR/compose/  compose.yml, one project for one Docker Engine without Swarm (needs --dev: the SPIRE agent's
                node certificate is generated into the dev state)
  DIR/README.md the order to deploy them in and what to wait for

Without --stack or --compose both are written. The files are generated: never edit them, render again. The
same definitions and configuration give byte-identical files. DIR is replaced whole (it must be new, empty, or
a previous render); it holds secrets and is made 0700. SPIRE_NODE_CA, unless set, is read from the Swarm for the
stack files, as up reads it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return deploy.RenderTo(cmd.Context(), g.cli(), o, dev, r) },
	}
	f := cmd.Flags()
	f.StringVar(&r.Out, "out", "", "directory to write (new, empty, or a previous render: replaced whole)")
	f.BoolVar(&r.Stack, "stack", false, "write the stack files for docker stack deploy (default: both)")
	f.BoolVar(&r.Compose, "compose", false, "write the compose project (default: both; needs --dev)")
	f.StringVar(&r.Project, "project", render.DefaultProject, "compose project name (the SPIRE entries select its containers by it)")
	f.StringVar(&r.Host, "publish-address", "127.0.0.1", "address of this machine the compose project publishes its ports on")
	f.StringVar(&o.Prefix, "prefix", "", "prefix of the stack names (stacks are <prefix>spire, <prefix>keycloak, <prefix>openziti)")
	f.StringArrayVar(&o.Vars, "var", nil, "set a stack variable, NAME=VALUE (repeatable; the same as --set)")
	f.BoolVar(&o.ExternalKeycloak, "external-keycloak", false, "Keycloak runs elsewhere (KEYCLOAK_URL): leave its stack out")
	f.StringSliceVar(&r.Without, "without", nil, "leave these services out (backup is left out unless BACKUP_SCHEDULE is set)")
	f.BoolVar(&dev.Enabled, "dev", false, "local development: the secrets and PKI of up --dev (generated once into --state-dir)")
	f.StringVar(&dev.StateDir, "state-dir", "", "directory of --dev's generated settings (default "+devenv.DefaultDir()+")")
	return cmd
}
