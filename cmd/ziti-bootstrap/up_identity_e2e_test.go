package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
)

// e2eWorkloadID is the SPIFFE ID the end-to-end test's workload service is registered with (e2eEntries), with an
// X.509-SVID TTL short enough that it rotates during the test.
const (
	e2eWorkloadID  = "spiffe://openziti.local/e2e/workload"
	e2eWorkloadTTL = 60 // seconds
)

// e2eEntries is the SPIRE_ENTRIES_FILE of the end-to-end test: the workload service (by its Swarm service name,
// which the engine sets on its tasks), in addition to the built-in entries. %s is the service's name.
const e2eEntries = `entries:
  - spiffeId: ` + e2eWorkloadID + `
    selectors: ["docker:label:com.docker.swarm.service.name:%s"]
    x509SvidTtl: 60
`

// workloadEvent is one line of `ziti-bootstrap workload`'s output.
type workloadEvent struct {
	Time           time.Time `json:"time"`
	Event          string    `json:"event"`
	SpiffeID       string    `json:"spiffeId"`
	Serial         string    `json:"serial"`
	IdentityID     string    `json:"identityId"`
	IdentityName   string    `json:"identityName"`
	ExternalID     string    `json:"externalId"`
	RoleAttributes []string  `json:"roleAttributes"`
	Error          string    `json:"error"`
}

// workloadService is a service of ziti-bootstrap's image running `ziti-bootstrap workload` against the agent
// socket of its node, on the OpenZiti stack's network.
func (d *devSystem) workloadService(name string) swarm.ServiceSpec {
	zb := d.images["ZB_IMAGE"]
	oz := d.names[stacks.OpenZiti]
	one := uint64(1)
	return swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: name},
		Mode:        swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &one}},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{
				Image: zb,
				Args:  []string{"workload"},
				Env: []string{
					"SPIFFE_ENDPOINT_SOCKET=unix:///run/spire/agent/public/api.sock",
					"ZITI_CTRL_URL=https://ziti-controller:1280",
					"ZITI_CA_TOFU=true",
				},
				Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: d.names[stacks.Spire] + "_spire-agent-socket",
					Target: "/run/spire/agent/public", ReadOnly: true}},
			},
			Networks:      []swarm.NetworkAttachmentConfig{{Target: oz + "_ziti"}},
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionNone},
		},
		EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR},
	}
}

// workloadIdentity runs the identity flow the system exists for, inside the Swarm: a workload service gets the
// SVID of its registration entry from its node's SPIRE agent (a plain container with the host's PID namespace,
// kept by the launcher service), is auto-enrolled in OpenZiti through the verified SPIRE CA, authenticates with
// the certificate, and authenticates afresh with the next certificate when its SVID rotates; a service that no
// entry selects, mounting the same socket, is refused; and its SVID cannot buy a router enrolment token.
func (d *devSystem) workloadIdentity() {
	t := d.tb
	t.Helper()
	ctx := testutil.Context(t, 6*time.Minute)
	good := d.workloadName
	bad := d.prefix + "unregistered"
	for _, name := range []string{good, bad} {
		testbed.CreateService(t, d.c, d.workloadService(name))
	}
	auths := d.authentications(ctx, good, 2)
	first := auths[0]
	if first.SpiffeID != e2eWorkloadID || first.ExternalID != e2eWorkloadID || !slices.Contains(first.RoleAttributes, "spire-workloads") {
		t.Errorf("the workload authenticated as %+v; want externalId %s and the SPIRE CA's role spire-workloads", first, e2eWorkloadID)
	}
	if auths[1].IdentityID != first.IdentityID {
		t.Errorf("after its SVID rotated the workload is identity %s, before %s", auths[1].IdentityID, first.IdentityID)
	}
	t.Logf("workload: authenticated as %s (%s) with certificate %s, then with %s after rotation", first.IdentityName, first.ExternalID, first.Serial, auths[1].Serial)

	// the identity exists in OpenZiti, found by its SPIFFE ID
	z := d.zitiAdmin(ctx)
	ids, err := z.ListIdentities(ctx, fmt.Sprintf(`externalId = "%s"`, e2eWorkloadID))
	testutil.Must(t, err)
	if len(ids) != 1 || ids[0].ID != first.IdentityID {
		t.Errorf("identities with externalId %s: %+v; want exactly %s", e2eWorkloadID, ids, first.IdentityID)
	}

	// no entry selects this one: the agent gives it nothing
	err = wait.For(ctx, wait.Target{What: "the unregistered workload to be refused", Where: bad, Deadline: 2 * time.Minute,
		Initial: 2 * time.Second, Max: 5 * time.Second}, func(ctx context.Context) error {
		evs, err := d.workloadEvents(ctx, bad)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if ev.Event == "authenticated" {
				return wait.Permanent(fmt.Errorf("a service no entry selects authenticated: %+v", ev))
			}
			if strings.Contains(ev.Error, "PermissionDenied") {
				return nil
			}
		}
		return fmt.Errorf("no PermissionDenied in its output yet: %+v", evs)
	})
	if err != nil {
		t.Fatal(err)
	}

	// a workload's SVID buys no router enrolment token
	id := d.taskContainer(ctx, good)
	res, err := d.c.Exec(ctx, id, []string{"ziti-bootstrap", "router-enrol", "--server", "https://router-enrol:8443",
		"--server-id", "spiffe://openziti.local/ziti-bootstrap/router-enrol", "--out", "/tmp/router.jwt"})
	testutil.Must(t, err)
	if res.ExitCode == 0 || !strings.Contains(res.Stdout+res.Stderr, "403") {
		t.Errorf("router-enrol with the workload's SVID: exit %d\n%s%s; want a refusal (403)", res.ExitCode, res.Stdout, res.Stderr)
	}
	for _, name := range []string{good, bad} {
		svc := d.service(ctx, name)
		testutil.Must(t, d.c.RemoveService(ctx, svc.ID))
	}
	// the policy file's identityRules give it roles at the bootstrap's next run (TestUpDevSpireUpgradeE2E checks
	// that); here the bootstrap runs again later and must find nothing to do
	testutil.Must(t, z.DeleteIdentity(ctx, first.IdentityID))
}

