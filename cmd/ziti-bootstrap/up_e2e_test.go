package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/ziti-bootstrap/ziti-bootstrap/app/capin"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/agentlauncher"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/devenv"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/keycloak"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/lock"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/stack"
)

// localImages builds (or finds cached) every local image with scripts/images.sh, ziti-bootstrap's own from this
// checkout included, and returns the stack variables that select them. The script runs once per test process
// (nothing it builds from changes while the tests run; each run cost a dev system 7 s under the Swarm's lock):
// every caller gets its own copy of the variables.
func localImages(t testing.TB) map[string]string {
	t.Helper()
	builtImages.Lock()
	defer builtImages.Unlock()
	if builtImages.vars != nil {
		return maps.Clone(builtImages.vars)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("../../scripts/images.sh")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	t0 := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("scripts/images.sh: %v\n%s", err, stderr.String())
	}
	t.Logf("scripts/images.sh: %s", time.Since(t0).Round(time.Millisecond))
	vars := map[string]string{}
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			vars[k] = v
		}
	}
	if vars["ZB_IMAGE"] == "" {
		t.Fatalf("scripts/images.sh printed no ZB_IMAGE:\n%s", stdout.String())
	}
	builtImages.vars = vars
	return maps.Clone(vars)
}

// builtImages is what localImages' run of scripts/images.sh printed (nil until one succeeded).
var builtImages struct {
	sync.Mutex
	vars map[string]string
}

// freePort returns a TCP port nothing listens on now, for a port the stacks publish on the node (the test bed's
// own servers hold 1280, 3022, 8180, …).
func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

var (
	bootstrapBench = regexp.MustCompile(`^bootstrap converged (\S+) after services healthy`)
	jobReport      = regexp.MustCompile(`^\|? ?apply: .*; (\d+) mutating call\(s\); converged$`)
)

// e2ePolicies is the POLICIES_FILE of the end-to-end test: a service users with the role e2e-users may dial.
const e2ePolicies = `services:
  - name: e2e-web
    roleAttributes: [e2e]
    intercept:
      protocols: [tcp]
      addresses: [web.e2e]
      portRanges:
        - {low: 80, high: 80}
    host:
      protocol: tcp
      address: 127.0.0.1
      port: 8080
identityRules:
  - externalId: spiffe://openziti.local/e2e/{name}
    roleAttributes: ["e2e-workload:{name}"]
external:
  identityRoles: [e2e-users]
servicePolicies:
  - name: e2e-users-dial-web
    type: Dial
    identityRoles: ["#e2e-users"]
    serviceRoles: ["@e2e-web"]
defaults:
  edgeRouterRoles: ["#all"]
  edgeRouterPolicy: e2e-endpoints-routers
  serviceEdgeRouterPolicy: e2e-services-routers
`

// devSystem is the three stacks brought up by `up --dev` on the test bed's single-node Swarm, under a random
// stack prefix and on free ports, for end-to-end tests and benchmarks. It holds the test bed's Swarm lock (up and
// down take the Swarm's apply lock) and removes whatever is left of the stacks when the test ends.
type devSystem struct {
	tb      testing.TB
	c       *docker.Client
	prefix  string
	names   map[string]string
	envFile string
	state   string
	common  []string // --prefix, --env-file, -o json
	// published ports of Keycloak and the controller's edge API
	keycloakPort, zitiPort string
	addr                   string            // where those ports are published (the state node)
	gateway                string            // this host's address as the Swarm's tasks reach it
	images                 map[string]string // the local images' stack variables
	workloadName           string            // the service SPIRE_ENTRIES_FILE registers (e2eEntries)
	backup                 *devBackup        // nil: no backup service
}

// newDevSystem prepares the stacks; withBackup adds the scheduled backup service (see backupEnv).
func newDevSystem(tb testing.TB, withBackup bool) *devSystem {
	tb.Helper()
	in := testbed.Require(tb, "docker")
	testbed.LockSwarmApply(tb)
	gw := ""
	if withBackup {
		gw = gatewayIP(tb)
	}
	return newDevSystemOn(tb, withBackup, in.Docker.Host, "127.0.0.1", gw)
}

