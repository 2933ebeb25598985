package deploy

import (
	"time"

	"github.com/spf13/pflag"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/render"
)

// Bind defines the flags of o, which up and down share.
func (o *StackOptions) Bind(f *pflag.FlagSet) {
	f.StringVar(&o.Prefix, "prefix", "", "prefix of the stack names (stacks are <prefix>spire, <prefix>keycloak, <prefix>openziti)")
	f.StringSliceVar(&o.Only, "stack", nil, "only these stacks (spire, keycloak, openziti; repeatable)")
	f.StringArrayVar(&o.Vars, "var", nil, "set a stack variable, NAME=VALUE (repeatable; the same as --set; see stacks/README.md)")
	f.BoolVar(&o.ExternalKeycloak, "external-keycloak", false, "Keycloak runs elsewhere (KEYCLOAK_URL): skip its stack")
	f.BoolVar(&o.DryRun, "dry-run", false, "show the plan (service spec differences included) and write nothing")
	f.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "how long to wait for each stack to converge")
}

// Bind defines the flags of c: those of up --compose and down --compose.
func (c *ComposeOptions) Bind(f *pflag.FlagSet) {
	f.BoolVar(&c.Enabled, "compose", false, "a compose project on this Docker Engine, without Swarm (with --dev; see render --compose)")
	f.StringVar(&c.Project, "project", render.DefaultProject, "with --compose: the compose project name")
	f.StringVar(&c.Dir, "compose-dir", "", "with --compose: where the project is rendered (default <state-dir>/compose-<project>)")
	f.StringVar(&c.Bin, "compose-bin", "docker-compose", "with --compose: the compose CLI")
}
