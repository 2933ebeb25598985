package stack_test

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/stack"
)

// A port bound on the node by a process outside the Swarm (here this test) after the stack was planned: Keycloak's
// tasks fail to start with "address already in use", and the deploy stops by the fail-fast rule, naming the
// service, the cause, the process and the fix, although its timeout is 30 minutes.
func TestDeployFailFastPortInUseE2E(t *testing.T) {
	e := newE2E(t)
	for k, v := range images(t, "postgres", "keycloak") {
		e.vars[k] = v
	}
	l, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
	e.vars["KEYCLOAK_PUBLISHED_PORT"] = port
	e.vars["KEYCLOAK_DB_CONSTRAINT"] = "node.role == manager"
	e.keycloakStack() // Keycloak never starts here: its port is taken

	sts := e.load(stacks.Keycloak)
	t0 := time.Now()
	rep := e.run(steps.Apply, func(cfg stack.Config) []steps.Step {
		cfg.Timeout = 30 * time.Minute
		return stack.Steps(cfg, "", sts...)
	})
	t.Logf("deploy ended after %s", time.Since(t0).Round(time.Second))
	if rep.Converged() {
		t.Fatal("the deploy converged although Keycloak's port is taken")
	}
	msg := rep.Steps[0].Error
	host, _ := os.Hostname()
	for _, want := range []string{"service " + e.names[stacks.Keycloak] + "_keycloak cannot start", "port already in use", "on node " + host,
		"3 task(s) in a row", "address already in use", "port " + port + " is taken", fmt.Sprintf("pid %d", os.Getpid()), "KEYCLOAK_PUBLISHED_PORT"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error does not say %q: %s", want, msg)
		}
	}
	if strings.Contains(msg, "did not converge in") {
		t.Errorf("the deploy waited out its timeout: %s", msg)
	}
}