// newDevSystemOn prepares the stacks for the Swarm whose manager is dockerHost; the published ports are reached at
// addr (the state node's address: the controller and Keycloak publish their ports in host mode there), and this
// host at gateway from the Swarm's tasks (for the test bed's S3 server, with withBackup).
func newDevSystemOn(tb testing.TB, withBackup bool, dockerHost, addr, gateway string) *devSystem {
	tb.Helper()
	b := make([]byte, 3)
	rand.Read(b)
	d := &devSystem{tb: tb, prefix: "zbt" + hex.EncodeToString(b) + "-", addr: addr, gateway: gateway}
	d.names = stacks.DefaultNames(d.prefix)
	dir := tb.TempDir()
	d.state = filepath.Join(dir, "state")
	var env strings.Builder
	d.images = localImages(tb)
	for k, v := range d.images {
		if !upgradeOnlyImage(k) { // not a stack variable: the upgrade test's starting point
			fmt.Fprintf(&env, "%s=%s\n", k, v)
		}
	}
	d.workloadName = d.prefix + "workload"
	entries := filepath.Join(dir, "spire-entries.yaml")
	if err := os.WriteFile(entries, []byte(fmt.Sprintf(e2eEntries, d.workloadName)), 0o600); err != nil {
		tb.Fatal(err)
	}
	fmt.Fprintf(&env, "SPIRE_ENTRIES_FILE=%s\n", entries)
	policies := filepath.Join(dir, "policies.yaml")
	if err := os.WriteFile(policies, []byte(e2ePolicies), 0o600); err != nil {
		tb.Fatal(err)
	}
	// POLICIES_FILE: read here, shipped to the bootstrap job as a config
	d.keycloakPort, d.zitiPort = freePort(tb), freePort(tb)
	fmt.Fprintf(&env, "DOCKER_HOST=%s\nKEYCLOAK_PUBLISHED_PORT=%s\nZITI_CTRL_PUBLISHED_PORT=%s\nZITI_ROUTER_PUBLISHED_PORT=%s\nPOLICIES_FILE=%s\n",
		dockerHost, d.keycloakPort, d.zitiPort, freePort(tb), policies)
	if withBackup {
		env.WriteString(d.backupEnv(dir))
	}
	d.envFile = filepath.Join(dir, ".env")
	if err := os.WriteFile(d.envFile, []byte(env.String()), 0o600); err != nil {
		tb.Fatal(err)
	}
	d.common = []string{"--prefix", d.prefix, "--env-file", d.envFile, "-o", "json"}
	c, err := docker.New(dockerHost, nil)
	if err != nil {
		tb.Fatal(err)
	}
	d.c = c
	if l := d.leftovers(); l != "" {
		tb.Fatalf("stacks exist before the test: %s", l)
	}
	tb.Cleanup(func() {
		if l := d.leftovers(); l != "" {
			code, out, errs := cli(tb, append([]string{"down", "--volumes"}, d.common...)...)
			tb.Logf("cleanup: down --volumes: exit %d\n%s\n%s", code, out, lastLines(errs, 20))
		}
		c.Close()
	})
	return d
}

// up is the `up --dev` command line, with more flags.
func (d *devSystem) up(more ...string) []string {
	// --timeout 10m: a stack whose servers start slowly on a loaded machine (CI's 2 cores) converges late
	// rather than not at all; more may set another
	return append(append([]string{"up", "--dev", "--state-dir", d.state, "--timeout", "10m"}, d.common...), more...)
}

// leftovers describes what exists of the stacks.
func (d *devSystem) leftovers() string {
	ctx := context.Background()
	var out []string
	for _, s := range stacks.All {
		ns := d.names[s]
		svcs, _ := d.c.Services(ctx, ns)
		nets, _ := d.c.Networks(ctx, ns)
		cfgs, _ := d.c.Configs(ctx, ns)
		secs, _ := d.c.Secrets(ctx, ns)
		vols, _ := d.c.Volumes(ctx, ns)
		if n := len(svcs) + len(nets) + len(cfgs) + len(secs) + len(vols); n > 0 {
			out = append(out, fmt.Sprintf("%s: %d service(s), %d network(s), %d config(s), %d secret(s), %d volume(s)",
				ns, len(svcs), len(nets), len(cfgs), len(secs), len(vols)))
		}
	}
	return strings.Join(out, "; ")
}

// run runs the command line, logs its report and fails unless it converged.
func (d *devSystem) run(what string, args ...string) steps.Report {
	d.tb.Helper()
	rep, _ := d.runLogged(what, args...)
	return rep
}

