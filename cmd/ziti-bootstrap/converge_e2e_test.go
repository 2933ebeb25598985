package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/policies"
)

// In the Swarm, with nobody running apply after up --dev: the OpenZiti stack's converge service becomes healthy
// once it has converged (after the bootstrap job), the default router policies exist, and an auth policy the tool
// made and an operator deleted by hand comes back.
func TestConvergeServiceE2E(t *testing.T) {
	t.Parallel() // beside the other Swarm end-to-end tests: each waits for its Swarm's lock
	d := newDevSystem(t, false)
	d.setEnv("ZB_CONVERGE_INTERVAL", "5s")
	d.run("up --dev", d.up()...)
	ctx := testutil.Context(t, 15*time.Minute)
	ctr := d.taskContainer(ctx, d.names[stacks.OpenZiti]+"_converge")
	health := func() string {
		out, _ := exec.CommandContext(ctx, "docker", "exec", ctr, "ziti-bootstrap", "converge", "healthcheck").CombinedOutput()
		return string(out)
	}
	until := func(what string, bound time.Duration, cond func() bool) time.Duration {
		t.Helper()
		t0 := time.Now()
		for !cond() {
			if time.Since(t0) > bound {
				t.Fatalf("%s: not within %s (converge health: %s)", what, bound, health())
			}
			time.Sleep(time.Second)
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
	testutil.Must(t, z.DeleteAuthPolicy(ctx, id))
	took := until("the deleted auth policy back", 3*time.Minute, func() bool { _, ok := authPolicy(); return ok })
	t.Logf("auth policy deleted by hand: back after %s in the Swarm (ZB_CONVERGE_INTERVAL=5s); converge health: %s", took.Round(100*time.Millisecond), health())
}
