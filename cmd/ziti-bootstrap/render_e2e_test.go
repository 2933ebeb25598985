package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/app/capin"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/composeproj"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/devenv"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spire"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/spireentries"
)

// readmeScript is the shell block of the rendered README's `docker stack deploy` section: the documented order
// and waits.
var readmeScript = regexp.MustCompile("(?s)## Docker Swarm: `docker stack deploy`.*?```sh\n(.*?)```")

// TestRenderStackDeployE2E: `render --stack --dev` → the README's commands (Debian's docker CLI: `docker stack
// deploy -c` of the three stacks in the documented order, each after the previous one is healthy) on the test
// bed's Swarm → the bootstrap job converges; a `plan` run afterwards where the job runs (inside the Swarm, with
// the job's addresses) shows 0 changes to the configuration steps; `up --dev --dry-run` with the same
// configuration adopts the stacks (same object names, labels and specs):
// the one difference `up --dev --dry-run` finds is the controller's CA, which up pins where the rendered files
// trust it on first contact; a second `up --dev` makes 0 mutating calls, and `down --volumes` removes them.
func TestRenderStackDeployE2E(t *testing.T) {
	t.Parallel()
	d := newDevSystem(t, false)
	ctx := testutil.Context(t, 30*time.Minute)
	// render ships no job files: the same configuration without them
	b, err := os.ReadFile(d.envFile)
	testutil.Must(t, err)
	var keep []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, "POLICIES_FILE=") && !strings.HasPrefix(l, "SPIRE_ENTRIES_FILE=") {
			keep = append(keep, l)
		}
	}
	testutil.Must(t, os.WriteFile(d.envFile, []byte(strings.Join(keep, "\n")), 0o600))

	dir := filepath.Join(t.TempDir(), "render")
	code, out, errs := cli(t, "render", "--out", dir, "--stack", "--dev", "--state-dir", d.state, "--env-file", d.envFile, "--prefix", d.prefix)
	if code != 0 {
		t.Fatalf("render: exit %d\n%s\n%s", code, out, lastLines(errs, 20))
	}
	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	testutil.Must(t, err)
	m := readmeScript.FindSubmatch(readme)
	if m == nil {
		t.Fatalf("the rendered README has no docker stack deploy commands:\n%s", readme)
	}
	t.Logf("the README's commands:\n%s", m[1])
	t0 := time.Now()
	sh := exec.CommandContext(ctx, "bash", "-eu", "-c", string(m[1])) // as a user runs them: no pipefail (grep -q ends a pipe early)
	sh.Dir = filepath.Join(dir, "stack")
	if out, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("the README's commands: %v\n%s", err, lastLines(string(out), 40))
	}
	t.Logf("docker stack deploy of the three stacks, in order, each healthy: %s", time.Since(t0).Round(time.Second))
	// the job completed (the README's last wait) and converged
	ozNS := d.names[stacks.OpenZiti]
	logs, err := exec.CommandContext(ctx, "docker", "service", "logs", "--raw", ozNS+"_"+stacks.BootstrapService).CombinedOutput()
	testutil.Must(t, err)
	if w := jobWrites(strings.Split(string(logs), "\n")); w == "" || w == "0" {
		t.Errorf("the bootstrap job deployed by docker stack deploy: %q mutating call(s), want a converged apply that configured something\n%s", w, lastLines(string(logs), 30))
	}

	d.planInTheSwarm(ctx)

	// up meets the stacks: it adopts them, and its only change is the controller's pinned CA in place of the
	// rendered files' first-contact trust (a config, and the services that call the controller mount it)
	code, out, errs = cli(t, d.up("--dry-run")...)
	if code != 0 {
		t.Fatalf("up --dry-run: exit %d\n%s", code, lastLines(errs, 30))
	}
	rep := report(t, out)
	for _, s := range rep.Steps {
		for _, c := range s.Changes {
			if !pinChange(c) {
				t.Errorf("up --dry-run after docker stack deploy: %s would change more than the controller's CA pin: %s", s.Name, c)
			}
		}
	}
	d.run("up --dev after docker stack deploy (pins the controller's CA)", d.up()...)
	rep = d.run("up --dev again", d.up()...)
	if rep.MutatingCalls != 0 {
		t.Errorf("up --dev again after docker stack deploy made %d mutating call(s): %v", rep.MutatingCalls, rep.Writes)
	}
	d.run("down --volumes", append([]string{"down", "--volumes"}, d.common...)...)
	if l := d.leftovers(); l != "" {
		t.Errorf("after down --volumes: %s", l)
	}
}