// runLogged is run that returns the command's log (stderr) too.
func (d *devSystem) runLogged(what string, args ...string) (steps.Report, string) {
	t := d.tb
	t.Helper()
	t0 := time.Now()
	code, out, errs := cli(t, args...)
	if code != exitcode.OK && strings.TrimSpace(out) == "" { // no report at all: the error is on stderr
		t.Fatalf("%s: exit %d, no report\n%s", what, code, lastLines(errs, 30))
	}
	rep := report(t, out)
	// one line a step; the changes, notes and errors only when the run failed, so that a failure's message is not
	// buried under hundreds of lines of successful reports (CI shows the first and last lines of a failing test)
	failed := code != exitcode.OK || !rep.Converged()
	for _, s := range rep.Steps {
		t.Logf("%s: %s %s in %s, %d mutating call(s)", what, s.Name, s.Status, time.Duration(s.DurationMS)*time.Millisecond, s.MutatingCalls)
		if !failed && s.Error == "" {
			continue
		}
		for _, c := range s.Changes {
			t.Logf("    %s", c)
		}
		for _, n := range s.Notes {
			t.Logf("    %s", n)
		}
		if s.Error != "" {
			t.Logf("    error: %s", s.Error)
		}
	}
	if failed {
		t.Fatalf("%s: exit %d, converged %v\n%s", what, code, rep.Converged(), lastLines(errs, 30))
	}
	t.Logf("%s: %s, %d mutating call(s)", what, time.Since(t0).Round(time.Millisecond), rep.MutatingCalls)
	return rep, errs
}

// notes are the notes of step in rep.
func (d *devSystem) notes(rep steps.Report, step string) []string {
	d.tb.Helper()
	for _, s := range rep.Steps {
		if s.Name == step {
			return s.Notes
		}
	}
	d.tb.Fatalf("no step %s in the report", step)
	return nil
}

var jobStep = stack.JobStepName(stacks.OpenZiti, stacks.BootstrapService)

// jobWrites is the mutating-call count of the bootstrap job's own apply report, as up showed it.
func (d *devSystem) jobWrites(rep steps.Report) string {
	d.tb.Helper()
	if w := jobWrites(d.notes(rep, jobStep)); w != "" {
		return w
	}
	d.tb.Fatalf("the bootstrap job's output has no converged apply report: %v", d.notes(rep, jobStep))
	return ""
}

// jobWrites finds the mutating-call count in the lines of a bootstrap job's output ("" when it has none).
func jobWrites(lines []string) string {
	for _, n := range lines {
		if m := jobReport.FindStringSubmatch(n); m != nil {
			return m[1]
		}
	}
	return ""
}

// sinceHealthy is the job's "services healthy → bootstrap converged" time that up reported.
func (d *devSystem) sinceHealthy(rep steps.Report) (time.Duration, bool) {
	for _, n := range d.notes(rep, jobStep) {
		if m := bootstrapBench.FindStringSubmatch(n); m != nil {
			v, err := time.ParseDuration(m[1])
			return v, err == nil
		}
	}
	return 0, false
}

