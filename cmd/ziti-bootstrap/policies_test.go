package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/bedziti"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
)

// apply --policies reconciles only the policy file: the example applies, a re-run writes nothing, and an empty
// file removes what it created.
func TestApplyPoliciesHotPath(t *testing.T) {
	env, _ := bedEnv(t)
	testbed.LockSwarmApply(t)
	admin := bedziti.Admin(t)
	ctx := context.Background()
	hub, err := admin.ListIdentities(ctx, ziti.FilterEq("name", "iot-sensor-hub"))
	if err != nil {
		t.Fatal(err)
	}
	if len(hub) == 0 {
		id, err := admin.CreateIdentity(ctx, ziti.Identity{Name: "iot-sensor-hub"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { admin.DeleteIdentity(context.Background(), id) })
	}
	empty := filepath.Join(t.TempDir(), "empty.yaml")
	os.WriteFile(empty, []byte("# nothing managed\n"), 0o600)
	t.Cleanup(func() { cli(t, "apply", "--env-file", env, "--policies", empty) })

	code, out, errs := cli(t, "apply", "--env-file", env, "--policies", "../../examples/policies/iot-segments.yaml", "-o", "json")
	if code != exitcode.OK {
		t.Fatalf("apply --policies: exit %d\n%s\n%s", code, out, errs)
	}
	rep := report(t, out)
	if len(rep.Steps) != 2 || rep.Steps[1].Name != "ziti/policies" {
		t.Fatalf("apply --policies ran %v; want ziti/reachable and ziti/policies only", rep.Steps)
	}
	code, out, _ = cli(t, "apply", "--env-file", env, "--policies", "../../examples/policies/iot-segments.yaml", "-o", "json")
	if rep := report(t, out); code != exitcode.OK || rep.MutatingCalls != 0 {
		t.Fatalf("second apply --policies: exit %d, %d writes %v", code, rep.MutatingCalls, rep.Writes)
	}
	code, out, errs = cli(t, "apply", "--env-file", env, "--policies", empty)
	if code != exitcode.OK || !strings.Contains(out, "delete") {
		t.Fatalf("empty policy file: exit %d\n%s\n%s", code, out, errs)
	}
	svcs, err := admin.ListServices(ctx, ziti.FilterEq("name", "iot-sensor-data"))
	if err != nil || len(svcs) != 0 {
		t.Fatalf("after the empty file: services %v, %v", svcs, err)
	}
}
