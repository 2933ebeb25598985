package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
)

// swarmObjects counts every service, secret, config and network of the Swarm (any stack's): what a run that
// writes nothing leaves as it was.
func swarmObjects(t *testing.T, d *devSystem) string {
	t.Helper()
	ctx := context.Background()
	svcs, err1 := d.c.Services(ctx, "")
	secs, err2 := d.c.Secrets(ctx, "")
	cfgs, err3 := d.c.Configs(ctx, "")
	nets, err4 := d.c.Networks(ctx, "")
	for _, err := range []error{err1, err2, err3, err4} {
		if err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	for _, s := range svcs {
		names = append(names, s.Spec.Name)
	}
	for _, s := range secs {
		names = append(names, s.Name)
	}
	for _, s := range cfgs {
		names = append(names, s.Name)
	}
	for _, s := range nets {
		names = append(names, s.Name)
	}
	return strings.Join(names, " ")
}

// listenAll takes port on every address of this machine, as a process outside the Swarm would.
func listenAll(t *testing.T, port string) {
	t.Helper()
	l, err := net.Listen("tcp", "0.0.0.0:"+port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
}

// A port taken before up: preflight stops it with exit code 2, naming the port and the process that holds it,
// before any write (no object of the Swarm changes; not even the lock is taken).
func TestUpPreflightTakenPortE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	// preflight stops up before its lock: no need to wait for other tests' runs in the Swarm
	d := newDevSystemOn(t, false, testbed.Require(t, "docker").Docker.Host, "127.0.0.1", "")
	listenAll(t, d.keycloakPort)
	before := swarmObjects(t, d)
	code, _, errs := cli(t, d.up()...)
	if code != exitcode.InvalidConfig {
		t.Fatalf("exit %d, want %d (preflight)\n%s", code, exitcode.InvalidConfig, lastLines(errs, 20))
	}
	for _, want := range []string{"preflight found", "port " + d.keycloakPort + "/tcp", d.names[stacks.Keycloak] + "_keycloak",
		fmt.Sprintf("pid %d", os.Getpid()), "KEYCLOAK_PUBLISHED_PORT", "nothing was written", `"mutatingCalls":0`} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr does not say %q:\n%s", want, lastLines(errs, 20))
		}
	}
	if after := swarmObjects(t, d); after != before {
		t.Errorf("the Swarm changed:\nbefore %s\nafter  %s", before, after)
	}
	t.Logf("stderr:\n%s", lastLines(errs, 6))
}

// A port taken after preflight (a bind failure when the task starts): up stops by the fail-fast rule, naming the
// service, the cause and the fix, long before its (here 30-minute) stack timeout.
func TestUpFailFastPortTakenE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	d := newDevSystem(t, false)
	old := afterPreflight
	afterPreflight = func() { listenAll(t, d.keycloakPort) }
	t.Cleanup(func() { afterPreflight = old })
	t0 := time.Now()
	code, _, errs := cli(t, d.up("--stack", stacks.Keycloak, "--timeout", "30m")...)
	t.Logf("up: exit %d after %s", code, time.Since(t0).Round(time.Second))
	if code != exitcode.StepFailed {
		t.Fatalf("exit %d, want %d (a step failed)\n%s", code, exitcode.StepFailed, lastLines(errs, 20))
	}
	for _, want := range []string{"service " + d.names[stacks.Keycloak] + "_keycloak cannot start", "port already in use",
		"address already in use", "port " + d.keycloakPort + " is taken", fmt.Sprintf("pid %d", os.Getpid()), "task(s) in a row"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr does not say %q:\n%s", want, lastLines(errs, 20))
		}
	}
	if strings.Contains(errs, "did not converge in") {
		t.Errorf("up waited out its timeout instead of failing fast:\n%s", lastLines(errs, 10))
	}
}