// TestUpDevE2E is the local development path end to end on the test bed's single-node Swarm: from no stack at
// all, `up --dev` deploys SPIRE, Keycloak and OpenZiti, each gated on the health of what it needs, and the bootstrap
// job (ziti-bootstrap's image, inside the Swarm) converges the configuration; `up --dev` again makes no
// mutating call; the job run again on the converged systems makes none either, and waits for the Swarm's apply
// lock while another run holds it; `down --volumes` leaves nothing of the stacks. Stack names carry a random
// prefix; ports are free ones.
func TestUpDevE2E(t *testing.T) {
	t.Parallel() // beside the other Swarm end-to-end tests: each waits for its Swarm's lock, and they mostly wait
	d := newDevSystem(t, true)
	d.publishOnREADMEPorts(t) // a user's up with the README's alternative ports, the test bed up beside it
	ctx := context.Background()

	// empty Swarm → up --dev
	t0 := time.Now()
	stopPS := sampleProcesses(t)
	rep := d.run("up --dev", d.up()...)
	total := time.Since(t0)
	d.noSecretInProcesses(stopPS())
	var order []string
	for _, s := range rep.Steps {
		order = append(order, s.Name)
	}
	if want := "docker/reachable stack/state-node stack/spire stack/keycloak ziti/controller-first ziti/ca-pin stack/openziti " + jobStep; strings.Join(order, " ") != want {
		t.Errorf("steps %v, want %s", order, want)
	}
	d.controllerCAPinned(rep, "the controller's PKI volume")
	// each stack started once what it needs was healthy (stack.Graph): SPIRE and Keycloak at once, OpenZiti's
	// services (but the controller, which needs neither) after SPIRE, the bootstrap job after every other stack
	created, healthy := map[string]time.Time{}, map[string]time.Time{}
	for _, s := range stacks.All {
		svcs, err := d.c.Services(ctx, d.names[s])
		if err != nil {
			t.Fatal(err)
		}
		for _, svc := range svcs {
			created[svc.Spec.Name] = svc.CreatedAt
			tasks, err := d.c.Tasks(ctx, svc.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, tk := range tasks {
				if tk.Status.State == swarm.TaskStateRunning && tk.Status.Timestamp.After(healthy[s]) {
					healthy[s] = tk.Status.Timestamp
				}
			}
		}
	}
	oz := d.names[stacks.OpenZiti]
	for name, at := range created {
		switch {
		case name == oz+"_"+stacks.BootstrapService && (at.Before(healthy[stacks.Spire]) || at.Before(healthy[stacks.Keycloak])):
			t.Errorf("the bootstrap job was created at %s, before SPIRE (%s) and Keycloak (%s) were healthy", at, healthy[stacks.Spire], healthy[stacks.Keycloak])
		case strings.HasPrefix(name, oz+"_") && name != oz+"_"+capin.ControllerService && at.Before(healthy[stacks.Spire]):
			t.Errorf("%s was created at %s, before SPIRE was healthy (%s)", name, at, healthy[stacks.Spire])
		}
	}
	if w := d.jobWrites(rep); w == "0" {
		t.Errorf("the first bootstrap made no mutating call: it configured nothing")
	}
	// the operator's POLICIES_FILE reached the job, which applied it
	if !slices.ContainsFunc(d.notes(rep, jobStep), regexp.MustCompile(`^\| ziti/policies +changed .* write\(s\)$`).MatchString) {
		t.Errorf("the bootstrap job did not apply POLICIES_FILE: %v", d.notes(rep, jobStep))
	}
	// the job logged in to Keycloak with the stack's admin service account, whose secret it read from
	// /run/secrets: no password hash for Keycloak to compute
	if !slices.ContainsFunc(d.notes(rep, jobStep), func(n string) bool {
		return strings.Contains(n, "admin token by client credentials of "+config.StackAdminClientID)
	}) {
		t.Errorf("the bootstrap job did not log in to Keycloak with its service account %s: %v", config.StackAdminClientID, d.notes(rep, jobStep))
	}
	d.keycloakWarmedBeforeHealthy()
	d.realmImported(rep)
	since, _ := d.sinceHealthy(rep)
	t.Logf("up --dev from an empty Swarm to 3 stacks healthy and the bootstrap converged: %s, %d mutating call(s); "+
		"services healthy → bootstrap converged: %s (BenchmarkUpDev measures these)", total.Round(time.Millisecond), rep.MutatingCalls, since)
	for _, f := range devenv.Files {
		if fi, err := os.Stat(filepath.Join(d.state, f.Name)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("dev state %s: %v %v", f.Name, fi.Mode(), err)
		}
	}

	// again: nothing to do, and no write at all, not even the lock's: a read-only pass stands (unless another
	// test's run held the lock meanwhile, which the log then says)
	rep, logs := d.runLogged("up --dev again", d.up("--log-level", "debug")...)
	if rep.MutatingCalls != 0 {
		t.Fatalf("up --dev again made %d mutating call(s): %v", rep.MutatingCalls, rep.Writes)
	}
	if strings.Contains(logs, " would write: running under the lock") {
		t.Errorf("up --dev again: the read-only pass found a write to make, and the run under the lock made none:\n%s", lastLines(logs, 20))
	}
	if strings.Contains(logs, `"msg":"lock taken"`) && !strings.Contains(logs, "read-only pass: ") {
		t.Errorf("up --dev again took the lock, and no read-only pass said why:\n%s", lastLines(logs, 20))
	}
	d.controllerCAPinned(rep, "pinned in the Swarm config")

	// status --stacks: every service of the three stacks with all its tasks running (the job: completed)
	code, out, errs := cli(t, "status", "--stacks", "--prefix", d.prefix, "--env-file", d.envFile, "-o", "json")
	if code != 0 {
		t.Fatalf("status --stacks: exit %d\n%s\n%s", code, out, lastLines(errs, 20))
	}
	st := report(t, out)
	statusNotes := strings.Join(st.Steps[len(st.Steps)-1].Notes, "\n")
	for _, svc := range []string{"spire_spire-server", "spire_spire-agent-launcher", "keycloak_keycloak-db", "keycloak_keycloak",
		"openziti_ziti-controller", "openziti_ziti-router", "openziti_router-enrol", "openziti_bootstrap"} {
		line := ""
		for _, l := range strings.Split(statusNotes, "\n") {
			if strings.HasPrefix(l, d.prefix+svc+" ") {
				line = l
			}
		}
		if !strings.Contains(line, " 1/1 ") || strings.Contains(line, "last error") {
			t.Errorf("status --stacks: service %s%s: %q; want 1/1 and no error\n%s", d.prefix, svc, line, statusNotes)
		}
	}

	d.workloadIdentity()
	d.agentReachesDockerOnlyThroughItsProxy()
	d.routerHoldsNoAdminCredential()
	d.backupRoundTrip()

	// the bootstrap once more, on converged systems: one Swarm write to start it, none by the job (up hands its
	// lock over to the job: were it kept, the job would wait for it until up timed out)
	t0 = time.Now()
	rep = d.run("up --dev --rerun-bootstrap", d.up("--rerun-bootstrap")...)
	if rep.MutatingCalls != 1 {
		t.Errorf("--rerun-bootstrap made %d mutating call(s), want 1 (the job's force update): %v", rep.MutatingCalls, rep.Writes)
	}
	if w := d.jobWrites(rep); w != "0" {
		t.Errorf("the bootstrap run again on converged systems made %s mutating call(s)", w)
	}
	t.Logf("bootstrap re-run on converged systems: %s", time.Since(t0).Round(time.Millisecond))

	d.jobWaitsForTheLock()
	d.oidcLogin()
	d.changedRealmKeepsKeycloak(ctx)

	// down --volumes: nothing of ours is left
	t0 = time.Now()
	rep = d.run("down --volumes", append([]string{"down", "--volumes"}, d.common...)...)
	if l := d.leftovers(); l != "" {
		t.Errorf("after down --volumes: %s", l)
	}
	t.Logf("down --volumes: %s, %d mutating call(s)", time.Since(t0).Round(time.Millisecond), rep.MutatingCalls)
}

// jobWaitsForTheLock holds the Swarm's apply lock as an operator's apply would, starts the bootstrap job again
// (a force update, as `docker service update --force` does), and checks that the job waits, naming the holder,
// and completes, writing nothing, once the lock is released: the job and an operator never write at once.
func (d *devSystem) jobWaitsForTheLock() {
	t := d.tb
	t.Helper()
	ctx := testutil.Context(t, 5*time.Minute)
	// the backup service takes the lock for each of its runs: wait for it
	held, err := lock.Acquire(ctx, lock.NewSwarm(d.c, lock.Name, "test engine"), lock.Options{TTL: time.Minute, Wait: 2 * time.Minute})
	if err != nil {
		t.Fatalf("take the apply lock: %v", err)
	}
	defer held.Release(context.Background())
	name := d.names[stacks.OpenZiti] + "_" + stacks.BootstrapService
	svcs, err := d.c.Services(ctx, d.names[stacks.OpenZiti])
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(svcs, func(s swarm.Service) bool { return s.Spec.Name == name })
	if i < 0 || svcs[i].JobStatus == nil {
		t.Fatalf("no job service %s", name)
	}
	svc := svcs[i]
	spec := svc.Spec
	spec.TaskTemplate.ForceUpdate++
	if _, err := d.c.UpdateService(ctx, svc.ID, svc.Version.Index, spec); err != nil {
		t.Fatalf("start the job again: %v", err)
	}
	iteration := svc.JobStatus.JobIteration.Index + 1
	var waiting string
	err = wait.For(ctx, wait.Target{What: "the job to wait for the lock", Where: name, Deadline: 2 * time.Minute, Initial: time.Second, Max: 2 * time.Second},
		func(ctx context.Context) error {
			tasks, err := d.c.Tasks(ctx, svc.ID)
			if err != nil {
				return err
			}
			for _, tk := range tasks {
				if tk.JobIteration == nil || tk.JobIteration.Index < iteration {
					continue
				}
				if tk.Status.State == swarm.TaskStateComplete {
					return wait.Permanent(fmt.Errorf("the job completed while the test held the lock"))
				}
				_, errs, err := d.c.TaskLogs(ctx, tk.ID, 50)
				if err != nil {
					return err
				}
				for _, l := range strings.Split(errs, "\n") {
					if strings.Contains(l, "waiting for the lock") && strings.Contains(l, held.Holder().Run) {
						waiting = l
						return nil
					}
				}
			}
			return fmt.Errorf("no task of run %d says it waits for the lock held by %s", iteration, held.Holder().Run)
		})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the job waits: %s", waiting)
	if err := held.Release(ctx); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	var run stack.JobRun
	err = wait.For(ctx, wait.Target{What: "the job to complete once the lock is free", Where: name, Deadline: 2 * time.Minute, Initial: time.Second, Max: 2 * time.Second},
		func(ctx context.Context) error {
			st := &stacks.Stack{Name: stacks.OpenZiti, Namespace: d.names[stacks.OpenZiti]}
			run, err = stack.InspectJob(ctx, d.c, st, stacks.BootstrapService)
			if err == nil && run.Iteration < iteration {
				err = fmt.Errorf("run %d is not the new one", run.Iteration)
			}
			return err
		})
	if err != nil {
		t.Fatal(err)
	}
	if w := jobWrites(strings.Split(run.Output, "\n")); w != "0" {
		t.Errorf("the job run after the lock was released: %q mutating call(s), want 0\n%s", w, run.Output)
	}
	t.Logf("the job completed %s after the lock was released", time.Since(t0).Round(100*time.Millisecond))
}

// oidcLogin does what a user of the deployed system does: gets a token from Keycloak at its published port for
// the realm's client, and logs in to the controller's published edge API with it. That works only if the job
// configured the signer and auth policy, Keycloak issues tokens under its public URL (KEYCLOAK_PUBLIC_URL) and
// not the address the request came in on, and the controller reaches Keycloak's keys inside the Swarm. The
// test gives the client the password grant and makes the user; the identity is matched by e-mail.
func (d *devSystem) oidcLogin() {
	ctx := testutil.Context(d.tb, 3*time.Minute)
	d.oidcLoginAs(ctx, d.oidcUser(ctx))
}

// oidcUser is a user of the job's realm (and the OpenZiti identity matched by its e-mail) who can log in.
type oidcUser struct{ name, email, password string }

// oidcUser makes a user of the job's realm and its OpenZiti identity (matched by e-mail).
func (d *devSystem) oidcUser(ctx context.Context) oidcUser {
	t := d.tb
	t.Helper()
	u := oidcUser{name: "alice-" + testutil.RandHex(t, 3), password: "Pw-" + testutil.RandHex(t, 8)}
	u.email = u.name + "@example.org"
	_, err := d.keycloakAdmin(ctx).CreateUser(ctx, "openziti", keycloak.User{Username: u.name, Email: u.email, FirstName: "Alice", LastName: "Test",
		Enabled: true, EmailVerified: true}, config.NewSecret(u.password))
	testutil.Must(t, err)
	_, err = d.zitiAdmin(ctx).CreateIdentity(ctx, ziti.Identity{Name: u.name, ExternalID: u.email})
	testutil.Must(t, err)
	return u
}

// oidcLoginAs gives the realm's client the password grant, asks Keycloak for u's token and logs in to the controller's edge API with it.
func (d *devSystem) oidcLoginAs(ctx context.Context, u oidcUser) {
	t := d.tb
	t.Helper()
	realm, clientID := "openziti", "openziti" // the defaults the job configured
	kc := d.keycloakAdmin(ctx)
	kcURL := kc.URL()
	// the password grant, for the test (a bootstrap run turns it off again: the job's declaration has it off)
	cl, err := kc.GetClient(ctx, realm, clientID)
	testutil.Must(t, err)
	if !cl.DirectAccessGrants {
		cl.DirectAccessGrants = true
		testutil.Must(t, kc.UpdateClient(ctx, realm, *cl, keycloak.ClientDirectAccessGrants))
	}
	z := d.zitiAdmin(ctx)
	zURL := z.URL()
	tok, err := kc.Token(ctx, realm, clientID, "", u.name, u.password)
	if err != nil {
		t.Fatalf("Keycloak token of %s at %s: %v", u.name, kcURL, err)
	}
	claims := testutil.Claims(t, tok)
	if want := "http://localhost:" + d.keycloakPort + "/realms/" + realm; claims["iss"] != want {
		t.Errorf("token issuer %v, want Keycloak's public URL %s (the token was asked for at %s)", claims["iss"], want, kcURL)
	}
	var sess ziti.Session
	err = wait.For(ctx, wait.Target{What: "an OIDC login to the controller", Where: zURL.String(), Deadline: 30 * time.Second, Initial: 500 * time.Millisecond, Max: 2 * time.Second},
		func(ctx context.Context) error {
			var err error
			sess, err = z.ClientAPI().AuthenticateJWT(ctx, tok)
			return err
		})
	if err != nil {
		t.Fatalf("log in to OpenZiti with a Keycloak token (claims %v): %v", claims, err)
	}
	if sess.IdentityName != u.name {
		t.Errorf("logged in as %q, want %s", sess.IdentityName, u.name)
	}
	t.Logf("OIDC login through the deployed stacks: token of %s from %s accepted by %s as identity %s", claims["iss"], kcURL, zURL, sess.IdentityName)
	// the controller verified those keys over TLS inside the Swarm (a certificate of another CA fails the login:
	// TestJWKSOverTLSTrustsKeycloaksCAOnly)
	signers, err := z.ListExtJWTSigners(ctx, `name="keycloak"`)
	testutil.Must(t, err)
	if len(signers) != 1 || !strings.HasPrefix(signers[0].JWKSEndpoint, "https://keycloak:8443/") {
		t.Errorf("the signer's JWKS endpoint: %+v, want https://keycloak:8443/…", signers)
	}
}

// sampleProcesses records the command line of every process on this host, as `ps` shows them to any user
// (the stacks' containers are processes of this host too), every 200 ms until the returned function is called,
// which returns the distinct lines and how many samples were taken.
func sampleProcesses(t testing.TB) func() ([]string, int) {
	t.Helper()
	seen := map[string]bool{}
	var mu sync.Mutex
	samples := 0
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			out, err := exec.Command("ps", "-e", "-ww", "-o", "args=").Output()
			mu.Lock()
			if err == nil {
				samples++
				for _, l := range strings.Split(string(out), "\n") {
					seen[strings.TrimSpace(l)] = true
				}
			}
			mu.Unlock()
			select {
			case <-done:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return func() ([]string, int) {
		close(done)
		<-stopped
		mu.Lock()
		defer mu.Unlock()
		lines := make([]string, 0, len(seen))
		for l := range seen {
			lines = append(lines, l)
		}
		slices.Sort(lines)
		return lines, samples
	}
}

// noSecretInProcesses checks the command lines sampled during an up --dev for the generated secrets of its
// state directory (passwords, and the lines of the SPIRE upstream key's PEM body).
func (d *devSystem) noSecretInProcesses(lines []string, samples int) {
	t := d.tb
	t.Helper()
	secrets := map[string]string{}
	for _, f := range devenv.Files {
		if strings.HasSuffix(f.Name, ".crt") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(d.state, f.Name))
		if err != nil {
			t.Fatal(err)
		}
		for i, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if l = strings.TrimSpace(l); len(l) >= 8 && !strings.HasPrefix(l, "-----") {
				secrets[fmt.Sprintf("%s (line %d)", f.Name, i+1)] = l
			}
		}
	}
	if samples < 10 || !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, "ziti") && strings.Contains(l, "run") }) {
		t.Fatalf("the process scan saw too little (%d samples, %d lines, no ziti process): it would miss things", samples, len(lines))
	}
	found := 0
	for name, s := range secrets {
		for _, l := range lines {
			if !strings.Contains(l, s) {
				continue
			}
			found++
			t.Errorf("%s appears in a process's command line on the host during up --dev: %.60q…", name, l)
		}
	}
	t.Logf("ps during up --dev: %d samples, %d distinct command lines, %d with one of %d secrets", samples, len(lines), found, len(secrets))
}