// pinChange reports whether c is part of pinning the controller's CA over rendered stacks: the config, or an
// update of a service that calls the controller (its trust of first contact replaced by the config).
func pinChange(c steps.Change) bool {
	if strings.Contains(c.Key, capin.Key) {
		return true
	}
	return c.Action == steps.Update && slices.ContainsFunc(capin.Clients, func(s string) bool { return strings.HasSuffix(c.Key, "_"+s) })
}

// changeLines prints changes one a line.
func changeLines(cs []steps.Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, "    "+fmt.Sprint(c))
	}
	return out
}

// planInTheSwarm runs `plan` where the bootstrap job runs: the tool's image on the Keycloak stack's network
// (which the controller joins too), SPIRE's admin socket from its volume, the dev secrets as Docker secrets'
// files, the job's addresses; every configuration step must report no change.
func (d *devSystem) planInTheSwarm(ctx context.Context) {
	t := d.tb
	t.Helper()
	dir := t.TempDir()
	ca, err := d.c.SwarmRootCA(ctx)
	testutil.Must(t, err)
	caFile := filepath.Join(dir, "node-ca.crt")
	testutil.Must(t, os.WriteFile(caFile, []byte(ca), 0o644))
	// the job's settings (stacks/openziti.yml), in an env file: NAME_FILE variables are not accepted by --set
	env := strings.Join([]string{"ZITI_CTRL_URL=https://ziti-controller:1280", "ZITI_CA_TOFU=true", "KEYCLOAK_URL=https://keycloak:8443",
		"KEYCLOAK_CA_FILE=/etc/zb/keycloak-ca.crt",
		"SPIRE_SERVER_ADDRESS=unix:///run/spire-server/api.sock", "ZB_STACK_OPENZITI=" + d.names[stacks.OpenZiti],
		"SPIRE_NODE_CA_FILE=/etc/zb/node-ca.crt", "ZB_SECRETS_DIR=/run/secrets", "KEYCLOAK_ADMIN_CLIENT_ID=" + config.StackAdminClientID, ""}, "\n")
	envFile := filepath.Join(dir, "plan.env")
	testutil.Must(t, os.WriteFile(envFile, []byte(env), 0o644))
	secret := func(state, name string) docker.Mount {
		return docker.Mount{Source: filepath.Join(d.state, state), Target: "/run/secrets/" + name, ReadOnly: true}
	}
	spec := docker.ContainerSpec{
		Name: d.prefix + "plan", Image: d.images["ZB_IMAGE"], User: "0:0", Network: d.names[stacks.Keycloak] + "_keycloak",
		Cmd: []string{"plan", "-o", "json", "--env-file", "/etc/zb/plan.env"},
		Mounts: []docker.Mount{
			{Volume: true, Source: d.names[stacks.Spire] + "_spire-server-socket", Target: "/run/spire-server"},
			{Source: caFile, Target: "/etc/zb/node-ca.crt", ReadOnly: true},
			{Source: envFile, Target: "/etc/zb/plan.env", ReadOnly: true},
			{Source: filepath.Join(d.state, devenv.KeycloakCAFile), Target: "/etc/zb/keycloak-ca.crt", ReadOnly: true},
			secret("ziti_admin_password", "ziti_admin_password"), secret("keycloak_admin_password", "keycloak_admin_password"),
			secret("spire_upstream_ca.key", "spire_upstream_ca_key"), secret(devenv.KeycloakAdminClientSecretFile, "keycloak_admin_client_secret"),
		},
	}
	id, err := d.c.CreateContainer(ctx, spec)
	testutil.Must(t, err)
	defer d.c.ForceRemoveContainer(context.Background(), id)
	testutil.Must(t, d.c.StartContainer(ctx, id))
	code, err := d.c.WaitContainer(ctx, id)
	testutil.Must(t, err)
	stdout, stderr, err := d.c.ContainerLogs(ctx, id)
	testutil.Must(t, err)
	if code != 0 {
		t.Fatalf("plan in the Swarm: exit %d\n%s\n%s", code, stdout, lastLines(stderr, 30))
	}
	rep := report(t, stdout)
	var configSteps int
	for _, s := range rep.Steps {
		if !strings.HasSuffix(s.Name, "/reachable") {
			configSteps++
		}
		if len(s.Changes) > 0 {
			t.Errorf("plan after docker stack deploy: %s has %d change(s):\n%s", s.Name, len(s.Changes), strings.Join(changeLines(s.Changes), "\n"))
		}
	}
	if configSteps < 4 {
		t.Errorf("plan ran %d configuration step(s): %+v", configSteps, rep.Steps)
	}
	t.Logf("plan in the Swarm after docker stack deploy: %d configuration steps, 0 changes", configSteps)
}

