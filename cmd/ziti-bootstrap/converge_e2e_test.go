package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/policies"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/spireca"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/stack"
)

// In the Swarm, with nobody running apply after up --dev, the OpenZiti stack's converge service:
//   - becomes healthy once it has converged (after the bootstrap job); the default router policies exist;
//   - puts back an auth policy the tool made and an operator deleted by hand;
//   - binds a new SPIRE root in OpenZiti, verified: the operator gives up a new SPIRE_UPSTREAM_CA_CERT and key,
//     which changes the SPIRE stack only (no service of the OpenZiti stack is updated, no bootstrap task runs: the
//     root key stays with the SPIRE stack's CA signer), then has SPIRE prepare a CA under the new root; a workload
//     with an SVID of the new root logs in, and one with an SVID of the old root too, while SPIRE's bundle holds it;
//   - removes the old root's CA once SPIRE's bundle drops it (the upstream authority tainted and revoked), after
//     which the old SVID no longer logs in;
//   - and its metrics count the bundle changes, the drift and the writes.
func TestConvergeServiceE2E(t *testing.T) {
	t.Parallel() // beside the other Swarm end-to-end tests: each waits for its Swarm's lock
	d := newDevSystem(t, false)
	d.setEnv("ZB_CONVERGE_INTERVAL", "20s")
	d.run("up --dev", d.up()...)
	ctx := testutil.Context(t, 25*time.Minute)
	ctr := d.taskContainer(ctx, d.names[stacks.OpenZiti]+"_converge")
	exec1 := func(args ...string) string {
		out, _ := exec.CommandContext(ctx, "docker", append([]string{"exec", ctr, "ziti-bootstrap", "converge"}, args...)...).CombinedOutput()
		return string(out)
	}
	health := func() string { return exec1("healthcheck") }
	metric := func(name string) float64 {
		for _, l := range strings.Split(exec1("metrics"), "\n") {
			if v, ok := strings.CutPrefix(l, name+" "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				return f
			}
		}
		return 0
	}
	until := func(what string, bound time.Duration, cond func() bool) time.Duration {
		t.Helper()
		t0 := time.Now()
		for !cond() {
			if time.Since(t0) > bound {
				t.Fatalf("%s: not within %s (converge health: %s)", what, bound, health())
			}
			time.Sleep(500 * time.Millisecond)
		}
		return time.Since(t0)
	}
	until("the converge service converged", 5*time.Minute, func() bool { return strings.HasPrefix(health(), "ok: last converged") })

	z := d.zitiAdmin(ctx)
	erps, err := z.ListEdgeRouterPolicies(ctx, ziti.FilterEq("name", policies.DefaultEdgeRouterPolicy))
	testutil.Must(t, err)
	serps, err := z.ListServiceEdgeRouterPolicies(ctx, ziti.FilterEq("name", policies.DefaultServiceEdgeRouterPolicy))
	testutil.Must(t, err)
	if len(erps) != 1 || len(serps) != 1 {
		t.Errorf("default router policies: %d %s, %d %s; want one each", len(erps), policies.DefaultEdgeRouterPolicy, len(serps), policies.DefaultServiceEdgeRouterPolicy)
	}

	// drift: an object the tool made, deleted by hand, comes back
	authPolicy := func() (string, bool) {
		aps, err := z.ListAuthPolicies(context.Background(), ziti.FilterEq("name", "keycloak-users"))
		if err != nil || len(aps) != 1 {
			return "", false
		}
		return aps[0].ID, true
	}
	id, ok := authPolicy()
	if !ok {
		t.Fatal("no auth policy keycloak-users after up")
	}
	drift := metric("ziti_bootstrap_converge_drift_changes_total")
	testutil.Must(t, z.DeleteAuthPolicy(ctx, id))
	took := until("the deleted auth policy back", 3*time.Minute, func() bool { _, ok := authPolicy(); return ok })
	t.Logf("auth policy deleted by hand: back after %s in the Swarm (ZB_CONVERGE_INTERVAL=20s)", took.Round(100*time.Millisecond))
	until("the metrics to count the repair", time.Minute, func() bool { return metric("ziti_bootstrap_converge_drift_changes_total") > drift })

	// a workload with an SVID of the first root
	rootA := readRoot(t, filepath.Join(d.state, "spire_upstream_ca.crt"))
	sp := d.spireAdmin(ctx)
	oldSVID := mintSVID(t, ctx, sp, "spiffe://openziti.local/e2e/old-root")
	d.enrolAndLogIn(ctx, z, oldSVID, "with an SVID of the first root")
	sp.Close()

	// rotation: a new root and key for up, which changes the SPIRE stack only
	before := d.openZitiServices(ctx)
	job := d.service(ctx, d.names[stacks.OpenZiti]+"_"+stacks.BootstrapService)
	jobTasks, err := d.c.Tasks(ctx, job.ID)
	testutil.Must(t, err)
	certPath, keyPath := filepath.Join(d.state, "spire_upstream_ca.crt"), filepath.Join(d.state, "spire_upstream_ca.key")
	testutil.Must(t, testbed.WriteRootCA(certPath, keyPath, "ziti-bootstrap e2e SPIRE root B"))
	testutil.Must(t, os.Chmod(certPath, 0o600))
	rootB := readRoot(t, certPath)
	rep := d.run("up --dev with a new SPIRE root", d.up()...)
	for _, s := range rep.Steps {
		if s.MutatingCalls > 0 && s.Name != stack.StepName(stacks.Spire) {
			t.Errorf("up with a new SPIRE root: step %s made %d mutating call(s); want the SPIRE stack's only", s.Name, s.MutatingCalls)
		}
	}
	for _, s := range rep.Steps { // (an unchanged job's notes repeat its last run's output: its tasks are counted below)
		if s.Name == jobStep && s.Status != steps.Unchanged {
			t.Errorf("up with a new SPIRE root: the bootstrap job %s; want it unchanged", s.Status)
		}
	}

	// SPIRE publishes the new root when it prepares its next CA (here at once; by itself at half its CA's life)
	spireCtr := d.taskContainer(ctx, d.names[stacks.Spire]+"_spire-server")
	spireCLI := func(args ...string) string {
		t.Helper()
		out, err := exec.CommandContext(ctx, "docker", append([]string{"exec", spireCtr, "/opt/spire/bin/spire-server"},
			append(args, "-socketPath", "/tmp/spire-server/private/api.sock")...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("spire-server %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	bundleChanges := metric("ziti_bootstrap_converge_bundle_changes_total")
	until("SPIRE healthy after the update", 3*time.Minute, func() bool {
		return exec.CommandContext(ctx, "docker", "exec", spireCtr, "/opt/spire/bin/spire-server", "healthcheck",
			"-socketPath", "/tmp/spire-server/private/api.sock").Run() == nil
	})
	spireCLI("localauthority", "x509", "prepare")
	caOf := func(root *x509.Certificate) (ziti.CA, bool) {
		cas, err := z.ListCAs(context.Background(), ziti.FilterEq("name", spireca.CAName(spireca.DefaultNamePrefix, root)))
		if err != nil || len(cas) != 1 {
			return ziti.CA{}, false
		}
		return cas[0], true
	}
	took = until("the new root bound and verified in OpenZiti", 3*time.Minute, func() bool { ca, ok := caOf(rootB); return ok && ca.IsVerified })
	t.Logf("new SPIRE root published (localauthority x509 prepare returned) → bound and verified in OpenZiti by the converge service: %s", took.Round(100*time.Millisecond))
	if got := metric("ziti_bootstrap_converge_bundle_changes_total"); got <= bundleChanges {
		t.Errorf("bundle_changes_total %v, before the rotation %v: the bundle watch did not see the new root", got, bundleChanges)
	}
	t.Logf("converge passes by trigger: start %v, interval %v, trust-bundle-changed %v, retry %v",
		metric(`ziti_bootstrap_converge_triggers_total{reason="start"}`), metric(`ziti_bootstrap_converge_triggers_total{reason="interval"}`),
		metric(`ziti_bootstrap_converge_triggers_total{reason="trust-bundle-changed"}`), metric(`ziti_bootstrap_converge_triggers_total{reason="retry"}`))
	if ca, ok := caOf(rootA); !ok || !ca.IsVerified {
		t.Errorf("the first root's CA went while SPIRE's bundle holds that root: %+v, %v", ca, ok)
	}

	// the new CA becomes SPIRE's active one (an intermediate rotation: OpenZiti trusts the roots, so nothing of
	// it changes): a new SVID chains to the new root
	casBefore, writesBefore := zitiCAs(ctx, t, z), metric("ziti_bootstrap_converge_writes_total")
	prepared := x509AuthorityIDs(t, spireCLI("localauthority", "x509", "show", "-output", "json"))
	spireCLI("localauthority", "x509", "activate", "-authorityID", prepared["prepared"])
	sp = d.spireAdmin(ctx)
	defer sp.Close()
	newSVID := mintSVID(t, ctx, sp, "spiffe://openziti.local/e2e/new-root")
	d.enrolAndLogIn(ctx, z, newSVID, "with an SVID of the new root")
	if _, err := z.ClientAPI().AuthenticateCert(ctx, oldSVID); err != nil {
		t.Errorf("an SVID of the first root, while SPIRE's bundle still holds it: %v", err)
	}
	if after, w := zitiCAs(ctx, t, z), metric("ziti_bootstrap_converge_writes_total"); after != casBefore || w != writesBefore {
		t.Errorf("the intermediate rotation changed OpenZiti: CAs %s, then %s; converge writes %v, then %v", casBefore, after, writesBefore, w)
	}

	// the old root leaves SPIRE's bundle (tainted, then revoked): the converge service removes its CA
	skid := hex.EncodeToString(rootA.SubjectKeyId)
	spireCLI("upstreamauthority", "taint", "-subjectKeyID", skid)
	spireCLI("upstreamauthority", "revoke", "-subjectKeyID", skid)
	took = until("the first root's CA removed from OpenZiti", 3*time.Minute, func() bool { _, ok := caOf(rootA); return !ok })
	t.Logf("old root revoked in SPIRE → its CA removed from OpenZiti: %s", took.Round(100*time.Millisecond))
	if _, err := z.ClientAPI().AuthenticateCert(ctx, oldSVID); err == nil {
		t.Errorf("an SVID of the revoked root still logs in")
	}
	if _, err := z.ClientAPI().AuthenticateCert(ctx, newSVID); err != nil {
		t.Errorf("an SVID of the new root after the old one went: %v", err)
	}

	// nothing of the OpenZiti stack changed, no bootstrap task ran, and the same converge container did it all
	if after := d.openZitiServices(ctx); after != before {
		t.Errorf("the OpenZiti stack's services changed during the rotation:\nbefore %s\nafter  %s", before, after)
	}
	if tasks, err := d.c.Tasks(ctx, job.ID); err != nil || len(tasks) != len(jobTasks) {
		t.Errorf("bootstrap job tasks: %d before the rotation, %d after (%v)", len(jobTasks), len(tasks), err)
	}
	if now := d.taskContainer(ctx, d.names[stacks.OpenZiti]+"_converge"); now != ctr {
		t.Errorf("the converge service's container changed: %s, then %s", ctr, now)
	}
	t.Logf("converge metrics: bundle changes %v, drift %v, writes %v, passes converged %v failed %v busy %v",
		metric("ziti_bootstrap_converge_bundle_changes_total"), metric("ziti_bootstrap_converge_drift_changes_total"),
		metric("ziti_bootstrap_converge_writes_total"), metric(`ziti_bootstrap_converge_runs_total{result="converged"}`),
		metric(`ziti_bootstrap_converge_runs_total{result="failed"}`), metric(`ziti_bootstrap_converge_runs_total{result="busy"}`))
}

// openZitiServices sums up the OpenZiti stack's services: name and spec version of each.
func (d *devSystem) openZitiServices(ctx context.Context) string {
	svcs, err := d.c.Services(ctx, d.names[stacks.OpenZiti])
	testutil.Must(d.tb, err)
	var out []string
	for _, s := range svcs {
		out = append(out, fmt.Sprintf("%s@%d", s.Spec.Name, s.Version.Index))
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

// enrolAndLogIn enrols the holder of cert in OpenZiti through the SPIRE CA, then logs in with it.
func (d *devSystem) enrolAndLogIn(ctx context.Context, z *ziti.Client, cert tls.Certificate, what string) {
	d.tb.Helper()
	api := z.ClientAPI()
	if err := api.EnrollWithCA(ctx, cert, "e2e-"+testutil.RandHex(d.tb, 3)); err != nil {
		d.tb.Fatalf("a workload %s enrols: %v", what, err)
	}
	if _, err := api.AuthenticateCert(ctx, cert); err != nil {
		d.tb.Fatalf("a workload %s logs in: %v", what, err)
	}
}

// x509AuthorityIDs reads `spire-server localauthority x509 show -output json`: slot (active, prepared, old) →
// authority ID.
func x509AuthorityIDs(t *testing.T, out string) map[string]string {
	var doc map[string]map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("localauthority x509 show: %v\n%s", err, out)
	}
	ids := map[string]string{}
	for slot, a := range doc {
		ids[slot], _ = a["authority_id"].(string)
	}
	return ids
}

// zitiCAs lists OpenZiti's CAs: name, id and whether verified, sorted.
func zitiCAs(ctx context.Context, t *testing.T, z *ziti.Client) string {
	t.Helper()
	cas, err := z.ListCAs(ctx, "")
	if err != nil {
		t.Fatalf("list OpenZiti's CAs: %v", err)
	}
	var out []string
	for _, ca := range cas {
		out = append(out, fmt.Sprintf("%s(%s, verified %t)", ca.Name, ca.ID, ca.IsVerified))
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}