// agentReachesDockerOnlyThroughItsProxy checks the node's SPIRE agent (which workloadIdentity showed attests
// workloads by their containers' labels): see agentDockerOnlyThroughProxy.
func (d *devSystem) agentReachesDockerOnlyThroughItsProxy() {
	ns := d.names[stacks.Spire]
	agentDockerOnlyThroughProxy(d.tb, d.c, ns+"_spire-agent", ns+"_spire-agent-docker", d.prefix+"agent-escape")
	launcherDockerOnlyThroughProxy(d.tb, d.c, ns, d.prefix+"launcher-escape")
}

// launcherDockerOnlyThroughProxy checks the agent launcher's task on c's node (stack ns): it mounts no socket of
// the Engine's, only the volume spire-agent-launcher-docker where its proxy (policy agent-launcher) serves; that
// proxy refused none of the launcher's calls (it made the agent, which attests), inspects the agent, and refuses
// anything else (see onlyThroughProxy; a container named evil among them) before it reaches the Engine.
func launcherDockerOnlyThroughProxy(t testing.TB, c *docker.Client, ns, evil string) {
	t.Helper()
	ctx := testutil.Context(t, 2*time.Minute)
	vol := ns + "_spire-agent-launcher-docker"
	launcher := runningTask(t, c, ns, ns+"_spire-agent-launcher")
	noEngineSocket(t, launcher, vol, "/run/zb-docker")
	proxy := runningTask(t, c, ns, ns+"_spire-agent-launcher-docker")
	if o, e, err := c.ContainerLogs(ctx, proxy.ID); err != nil || strings.Contains(o+e, "socket proxy: refused") {
		t.Errorf("the launcher's proxy refused a call of the launcher's (%v):\n%s%s", err, o, e)
	}
	via := onlyThroughProxy(t, c, launcher, vol, "agent-launcher", evil, proxy.ID)
	if _, err := via.InspectContainer(ctx, ns+"_spire-agent"); err != nil {
		t.Errorf("inspect the agent through the launcher's proxy: %v", err)
	}
	// the proxy answered the refusals already; its log line reaches the container's log a moment later (the
	// Engine copies a container's output asynchronously: on a loaded machine the read came first once)
	var logs string
	err := wait.For(ctx, wait.Target{What: "the refusals in the launcher's proxy's log", Where: proxy.ID, Deadline: time.Minute},
		func(ctx context.Context) error {
			o, e, err := c.ContainerLogs(ctx, proxy.ID)
			if logs = o + e; err == nil && !strings.Contains(logs, "socket proxy: refused") {
				err = errors.New(`no line "socket proxy: refused"`)
			}
			return err
		})
	if err != nil {
		t.Errorf("the launcher's proxy's log does not show the refusals: %v\n%s", err, logs)
	}
}