// composeSystem is a rendered compose project run by Debian's docker-compose on the test bed's Docker Engine
// (plain containers, no Swarm), under a random project name and on free ports.
type composeSystem struct {
	*devSystem // the addresses, ports and dev state the API checks of the Swarm tests read
	proj       composeproj.Project
}

func newComposeSystem(t *testing.T) *composeSystem {
	t.Helper()
	in := testbed.Require(t, "docker")
	testbed.LockSideSystem(t) // not beside the three-node Swarm's up: both start a whole system
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Fatalf("docker-compose is not installed (scripts/install-deps.sh installs it): %v", err)
	}
	c, err := docker.New(in.Docker.Host, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	s := &composeSystem{devSystem: &devSystem{tb: t, addr: "127.0.0.1", state: filepath.Join(base, "state"), c: c},
		proj: composeproj.Project{Dir: filepath.Join(base, "render"), Name: "zbc" + testutil.RandHex(t, 3), Engine: c}}
	var env strings.Builder
	for k, v := range localImages(t) {
		if !strings.HasPrefix(k, "SPIRE_PREVIOUS_") {
			fmt.Fprintf(&env, "%s=%s\n", k, v)
		}
	}
	s.keycloakPort, s.zitiPort = freePort(t), freePort(t)
	fmt.Fprintf(&env, "KEYCLOAK_PUBLISHED_PORT=%s\nZITI_CTRL_PUBLISHED_PORT=%s\nZITI_ROUTER_PUBLISHED_PORT=%s\n", s.keycloakPort, s.zitiPort, freePort(t))
	s.envFile = filepath.Join(base, ".env")
	testutil.Must(t, os.WriteFile(s.envFile, []byte(env.String()), 0o600))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		if out, err := s.proj.Compose(ctx, "down", "-v", "--remove-orphans", "--timeout", "20"); err != nil {
			t.Logf("cleanup: %v\n%s", err, lastLines(out, 20))
		}
		c.Close()
	})
	return s
}

// converged waits for the project (composeproj.Converged) and returns the mutating calls of the bootstrap's
// last run.
func (s *composeSystem) converged(ctx context.Context, since time.Time) string {
	t := s.tb
	t.Helper()
	if err := s.proj.Converged(ctx, since, 10*time.Minute, nil); err != nil {
		logs, _ := s.proj.Compose(ctx, "logs", "--tail", "20")
		t.Fatalf("%v\n%s", err, lastLines(logs, 150))
	}
	rep, err := s.proj.BootstrapReport(ctx)
	testutil.Must(t, err)
	if rep.MutatingCalls == "" {
		t.Fatalf("the bootstrap's output has no apply report:\n%s", lastLines(rep.Text, 30))
	}
	t.Logf("the bootstrap's report:\n%s", rep.Text)
	return rep.MutatingCalls
}

// spireAdmin dials the project's SPIRE server through its socket volume.
func (s *composeSystem) spireAdmin(ctx context.Context) *spire.Client {
	t := s.tb
	t.Helper()
	v, err := s.proj.Engine.InspectVolume(ctx, s.proj.Name+"_spire-server-socket")
	testutil.Must(t, err)
	c, err := spire.Dial(ctx, "unix://"+filepath.Join(v.Mountpoint, "api.sock"), nil)
	testutil.Must(t, err)
	return c
}

