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

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/composeproj"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/devenv"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spire"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/spireentries"
)

// composeSystem is a rendered compose project run by Debian's docker-compose on the test bed's Docker Engine
// (plain containers, no Swarm), under a random project name and on free ports.
type composeSystem struct {
	*devSystem // the addresses, ports and dev state the API checks of the Swarm tests read
	proj       composeproj.Project
}

func newComposeSystem(t *testing.T) *composeSystem {
	t.Helper()
	in := testbed.Require(t, "docker")
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
