package main

import (
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

// plan --detailed-exitcode on the real servers: 2 while changes are pending (a fresh system, then an object
// deleted by hand), 0 once converged; errors keep codes distinct from 2.
func TestPlanDetailedExitcode(t *testing.T) {
	b := newConvergeBed(t)
	plan := func(want int, extra ...string) steps.Report {
		t.Helper()
		code, out, errs := cli(t, append([]string{"plan", "--detailed-exitcode", "--env-file", b.env, "-o", "json"}, extra...)...)
		if code != want {
			t.Fatalf("plan --detailed-exitcode %v: exit %d, want %d\n%s\n%s", extra, code, want, out, errs)
		}
		if want == exitcode.Pending && strings.Contains(errs, "error:") {
			t.Errorf("pending changes printed as an error: %s", errs)
		}
		return report(t, out)
	}
	if rep := plan(exitcode.Pending); rep.MutatingCalls != 0 || rep.Converged() {
		t.Fatalf("fresh system: converged %v, %d writes", rep.Converged(), rep.MutatingCalls)
	}
	if code, out, errs := cli(t, "apply", "--env-file", b.env); code != exitcode.OK {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errs)
	}
	plan(exitcode.OK)
	id, ok := b.authPolicy()
	if !ok {
		t.Fatal("no auth policy after apply")
	}
	testutil.Must(t, b.admin.DeleteAuthPolicy(testutil.Context(t, time.Minute), id))
	rep := plan(exitcode.Pending)
	oidc := testutil.StepResult(t, &rep, "ziti/oidc")
	if oidc.Status != steps.Planned || len(oidc.Changes) != 1 || oidc.Changes[0].Action != steps.Create || oidc.Changes[0].Key != b.policy {
		t.Errorf("after the auth policy was deleted: ziti/oidc %s %v; want one create of %s", oidc.Status, oidc.Changes, b.policy)
	}

	// errors: invalid configuration or usage is 6 here (2 without the flag); unreachable stays 3
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"--set", "ZB_WAIT_TIMEOUT=soon"}, exitcode.InvalidConfigDetailed},
		{[]string{"--no-such-flag"}, exitcode.InvalidConfigDetailed},
		{[]string{"--set", "KEYCLOAK_URL=http://127.0.0.1:1", "--set", "ZB_WAIT_TIMEOUT=2s"}, exitcode.Unreachable},
	} {
		code, _, errs := cli(t, append([]string{"plan", "--detailed-exitcode", "--env-file", b.env}, tc.args...)...)
		if code != tc.want || !strings.Contains(errs, "error:") {
			t.Errorf("plan --detailed-exitcode %v: exit %d, want %d; stderr %s", tc.args, code, tc.want, lastLines(errs, 3))
		}
	}
	if code, _, _ := cli(t, "plan", "--env-file", b.env, "--set", "ZB_WAIT_TIMEOUT=soon"); code != exitcode.InvalidConfig {
		t.Errorf("plan without --detailed-exitcode, bad variable: exit %d, want %d", code, exitcode.InvalidConfig)
	}
	if code, _, _ := cli(t, "plan", "--env-file", b.env); code != exitcode.OK {
		t.Errorf("plan without --detailed-exitcode, changes pending: exit %d, want 0", code)
	}
}