// runningTask is the running container of a task of service on c's node (stack ns).
func runningTask(t testing.TB, c *docker.Client, ns, service string) docker.ContainerInfo {
	t.Helper()
	ctx := testutil.Context(t, time.Minute)
	list, err := c.Containers(ctx, ns)
	testutil.Must(t, err)
	for _, k := range list {
		if strings.HasPrefix(k.Name, service+".") && k.State == "running" {
			info, err := c.InspectContainer(ctx, k.ID)
			testutil.Must(t, err)
			return info
		}
	}
	t.Fatalf("no running task of %s on this node: %+v", service, list)
	return docker.ContainerInfo{}
}

// agentDockerOnlyThroughProxy checks the SPIRE agent container agentName on c's node: it mounts no socket of the
// Engine's, only the volume vol where its proxy of policy spire-agent serves (the launcher in the Swarm, the
// service spire-agent-docker in a compose project), and that proxy inspects containers but refuses anything else
// (see onlyThroughProxy; a container named evil among them) before it reaches the Engine.
func agentDockerOnlyThroughProxy(t testing.TB, c *docker.Client, agentName, vol, evil string) {
	t.Helper()
	ctx := testutil.Context(t, 2*time.Minute)
	agent, err := c.InspectContainer(ctx, agentName)
	testutil.Must(t, err)
	noEngineSocket(t, agent, vol, agentlauncher.DockerDir)
	via := onlyThroughProxy(t, c, agent, vol, "spire-agent", evil, agent.ID)
	if _, err := via.InspectContainer(ctx, agent.ID); err != nil {
		t.Errorf("inspect a container through the agent's proxy (what its attestor does): %v", err)
	}
}

