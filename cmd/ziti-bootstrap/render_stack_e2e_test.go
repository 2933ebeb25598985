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
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/devenv"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
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
