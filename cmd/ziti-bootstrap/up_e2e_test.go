package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/devenv"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/stack"
)

// localImages builds (or finds cached) every local image with scripts/images.sh, ziti-bootstrap's own from this
// checkout included, and returns the stack variables that select them.
func localImages(t *testing.T) map[string]string {
	t.Helper()
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
	return vars
}

// freePort returns a TCP port nothing listens on now, for a port the stacks publish on the node (the test bed's
// own servers hold 1280, 3022, 8180, …).
func freePort(t *testing.T) string {
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
	jobReport      = regexp.MustCompile(`^\| apply: .*; (\d+) mutating call\(s\); converged$`)
)

// TestUpDevE2E is the local development path end to end on the test bed's single-node Swarm: from no stack at
// all, `up --dev` deploys SPIRE → Keycloak → OpenZiti, each gated on the previous one's health, and the bootstrap
// job (ziti-bootstrap's image, inside the Swarm) converges the configuration; `up --dev` again makes no
// mutating call; the job run again on the converged systems makes none either; `down --volumes` leaves nothing
// of the stacks. Stack names carry a random prefix; ports are free ones.
func TestUpDevE2E(t *testing.T) {
	in := testbed.Require(t, "docker")
	testbed.LockSwarmApply(t) // up and down take the Swarm's apply lock
	b := make([]byte, 3)
	rand.Read(b)
	prefix := "zbt" + hex.EncodeToString(b) + "-"
	names := stacks.DefaultNames(prefix)
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	var env strings.Builder
	for k, v := range localImages(t) {
		fmt.Fprintf(&env, "%s=%s\n", k, v)
	}
	fmt.Fprintf(&env, "DOCKER_HOST=%s\nKEYCLOAK_PUBLISHED_PORT=%s\nZITI_CTRL_PUBLISHED_PORT=%s\nZITI_ROUTER_PUBLISHED_PORT=%s\n",
		in.Docker.Host, freePort(t), freePort(t), freePort(t))
	envFile := filepath.Join(dir, ".env")
	if err := os.WriteFile(envFile, []byte(env.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	common := []string{"--prefix", prefix, "--env-file", envFile, "-o", "json"}
	up := append([]string{"up", "--dev", "--state-dir", state}, common...)
	c, err := docker.New(in.Docker.Host, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	leftovers := func() string {
		var out []string
		for _, s := range stacks.All {
			ns := names[s]
			svcs, _ := c.Services(ctx, ns)
			nets, _ := c.Networks(ctx, ns)
			cfgs, _ := c.Configs(ctx, ns)
			secs, _ := c.Secrets(ctx, ns)
			vols, _ := c.Volumes(ctx, ns)
			if n := len(svcs) + len(nets) + len(cfgs) + len(secs) + len(vols); n > 0 {
				out = append(out, fmt.Sprintf("%s: %d service(s), %d network(s), %d config(s), %d secret(s), %d volume(s)",
					ns, len(svcs), len(nets), len(cfgs), len(secs), len(vols)))
			}
		}
		return strings.Join(out, "; ")
	}
	if l := leftovers(); l != "" {
		t.Fatalf("stacks exist before the test: %s", l)
	}
	t.Cleanup(func() {
		if l := leftovers(); l != "" {
			code, out, errs := cli(t, append([]string{"down", "--volumes"}, common...)...)
			t.Logf("cleanup: down --volumes: exit %d\n%s\n%s", code, out, lastLines(errs, 20))
		}
	})
	run := func(what string, args ...string) steps.Report {
		t.Helper()
		t0 := time.Now()
		code, out, errs := cli(t, args...)
		rep := report(t, out)
		for _, s := range rep.Steps {
			t.Logf("%s: %s %s in %s, %d mutating call(s)", what, s.Name, s.Status, time.Duration(s.DurationMS)*time.Millisecond, s.MutatingCalls)
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
		if code != exitcode.OK || !rep.Converged() {
			t.Fatalf("%s: exit %d, converged %v\n%s", what, code, rep.Converged(), lastLines(errs, 30))
		}
		t.Logf("%s: %s, %d mutating call(s)", what, time.Since(t0).Round(time.Millisecond), rep.MutatingCalls)
		return rep
	}
	notes := func(rep steps.Report, step string) []string {
		for _, s := range rep.Steps {
			if s.Name == step {
				return s.Notes
			}
		}
		t.Fatalf("no step %s in the report", step)
		return nil
	}
	jobStep := stack.JobStepName(stacks.OpenZiti, bootstrapService)
	jobWrites := func(rep steps.Report) string {
		for _, n := range notes(rep, jobStep) {
			if m := jobReport.FindStringSubmatch(n); m != nil {
				return m[1]
			}
		}
		t.Fatalf("the bootstrap job's output has no converged apply report: %v", notes(rep, jobStep))
		return ""
	}

	// empty Swarm → up --dev
	t0 := time.Now()
	rep := run("up --dev", up...)
	total := time.Since(t0)
	var order []string
	for _, s := range rep.Steps {
		order = append(order, s.Name)
	}
	if want := "docker/reachable stack/spire stack/keycloak stack/openziti " + jobStep; strings.Join(order, " ") != want {
		t.Errorf("steps %v, want %s", order, want)
	}
	// each stack was created once the previous one was healthy
	var prevHealthy time.Time
	for _, s := range stacks.All {
		svcs, err := c.Services(ctx, names[s])
		if err != nil {
			t.Fatal(err)
		}
		var created, healthy time.Time
		for _, svc := range svcs {
			if created.IsZero() || svc.CreatedAt.Before(created) {
				created = svc.CreatedAt
			}
			if svc.Spec.Mode.ReplicatedJob != nil {
				continue
			}
			tasks, err := c.Tasks(ctx, svc.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, tk := range tasks {
				if tk.Status.State == swarm.TaskStateRunning && tk.Status.Timestamp.After(healthy) {
					healthy = tk.Status.Timestamp
				}
			}
		}
		if created.Before(prevHealthy) {
			t.Errorf("stack %s was created at %s, before the previous stack was healthy (%s)", names[s], created, prevHealthy)
		}
		prevHealthy = healthy
	}
	if w := jobWrites(rep); w == "0" {
		t.Errorf("the first bootstrap made no mutating call: it configured nothing")
	}
	bench := "?"
	for _, n := range notes(rep, jobStep) {
		if m := bootstrapBench.FindStringSubmatch(n); m != nil {
			bench = m[1]
		}
	}
	t.Logf("BENCH up --dev from an empty Swarm to 3 stacks healthy and the bootstrap converged: %s, %d mutating call(s); "+
		"services healthy → bootstrap converged: %s", total.Round(time.Millisecond), rep.MutatingCalls, bench)
	for _, f := range devenv.Files {
		if fi, err := os.Stat(filepath.Join(state, f.Name)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("dev state %s: %v %v", f.Name, fi.Mode(), err)
		}
	}

	// again: nothing to do
	t0 = time.Now()
	rep = run("up --dev again", up...)
	if rep.MutatingCalls != 0 {
		t.Fatalf("up --dev again made %d mutating call(s): %v", rep.MutatingCalls, rep.Writes)
	}
	t.Logf("BENCH no-op re-run of up --dev: %s, 0 mutating calls", time.Since(t0).Round(time.Millisecond))

	// status --stacks: every service of the three stacks with all its tasks running (the job: completed)
	code, out, errs := cli(t, "status", "--stacks", "--prefix", prefix, "--env-file", envFile, "-o", "json")
	if code != 0 {
		t.Fatalf("status --stacks: exit %d\n%s\n%s", code, out, lastLines(errs, 20))
	}
	st := report(t, out)
	statusNotes := strings.Join(st.Steps[len(st.Steps)-1].Notes, "\n")
	for _, svc := range []string{"spire_spire-server", "spire_spire-agent", "keycloak_keycloak-db", "keycloak_keycloak",
		"openziti_ziti-controller", "openziti_ziti-router", "openziti_bootstrap"} {
		line := ""
		for _, l := range strings.Split(statusNotes, "\n") {
			if strings.HasPrefix(l, prefix+svc+" ") {
				line = l
			}
		}
		if !strings.Contains(line, " 1/1 ") || strings.Contains(line, "last error") {
			t.Errorf("status --stacks: service %s%s: %q; want 1/1 and no error\n%s", prefix, svc, line, statusNotes)
		}
	}

	// the bootstrap once more, on converged systems: one Swarm write to start it, none by the job
	t0 = time.Now()
	rep = run("up --dev --rerun-bootstrap", append(up, "--rerun-bootstrap")...)
	if rep.MutatingCalls != 1 {
		t.Errorf("--rerun-bootstrap made %d mutating call(s), want 1 (the job's force update): %v", rep.MutatingCalls, rep.Writes)
	}
	if w := jobWrites(rep); w != "0" {
		t.Errorf("the bootstrap run again on converged systems made %s mutating call(s)", w)
	}
	t.Logf("BENCH bootstrap re-run on converged systems: %s", time.Since(t0).Round(time.Millisecond))

	// down --volumes: nothing of ours is left
	t0 = time.Now()
	rep = run("down --volumes", append([]string{"down", "--volumes"}, common...)...)
	if l := leftovers(); l != "" {
		t.Errorf("after down --volumes: %s", l)
	}
	t.Logf("BENCH down --volumes: %s, %d mutating call(s)", time.Since(t0).Round(time.Millisecond), rep.MutatingCalls)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
