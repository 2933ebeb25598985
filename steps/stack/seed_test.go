package stack

import (
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/swarm"

	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
)

// withSeed is the test stack with a seed config for its server (stacks.AddSeedConfig), of data.
func withSeed(t *testing.T, data string) *stacks.Stack {
	t.Helper()
	st := testLoad(t, nil)
	if err := st.AddSeedConfig("server", "seed", "/seed/file.json", "SEED_FILE", []byte(data)); err != nil {
		t.Fatal(err)
	}
	return st
}

// A seed config reaches a service that is created, stays as it is when its data changes (no update, no new
// config: the server read it at its first start only), and never reaches a service that runs without it (a stack
// deployed before the seed existed): adding it would restart the server for a file it ignores.
func TestSeedOnlyForANewService(t *testing.T) {
	f := &fakeEngine{}
	got := changeList(runPlan(t, f, withSeed(t, "v1"), true))
	if !strings.Contains(got, "create swarm-config t_seed\n") || !strings.Contains(got, "create swarm-service t_server") {
		t.Fatalf("first deploy:\n%s\nwant the seed config and the service created", got)
	}
	cs := f.services[slices.IndexFunc(f.services, func(s swarm.Service) bool { return s.Spec.Name == "t_server" })].Spec.TaskTemplate.ContainerSpec
	if !strings.Contains(strings.Join(cs.Env, " "), "SEED_FILE=/seed/file.json") || len(cs.Configs) != 2 {
		t.Errorf("the new server lacks its seed: env %v, configs %d", cs.Env, len(cs.Configs))
	}
	if ch := runPlan(t, f, withSeed(t, "v2"), true); len(ch) != 0 {
		t.Errorf("changed seed data: %s; want no change", changeList(ch))
	}

	// a server deployed without the seed: the seed is not added
	f2 := &fakeEngine{}
	runPlan(t, f2, testLoad(t, nil), true)
	f2.calls = nil
	if ch := runPlan(t, f2, withSeed(t, "v1"), true); len(ch) != 0 || len(f2.calls) != 0 {
		t.Errorf("seed for a running server: changes\n%s\ncalls %v; want none", changeList(ch), f2.calls)
	}
}
