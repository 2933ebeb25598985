package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/devenv"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/render"
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
	project    string
	dir        string // the render's output directory
	engine     *docker.Client
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
		project: "zbc" + testutil.RandHex(t, 3), dir: filepath.Join(base, "render"), engine: c}
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
		out, err := s.compose(10*time.Minute, "down", "-v", "--remove-orphans", "--timeout", "20")
		if err != nil {
			t.Logf("cleanup: docker-compose down -v: %v\n%s", err, lastLines(out, 20))
		}
		c.Close()
	})
	return s
}

// compose runs docker-compose on the rendered project.
func (s *composeSystem) compose(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker-compose", append([]string{"-p", s.project, "--no-ansi"}, args...)...)
	cmd.Dir = filepath.Join(s.dir, "compose")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// services are the services of the rendered compose file.
func (s *composeSystem) services() []string {
	b, err := os.ReadFile(filepath.Join(s.dir, "compose", render.ComposeFile))
	testutil.Must(s.tb, err)
	var doc struct{ Services map[string]any }
	testutil.Must(s.tb, yaml.Unmarshal(b, &doc))
	return slices.Sorted(maps.Keys(doc.Services))
}

// container is the name docker-compose gives the (only) container of service.
func (s *composeSystem) container(service string) string { return s.project + "_" + service + "_1" }

// converged waits until every long-running service is healthy and the one-shot ones have exited 0, the
// bootstrap after since, and returns the bootstrap's mutating-call count from its last apply report.
func (s *composeSystem) converged(ctx context.Context, since time.Time) string {
	t := s.tb
	t.Helper()
	services := s.services()
	err := wait.For(ctx, wait.Target{What: "every service healthy and the bootstrap exited 0", Where: "compose project " + s.project,
		Deadline: 10 * time.Minute, Initial: 2 * time.Second, Max: 5 * time.Second}, func(ctx context.Context) error {
		for _, svc := range services {
			c, err := s.engine.InspectContainer(ctx, s.container(svc))
			if err != nil {
				return err
			}
			switch {
			case svc == render.BootstrapService || svc == render.ToolsService:
				if c.Running || c.Status != "exited" {
					return fmt.Errorf("%s: %s", svc, c.Status)
				}
				if c.ExitCode != 0 && c.RestartCount >= 5 {
					return wait.Permanent(fmt.Errorf("%s exited %d after %d restarts", svc, c.ExitCode, c.RestartCount))
				}
				if c.ExitCode != 0 || (svc == render.BootstrapService && c.FinishedAt.Before(since)) {
					return fmt.Errorf("%s: exit %d at %s, not yet a success since %s", svc, c.ExitCode, c.FinishedAt, since)
				}
			case c.Health != "healthy":
				return fmt.Errorf("%s: %s %s %s", svc, c.Status, c.Health, c.HealthOutput)
			}
		}
		return nil
	})
	if err != nil {
		logs, _ := s.compose(time.Minute, "logs", "--tail", "20")
		t.Fatalf("%v\n%s", err, lastLines(logs, 150))
	}
	stdout, stderr, err := s.engine.ContainerLogs(ctx, s.container(render.BootstrapService))
	testutil.Must(t, err)
	var writes string
	for _, l := range strings.Split(stdout, "\n") {
		if w := jobWrites([]string{l}); w != "" {
			writes = w // the last run's
		}
	}
	if writes == "" {
		t.Fatalf("the bootstrap's output has no converged apply report:\n%s\n%s", lastLines(stdout, 30), lastLines(stderr, 30))
	}
	return writes
}

// spireAdmin dials the project's SPIRE server through its socket volume.
func (s *composeSystem) spireAdmin(ctx context.Context) *spire.Client {
	t := s.tb
	t.Helper()
	v, err := s.engine.InspectVolume(ctx, s.project+"_spire-server-socket")
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
// and writes nothing.
func TestRenderComposeE2E(t *testing.T) {
	t.Parallel()
	s := newComposeSystem(t)
	ctx := testutil.Context(t, 25*time.Minute)
	code, out, errs := cli(t, "render", "--out", s.dir, "--compose", "--dev", "--state-dir", s.state, "--env-file", s.envFile, "--project", s.project)
	if code != 0 {
		t.Fatalf("render: exit %d\n%s\n%s", code, out, lastLines(errs, 20))
	}
	t0 := time.Now()
	if out, err := s.compose(20*time.Minute, "up", "-d"); err != nil {
		t.Fatalf("docker-compose up -d: %v\n%s", err, lastLines(out, 40))
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
	sp := s.spireAdmin(ctx)
	defer sp.Close()
	entries, err := sp.ListEntries(ctx)
	testutil.Must(t, err)
	want := spireentries.ComposeSelectors(s.project, "ziti-router")
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
	res, err := s.engine.Exec(ctx, s.container("spire-server"), []string{"/opt/spire/bin/spire-server", "agent", "list", "-socketPath", "/tmp/spire-server/private/api.sock"})
	testutil.Must(t, err)
	if !regexp.MustCompile(`spiffe://openziti.local/spire/agent/x509pop/compose-node`).MatchString(res.Stdout) {
		t.Errorf("the compose agent is not attested with the dev node certificate:\n%s%s", res.Stdout, res.Stderr)
	}
	if _, err := os.Stat(filepath.Join(s.state, devenv.NodeCertFile)); err != nil {
		t.Errorf("dev state: %v", err)
	}
	s.oidcLogin()

	// again: compose starts the exited bootstrap, which finds nothing to do
	t1 := time.Now()
	if out, err := s.compose(10*time.Minute, "up", "-d"); err != nil {
		t.Fatalf("docker-compose up -d again: %v\n%s", err, lastLines(out, 40))
	}
	if w := s.converged(ctx, t1); w != "0" {
		t.Errorf("the bootstrap run again by docker-compose up made %s mutating call(s), want 0", w)
	}
	t.Logf("docker-compose up -d again: %s, the bootstrap wrote nothing", time.Since(t1).Round(time.Second))
}