// noEngineSocket checks that container k binds no Engine socket, and has the volume vol read-only at dir.
func noEngineSocket(t testing.TB, k docker.ContainerInfo, vol, dir string) {
	t.Helper()
	var viaProxy bool
	for _, m := range k.Mounts {
		if !m.Volume && (strings.Contains(m.Source, "docker.sock") || slices.Contains([]string{"/", "/run", "/var/run"}, m.Source)) {
			t.Errorf("the container %s mounts the Engine's socket: %s at %s", k.Name, m.Source, m.Target)
		}
		viaProxy = viaProxy || m.Volume && m.Source == vol && m.Target == dir && m.ReadOnly
	}
	if !viaProxy {
		t.Errorf("the container %s's mounts %+v: no read-only volume %s at %s", k.Name, k.Mounts, vol, dir)
	}
}

// onlyThroughProxy checks that the proxy of policy serving in the volume vol, called as container k calls it (its
// socket in the volume, on c's node), refuses to create a container named evil (host PID namespace, the node's
// root bound), to list secrets and to stop the container stop, before they reach the Engine. It returns a client
// of the proxy.
func onlyThroughProxy(t testing.TB, c *docker.Client, k docker.ContainerInfo, vol, policy, evil, stop string) *docker.Client {
	t.Helper()
	ctx := testutil.Context(t, 2*time.Minute)
	v, err := c.InspectVolume(ctx, vol)
	testutil.Must(t, err)
	via, err := docker.New("unix://"+path.Join(v.Mountpoint, agentlauncher.ProxySocketName), nil)
	testutil.Must(t, err)
	t.Cleanup(func() { via.Close() })
	refused := func(what string, err error, method string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), "socket proxy (policy "+policy+") refuses "+method+" ") {
			t.Errorf("%s through the proxy of %s: %v; want the proxy's refusal", what, k.Name, err)
		}
	}
	_, err = via.CreateContainer(ctx, docker.ContainerSpec{Name: evil, Image: k.Image, HostPID: true,
		Mounts: []docker.Mount{{Source: "/", Target: "/host"}}})
	refused("create a container", err, "POST")
	if _, err := c.InspectContainer(ctx, evil); !docker.IsNotFound(err) {
		t.Errorf("the refused container reached the Engine: %v", err)
		_ = c.ForceRemoveContainer(context.WithoutCancel(ctx), evil)
	}
	_, err = via.Secrets(ctx, "")
	refused("list secrets", err, "GET")
	refused("stop "+stop, via.StopContainer(ctx, stop, time.Second), "POST")
	t.Logf("%s: no Engine socket, its proxy (policy %s, volume %s) refuses create, secrets and stop", k.Name, policy, vol)
	return via
}