// service is the Swarm service called name.
func (d *devSystem) service(ctx context.Context, name string) swarm.Service {
	d.tb.Helper()
	svcs, err := d.c.Services(ctx, "")
	testutil.Must(d.tb, err)
	i := slices.IndexFunc(svcs, func(s swarm.Service) bool { return s.Spec.Name == name })
	if i < 0 {
		d.tb.Fatalf("no service %s", name)
	}
	return svcs[i]
}

// serviceOutput is the standard output of every task of service name.
func (d *devSystem) serviceOutput(ctx context.Context, name string) (string, error) {
	tasks, err := d.c.Tasks(ctx, d.service(ctx, name).ID)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	var errs []error
	for _, tk := range tasks {
		// a task on a node that is down has no logs to give: read the others
		tctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		out, _, err := d.c.TaskLogs(tctx, tk.ID, 500)
		cancel()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		b.WriteString(out)
	}
	if b.Len() == 0 && len(errs) > 0 {
		return "", errors.Join(errs...)
	}
	return b.String(), nil
}

// workloadEvents are the JSON lines `ziti-bootstrap workload` wrote in the tasks of service name.
func (d *devSystem) workloadEvents(ctx context.Context, name string) ([]workloadEvent, error) {
	out, err := d.serviceOutput(ctx, name)
	if err != nil {
		return nil, err
	}
	var evs []workloadEvent
	for _, l := range strings.Split(out, "\n") {
		var ev workloadEvent
		if json.Unmarshal([]byte(strings.TrimSpace(l)), &ev) == nil && ev.Event != "" {
			evs = append(evs, ev)
		}
	}
	return evs, nil
}

// authentications waits until the workload service name has authenticated with n distinct certificates (an SVID
// and its rotations) and returns those authentications.
func (d *devSystem) authentications(ctx context.Context, name string, n int) []workloadEvent {
	d.tb.Helper()
	var auths []workloadEvent
	err := wait.For(ctx, wait.Target{What: fmt.Sprintf("the workload to authenticate with %d SVID(s)", n), Where: name,
		Deadline: time.Duration(n)*e2eWorkloadTTL*time.Second + 3*time.Minute, Initial: 2 * time.Second, Max: 5 * time.Second},
		func(ctx context.Context) error {
			evs, err := d.workloadEvents(ctx, name)
			if err != nil {
				return err
			}
			auths = nil
			serials := map[string]bool{}
			for _, ev := range evs {
				if ev.Event == "authenticated" && !serials[ev.Serial] {
					serials[ev.Serial] = true
					auths = append(auths, ev)
				}
			}
			if len(auths) < n {
				return fmt.Errorf("%d authentication(s) with distinct certificates so far: %+v", len(auths), evs)
			}
			return nil
		})
	testutil.Must(d.tb, err)
	return auths
}

