package backups

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/ziti-bootstrap/ziti-bootstrap/app"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
)

// BindRestoreFlags defines the flags of restore, which set r.
func BindRestoreFlags(f *pflag.FlagSet, r *app.RestoreOptions) {
	f.BoolVar(&r.DryRun, "dry-run", false, "download and verify the set and show what would be restored; change nothing")
	f.BoolVar(&r.Yes, "yes", false, "confirm that the servers' current state is to be replaced")
	f.BoolVar(&r.AllowUnauthenticated, "allow-unauthenticated", false, "restore a set although it is not authenticated (no encryption key configured): anyone who can write to the bucket could have written it")
	f.BoolVar(&r.Stopped, "services-stopped", false, "the servers are stopped (and will be started) by you")
	f.StringVar(&r.ZitiStop, "ziti-stop", "", "shell command that stops the Ziti controller and returns once it has exited")
	f.StringVar(&r.ZitiStart, "ziti-start", "", "shell command that starts the Ziti controller")
	f.StringVar(&r.SpireStop, "spire-stop", "", "shell command that stops the SPIRE server and returns once it has exited")
	f.StringVar(&r.SpireStart, "spire-start", "", "shell command that starts the SPIRE server")
	f.StringVar(&r.KeycloakStop, "keycloak-stop", "", "shell command that stops Keycloak (its database stays up)")
	f.StringVar(&r.KeycloakStart, "keycloak-start", "", "shell command that starts Keycloak")
	f.BoolVar(&r.Swarm, "swarm", false, "the servers are Swarm services: scale each to 0 and back through the Docker Engine (DOCKER_HOST)")
	f.StringVar(&r.StackPrefix, "stack-prefix", "", "with --swarm: prefix of the stack names, as given to up --prefix (default: the stack names in $ZB_STACK_SPIRE, $ZB_STACK_KEYCLOAK, $ZB_STACK_OPENZITI when set, else none)")
	for _, s := range config.BackupSources {
		sk := app.SwarmServices[s]
		r.Services[s] = f.String(s+"-service", "", fmt.Sprintf("with --swarm: the Swarm service of the %s server (default <stack-prefix>%s_%s)", s, sk[0], sk[1]))
	}
	f.DurationVar(&r.ReadyTimeout, "ready-timeout", 3*time.Minute, "how long to wait for each server to answer after its start")
}