// TestRenderComposeE2E: `render --compose --dev` → `docker-compose up -d` on the test bed's engine (containers,
// no Swarm) → every service healthy → the bootstrap service converges: the SPIRE root is a verified CA in
// OpenZiti, the built-in entries select the project's containers by their compose labels, the agent (host PID
// namespace) attested with the dev state's node certificate, the edge router enrolled with its SVID and is
// online, and a Keycloak user logs in to OpenZiti → `docker-compose up -d` again → the bootstrap runs again
// and writes nothing → `up --compose` does the same, gated, with its report → `down --compose --volumes`
// leaves no container or volume.
func TestRenderComposeE2E(t *testing.T) {
	t.Parallel()
	s := newComposeSystem(t)
	ctx := testutil.Context(t, 25*time.Minute)
	code, out, errs := cli(t, "render", "--out", s.proj.Dir, "--compose", "--dev", "--state-dir", s.state, "--env-file", s.envFile, "--project", s.proj.Name)
	if code != 0 {
		t.Fatalf("render: exit %d\n%s\n%s", code, out, lastLines(errs, 20))
	}
	t0 := time.Now()
	if err := s.proj.Up(ctx, 15*time.Minute, testProgress(t)); err != nil {
		t.Fatal(err)
	}
	if w := s.converged(ctx, t0); w == "0" {
		t.Errorf("the first bootstrap made no mutating call: it configured nothing")
	}
	t.Logf("render → docker-compose up -d → all healthy, bootstrap converged: %s", time.Since(t0).Round(time.Second))

	// through the servers' APIs
	z := s.zitiAdmin(ctx)
	cas, err := z.ListCAs(ctx, `name contains "spire"`)
	testutil.Must(t, err)
	if len(cas) != 1 || !cas[0].IsVerified {
		t.Errorf("OpenZiti CAs of SPIRE's root: %+v, want one, verified", cas)
	}
	s.routerOnline(ctx, z) // it enrolled through router-enrol with its SVID: both got theirs from the compose agent
	// which attested them through its Docker proxy, not the Engine's socket
	agentDockerOnlyThroughProxy(t, s.proj.Engine, s.proj.Container("spire-agent"), s.proj.Name+"_spire-agent-docker", s.proj.Name+"-agent-escape")
	sp := s.spireAdmin(ctx)
	defer sp.Close()
	entries, err := sp.ListEntries(ctx)
	testutil.Must(t, err)
	want := spireentries.ComposeSelectors(s.proj.Name, "ziti-router")
	i := slices.IndexFunc(entries, func(e spire.Entry) bool { return strings.HasSuffix(e.SpiffeID, "/ziti-router") })
	if i < 0 {
		t.Fatalf("no router entry in SPIRE: %+v", entries)
	}
	var got []string
	for _, sel := range entries[i].Selectors {
		got = append(got, sel.String())
	}
	slices.Sort(got)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("router entry selectors %v, want %v", got, want)
	}
	res, err := s.proj.Engine.Exec(ctx, s.proj.Container("spire-server"), []string{"/opt/spire/bin/spire-server", "agent", "list", "-socketPath", "/tmp/spire-server/private/api.sock"})
	testutil.Must(t, err)
	if !regexp.MustCompile(`spiffe://openziti.local/spire/agent/x509pop/compose-node`).MatchString(res.Stdout) {
		t.Errorf("the compose agent is not attested with the dev node certificate:\n%s%s", res.Stdout, res.Stderr)
	}
	if _, err := os.Stat(filepath.Join(s.state, devenv.NodeCertFile)); err != nil {
		t.Errorf("dev state: %v", err)
	}

	// again: compose starts the exited bootstrap, which finds nothing to do
	t1 := time.Now()
	if err := s.proj.Up(ctx, 5*time.Minute, testProgress(t)); err != nil {
		t.Fatalf("again: %v", err)
	}
	if w := s.converged(ctx, t1); w != "0" {
		t.Errorf("the bootstrap run again by docker-compose up made %s mutating call(s), want 0", w)
	}
	t.Logf("docker-compose up -d again: %s", time.Since(t1).Round(time.Second))

	// up --compose on the same project: the same render (byte-identical, so compose changes no container), the
	// bootstrap started again, gated on every service's health, its report shown: 0 mutating calls
	compose := []string{"--compose", "--dev", "--state-dir", s.state, "--project", s.proj.Name, "--compose-dir", s.proj.Dir}
	t2 := time.Now()
	code, out, errs = cli(t, append([]string{"up", "--env-file", s.envFile}, compose...)...)
	if code != 0 {
		t.Fatalf("up --compose: exit %d\n%s\n%s", code, out, lastLines(errs, 20))
	}
	if !strings.Contains(out, "bootstrap converged") || !strings.Contains(out, "with 0 mutating call(s)") {
		t.Errorf("up --compose on a converged project: %s", out)
	}
	t.Logf("up --compose on the converged project: %s\n%s", time.Since(t2).Round(time.Second), lastLines(out, 3))
	// last: the login gives the realm's client the password grant, a change the next bootstrap would undo
	s.oidcLogin()
	code, out, errs = cli(t, append([]string{"down", "--volumes"}, compose...)...)
	if code != 0 {
		t.Fatalf("down --compose --volumes: exit %d\n%s\n%s", code, out, lastLines(errs, 20))
	}
	for _, svc := range []string{"spire-server", "bootstrap"} {
		if _, err := s.proj.Engine.InspectContainer(ctx, s.proj.Container(svc)); !docker.IsNotFound(err) {
			t.Errorf("after down --compose: container of %s: %v", svc, err)
		}
	}
	if _, err := s.proj.Engine.InspectVolume(ctx, s.proj.Name+"_spire-server-data"); !docker.IsNotFound(err) {
		t.Errorf("after down --compose --volumes: SPIRE's data volume: %v", err)
	}
}

// testProgress logs each attempt of a wait to the test's log.
func testProgress(t *testing.T) wait.Progress {
	return func(what, where string, attempt int, elapsed time.Duration, err error) {
		t.Logf("waiting for %s at %s: attempt %d, %s: %v", what, where, attempt, elapsed.Round(time.Second), err)
	}
}
