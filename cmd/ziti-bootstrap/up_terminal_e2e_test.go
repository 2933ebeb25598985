package main

import (
	"fmt"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/app/deploy"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
)

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
	code, _, errs := cli(t, d.up()...)
	mustExitSaying(t, code, exitcode.InvalidConfig, errs, "preflight found", "port "+d.keycloakPort+"/tcp", d.names[stacks.Keycloak]+"_keycloak",
		fmt.Sprintf("pid %d", os.Getpid()), "KEYCLOAK_PUBLISHED_PORT", "nothing was written", `"msg":"preflight","ok":false,"mutatingCalls":0`)
	// nothing after preflight ran: no lock taken, no step started; and nothing of the stacks exists
	for _, not := range []string{"step start", "lock"} {
		if strings.Contains(errs, not) {
			t.Errorf("stderr says %q: up went past preflight:\n%s", not, lastLines(errs, 20))
		}
	}
	if l := d.leftovers(); l != "" {
		t.Errorf("objects of the stacks exist: %s", l)
	}
	t.Logf("stderr:\n%s", lastLines(errs, 6))
}

// An image that is not on the node and cannot be pulled: preflight, which reads the images while up loads the
// stacks again, names it and the service that uses it, exit code 2, before any write.
func TestUpPreflightMissingImageE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	d := newDevSystemOn(t, false, testbed.Require(t, "docker").Docker.Host, "127.0.0.1", "")
	code, _, errs := cli(t, append([]string{"--set", "ZITI_ROUTER_IMAGE=zb-local/does-not-exist:0"}, d.up()...)...)
	mustExitSaying(t, code, exitcode.InvalidConfig, errs, "preflight found", "image zb-local/does-not-exist:0: not on this node and cannot be pulled",
		d.names[stacks.OpenZiti]+"_ziti-router", `"msg":"preflight","ok":false,"mutatingCalls":0`)
	if strings.Contains(errs, "step start") {
		t.Errorf("up went past preflight:\n%s", lastLines(errs, 20))
	}
	if l := d.leftovers(); l != "" {
		t.Errorf("objects of the stacks exist: %s", l)
	}
}

// A port taken after preflight (a bind failure when the task starts): up stops by the fail-fast rule, naming the
// service, the cause and the fix, long before its (here 30-minute) stack timeout.
func TestUpFailFastPortTakenE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	d := newDevSystem(t, false)
	old := deploy.AfterPreflight
	deploy.AfterPreflight = func() { listenAll(t, d.keycloakPort) }
	t.Cleanup(func() { deploy.AfterPreflight = old })
	t0 := time.Now()
	code, _, errs := cli(t, d.up("--stack", stacks.Keycloak, "--timeout", "30m")...)
	t.Logf("up: exit %d after %s", code, time.Since(t0).Round(time.Second))
	mustExitSaying(t, code, exitcode.StepFailed, errs, "service "+d.names[stacks.Keycloak]+"_keycloak cannot start", "port already in use",
		"address already in use", "port "+d.keycloakPort+" is taken", fmt.Sprintf("pid %d", os.Getpid()), "task(s) in a row")
	// the error up ends with (the waits' progress lines before it say "did not converge in 11s" and so on)
	if final := lastLines(errs, 1); !strings.HasPrefix(final, "error: ") || strings.Contains(final, "did not converge in") {
		t.Errorf("up did not end with the fail-fast error: %s", final)
	}
}

var (
	redrawSeq  = regexp.MustCompile(`\x1b\[\d+A\r\x1b\[J`)
	durationRe = regexp.MustCompile(`\b\d+(\.\d+)?s\b|\b\d+m\d+s\b`)
	writesRe   = regexp.MustCompile(`\d+ write\(s\)`)
	spacesRe   = regexp.MustCompile(` +`)
)

// up on a terminal draws the live view: frames redrawn in place while the SPIRE stack comes up on the test bed's
// Swarm (its services' tasks per node, health, the step), the last frame left on screen, then the report; no
// structured log line. The last frame, normalised (stack prefix, durations, write counts), is kept as a golden file.
func TestUpLiveViewPTYE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	d := newDevSystem(t, false)
	code, stdout, screen, frames := onPTY(t, 160, false, "up", "--dev", "--state-dir", d.state, "--prefix", d.prefix, "--env-file", d.envFile,
		"--stack", stacks.Spire)
	if code != exitcode.OK {
		t.Fatalf("up: exit %d\n%s\n%s", code, lastLines(screen, 30), stdout)
	}
	t.Logf("%d frame(s); the last:\n%s", len(frames), frames[len(frames)-1])
	if len(frames) < 3 {
		t.Fatalf("%d frame(s), want the view redrawn in place while the stack converges:\n%q", len(frames), screen)
	}
	host, _ := os.Hostname()
	server := d.names[stacks.Spire] + "_spire-server"
	waiting := slices.ContainsFunc(frames, func(f string) bool {
		return strings.Contains(f, "▸ stack/spire") && strings.Contains(f, server) && strings.Contains(f, host+": ")
	})
	if !waiting {
		t.Errorf("no frame shows stack/spire running with %s's tasks on node %s:\n%s", server, host, screen)
	}
	last := frames[len(frames)-1]
	if !strings.Contains(last, "✓ stack/spire") {
		t.Errorf("the last frame does not show stack/spire done:\n%s", last)
	}
	noLogs(t, screen)
	if !strings.Contains(stdout, "mutating call(s); converged") {
		t.Errorf("no report after the view:\n%s", stdout)
	}
	norm := strings.ReplaceAll(last, d.prefix, "zbtPREFIX-")
	norm = writesRe.ReplaceAllString(durationRe.ReplaceAllString(norm, "T"), "N write(s)")
	norm = spacesRe.ReplaceAllString(norm, " ") // the columns' padding depends on the durations' lengths
	checkGolden(t, "live-up-spire.golden", norm)
}

// publishOnREADMEPorts makes d publish the controller, the router and Keycloak on the README's alternative ports
// (the ones it tells a user to take when the defaults are in use), with the whole test bed up: `up` with them must
// collide with nothing the test bed holds. TestUpDevE2E's up runs on them.
func (d *devSystem) publishOnREADMEPorts(t *testing.T) {
	t.Helper()
	for _, s := range testbed.Servers {
		testbed.Require(t, s)
	}
	_, m := readmeAltPorts(t)
	env, err := os.ReadFile(d.envFile)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range []string{"ZITI_CTRL_PUBLISHED_PORT", "ZITI_ROUTER_PUBLISHED_PORT", "KEYCLOAK_PUBLISHED_PORT"} {
		env = regexp.MustCompile(`(?m)^`+v+`=.*$`).ReplaceAll(env, []byte(v+"="+m[i+1]))
	}
	if err := os.WriteFile(d.envFile, env, 0o600); err != nil {
		t.Fatal(err)
	}
	d.zitiPort, d.keycloakPort = m[1], m[3]
}