// taskContainer is the container of the running task of service name (on this node).
func (d *devSystem) taskContainer(ctx context.Context, name string) string {
	d.tb.Helper()
	var id string
	err := wait.For(ctx, wait.Target{What: "a running task", Where: name, Deadline: time.Minute, Initial: time.Second, Max: 2 * time.Second},
		func(ctx context.Context) error {
			tasks, err := d.c.Tasks(ctx, d.service(ctx, name).ID)
			if err != nil {
				return err
			}
			for _, tk := range tasks {
				if tk.Status.State == swarm.TaskStateRunning && tk.Status.ContainerStatus != nil {
					id = tk.Status.ContainerStatus.ContainerID
					return nil
				}
			}
			return fmt.Errorf("no running task")
		})
	testutil.Must(d.tb, err)
	return id
}

// routerHoldsNoAdminCredential checks that nothing on the router's node can log in to the management API: its
// service has no secret and no password in its environment, and every value and file of its container fails as
// the admin password; then its volume is removed and it enrols again by itself.
func (d *devSystem) routerHoldsNoAdminCredential() {
	t := d.tb
	t.Helper()
	ctx := testutil.Context(t, 5*time.Minute)
	name := d.names[stacks.OpenZiti] + "_ziti-router"
	cs := d.service(ctx, name).Spec.TaskTemplate.ContainerSpec
	password := d.devSecret("ziti_admin_password").Value()
	if len(cs.Secrets) != 0 {
		t.Errorf("the router's service has secrets %v", cs.Secrets)
	}
	if strings.Contains(strings.Join(append(append(cs.Env, cs.Args...), cs.Command...), "\n"), password) {
		t.Error("the router's service spec holds the admin password")
	}
	// no process of this host shows it on its command line (what `ps` shows)
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range cmdlines {
		if b, err := os.ReadFile(f); err == nil && strings.Contains(string(b), password) {
			t.Errorf("%s holds the admin password: %q", f, strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	// everything the router's container holds, tried as the admin password
	id := d.taskContainer(ctx, name)
	res, err := d.c.Exec(ctx, id, []string{"/bin/bash", "-c", "env; find / -xdev -type f -size -64k \\( -path '/ziti-router/*' -o -path '/run/*' -o -path '/tmp/*' \\) -exec cat {} + 2>/dev/null"})
	testutil.Must(t, err)
	if strings.Contains(res.Stdout, password) {
		t.Fatal("the router's container holds the admin password")
	}
	zURL := d.zitiAdmin(ctx).URL()
	tried := 0
	for _, cand := range candidateSecrets(res.Stdout) {
		if _, err := ziti.New(ctx, ziti.Options{URL: zURL, User: "admin", Password: config.NewSecret(cand), TOFU: true}); err == nil {
			t.Fatalf("a value found in the router's container logs in to the management API as admin")
		}
		tried++
	}
	t.Logf("router: no secret, %d values of its container tried as the admin password, none logs in", tried)

	// its volume removed: it enrols again by itself
	z := d.zitiAdmin(ctx)
	testutil.Must(t, d.c.Scale(ctx, name, 0))
	// Swarm keeps the stopped containers of the service's tasks; they hold the volume
	left, err := d.c.Containers(ctx, d.names[stacks.OpenZiti])
	testutil.Must(t, err)
	for _, c := range left {
		if strings.HasPrefix(c.Name, name+".") {
			testutil.Must(t, d.c.RemoveContainer(ctx, c.ID))
		}
	}
	testutil.Must(t, d.c.RemoveVolume(ctx, d.names[stacks.OpenZiti]+"_ziti-router-data"))
	testutil.Must(t, d.c.Scale(ctx, name, 1))
	d.routerOnline(ctx, z)
}

// routerOnline waits until the stack's edge router is enrolled and connected to the controller.
func (d *devSystem) routerOnline(ctx context.Context, z *ziti.Client) {
	d.tb.Helper()
	err := wait.For(ctx, wait.Target{What: "the edge router enrolled and online", Where: "controller", Deadline: 3 * time.Minute,
		Initial: 2 * time.Second, Max: 5 * time.Second}, func(ctx context.Context) error {
		rs, err := z.ListEdgeRouters(ctx, `name = "ziti-edge-router"`)
		if err != nil {
			return err
		}
		if len(rs) != 1 || !rs[0].IsOnline {
			return fmt.Errorf("edge routers %+v", rs)
		}
		return nil
	})
	testutil.Must(d.tb, err)
}

// candidateSecrets are the distinct words of out that could be a password (8 to 128 printable characters).
func candidateSecrets(out string) []string {
	seen := map[string]bool{}
	var c []string
	for _, f := range strings.FieldsFunc(out, func(r rune) bool { return r == '\n' || r == ' ' || r == '=' || r == '"' }) {
		if len(f) >= 8 && len(f) <= 128 && !seen[f] {
			seen[f] = true
			c = append(c, f)
		}
	}
	if len(c) > 300 {
		c = c[:300]
	}
	return c
}

// TestUpDevSpireUpgradeE2E brings a --dev system made with the previous SPIRE (SPIRE_PREVIOUS_VERSION, 1.13) to
// the current one (1.15): SPIRE cannot migrate a datastore two minor versions old, so up moves to a fresh datastore
// under the same upstream root; the bootstrap job registers the entries again, the agents attest again, and a
// workload gets an SVID and logs in to OpenZiti again. A second up makes no mutating call.
func TestUpDevSpireUpgradeE2E(t *testing.T) {
	t.Parallel() // beside the other Swarm end-to-end tests: each waits for its Swarm's lock, and they mostly wait
	d := newDevSystem(t, false)
	prev := []string{"--set", "SPIRE_SERVER_IMAGE=" + d.images["SPIRE_PREVIOUS_SERVER_IMAGE"],
		"--set", "SPIRE_AGENT_IMAGE=" + d.images["SPIRE_PREVIOUS_AGENT_IMAGE"]}
	if d.images["SPIRE_PREVIOUS_SERVER_IMAGE"] == "" {
		t.Fatal("scripts/images.sh printed no SPIRE_PREVIOUS_SERVER_IMAGE")
	}
	d.run("up --dev (previous SPIRE)", d.up(prev...)...)
	ctx := testutil.Context(t, 10*time.Minute)
	testbed.CreateService(t, d.c, d.workloadService(d.workloadName))
	before := d.authentications(ctx, d.workloadName, 1)[0]

	code, _, errs := cli(t, d.up()...)
	if code != 0 {
		t.Fatalf("up --dev (current SPIRE): exit %d\n%s", code, lastLines(errs, 30))
	}
	// the running workload may log in with an SVID of the new server while up still runs (its SVID rotates every
	// minute), before the bootstrap job gave its identity the policy file's role: only a login of the task started
	// below, after up and its job, shows what the upgraded system gives
	upDone := time.Now()
	if !strings.Contains(errs, "a fresh SPIRE datastore") {
		t.Errorf("up did not say it moves to a fresh SPIRE datastore:\n%s", lastLines(errs, 30))
	}
	server := d.service(ctx, d.names[stacks.Spire]+"_spire-server")
	if img := server.Spec.TaskTemplate.ContainerSpec.Image; img != d.images["SPIRE_SERVER_IMAGE"] {
		t.Errorf("SPIRE server image %s, want %s", img, d.images["SPIRE_SERVER_IMAGE"])
	}
	// the workload, started again, gets an SVID from the new server and logs in as the same identity
	svc := d.service(ctx, d.workloadName)
	spec := svc.Spec
	spec.TaskTemplate.ForceUpdate++
	_, err := d.c.UpdateService(ctx, svc.ID, svc.Version.Index, spec)
	testutil.Must(t, err)
	var after workloadEvent
	err = wait.For(ctx, wait.Target{What: "the workload to log in after the upgrade", Where: d.workloadName, Deadline: 4 * time.Minute,
		Initial: 2 * time.Second, Max: 5 * time.Second}, func(ctx context.Context) error {
		evs, err := d.workloadEvents(ctx, d.workloadName)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if ev.Event == "authenticated" && ev.Serial != before.Serial && ev.Time.After(upDone) {
				after = ev
				return nil
			}
		}
		return fmt.Errorf("no authentication with a new SVID yet")
	})
	testutil.Must(t, err)
	if after.IdentityID != before.IdentityID || after.ExternalID != e2eWorkloadID {
		t.Errorf("after the upgrade the workload is %+v, before %+v", after, before)
	}
	// the bootstrap job that ran for the upgrade found the workload's identity: the policy file's identityRules
	// gave it its role, beside the SPIRE CA's
	if !slices.Contains(after.RoleAttributes, "e2e-workload:workload") || !slices.Contains(after.RoleAttributes, "spire-workloads") {
		t.Errorf("the workload's roles after the bootstrap ran: %v; want the SPIRE CA's spire-workloads and the policy file's e2e-workload:workload", after.RoleAttributes)
	}
	rep := d.run("up --dev again", d.up()...)
	if rep.MutatingCalls != 0 {
		t.Errorf("up --dev after the upgrade made %d mutating call(s): %v", rep.MutatingCalls, rep.Writes)
	}
	svc = d.service(ctx, d.workloadName)
	testutil.Must(t, d.c.RemoveService(ctx, svc.ID))
	d.run("down --volumes", append([]string{"down", "--volumes"}, d.common...)...)
}
