package stack_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/stack"
)

// A server whose tasks exit (here an image without Keycloak in it, named as the Keycloak image): the deploy waits
// out its timeout, and its error carries the last lines the failed task printed, which say why; a task's exit code
// alone does not.
func TestNotConvergedSaysWhatTheFailedTaskPrintedE2E(t *testing.T) {
	e := newE2E(t)
	images(t, "base")
	e.vars["KEYCLOAK_IMAGE"] = testbed.SleepImage
	e.keycloakStack()
	e.without = []string{"keycloak-db"} // Keycloak's task fails before it would look for its database

	sts := e.load(stacks.Keycloak)
	rep := e.run(steps.Apply, func(cfg stack.Config) []steps.Step {
		cfg.Timeout = 20 * time.Second // the first task fails at once; its restart waits 10 s
		return stack.Steps(cfg, "", sts...)
	})
	if rep.Converged() {
		t.Fatal("the deploy converged although Keycloak's image has no Keycloak")
	}
	msg := rep.Steps[0].Error
	for _, want := range []string{"did not converge", e.names[stacks.Keycloak] + "_keycloak", "output of task", "/opt/keycloak/bin/kc.sh: No such file or directory"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error does not say %q: %s", want, msg)
		}
	}
}
