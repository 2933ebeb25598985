package policies_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/policyfile"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/policies"
)

// benchPolicy declares n services, each with an inline intercept.v1 config and a Dial policy: 3n objects.
// Every tenth service has a different port and policy role when changed is set.
func benchPolicy(prefix string, n int, changed bool) string {
	var b strings.Builder
	b.WriteString("external:\n  identityRoles: [bench-a, bench-b]\nservices:\n")
	for i := range n {
		port := 10000 + i%50000
		if changed && i%10 == 0 {
			port++
		}
		fmt.Fprintf(&b, "  - name: %ssvc-%04d\n    roleAttributes: [bench]\n    intercept: {protocols: [tcp], addresses: [svc-%04d.bench], portRanges: [{low: %d, high: %d}]}\n",
			prefix, i, i, port, port)
	}
	b.WriteString("servicePolicies:\n")
	for i := range n {
		role := "bench-a"
		if changed && i%10 == 0 {
			role = "bench-b"
		}
		fmt.Fprintf(&b, "  - {name: %sdial-%04d, type: Dial, identityRoles: [\"#%s\"], serviceRoles: [\"@%ssvc-%04d\"]}\n", prefix, i, role, prefix, i)
	}
	return b.String()
}

// BenchmarkReconcile reconciles ZB_BENCH_SERVICES (default 1000) services, their configs and a Dial policy each
// against the test bed's controller: create, a no-op re-run, a run with 10 % of the services changed, and the
// deletion of everything. Before and after them, in the same run, the controller's floor: the same objects
// created and deleted with bare management API calls at the step's concurrency (floor-create-s, floor-delete-s:
// the lower of the two), and create/floor, the ratio of the step's create to that floor. Each iteration is one whole cycle (the default -benchtime runs one); it reports the
// seconds and mutating calls of each phase.
func BenchmarkReconcile(b *testing.B) {
	n := benchN(b, 1000)
	bed := newBed(b)
	create := bed.parse(benchPolicy(bed.prefix, n, false))
	change := bed.parse(benchPolicy(bed.prefix, n, true))
	empty := bed.parse("")
	phase := func(name string, p *policyfile.Policy, wantWrites int) {
		start := time.Now()
		rep, res := bed.mustApply(p)
		secs := time.Since(start).Seconds()
		if int(rep.MutatingCalls) != wantWrites {
			b.Fatalf("%s: %d writes, want %d (%s)", name, rep.MutatingCalls, wantWrites, res.Status)
		}
		b.ReportMetric(secs, name+"-s")
		b.ReportMetric(float64(rep.MutatingCalls), name+"-writes")
	}
	b.ResetTimer()
	for range b.N {
		// The controller's floor, measured in the same run, before and after the step's phases (the machine's load
		// changes over a run; the lower of the two counts): bare creates and deletes of the same objects.
		c, _ := bed.client()
		floor, floorDel := bed.floorRun(c, "f"+bed.prefix, n)
		createStart := time.Now()
		phase("create", create, 3*n)
		created := time.Since(createStart)
		phase("noop", create, 0)
		phase("change10pct", change, 2*((n+9)/10))
		phase("delete", empty, 3*n)
		floor2, floorDel2 := bed.floorRun(c, "g"+bed.prefix, n)
		floor, floorDel = min(floor, floor2), min(floorDel, floorDel2)
		b.ReportMetric(floor.Seconds(), "floor-create-s")
		b.ReportMetric(floorDel.Seconds(), "floor-delete-s")
		b.ReportMetric(created.Seconds()/floor.Seconds(), "create/floor")
	}
	b.StopTimer()
}

// BenchmarkNoop times the no-op re-run alone (ns/op) on ZB_BENCH_SERVICES (default 1000) services with their
// configs and Dial policies, created once before the timer starts: each iteration lists every object again (no
// cached answer) and must make 0 writes. Profile it with -cpuprofile to see the client's share.
func BenchmarkNoop(b *testing.B) {
	n := benchN(b, 1000)
	bed := newBed(b)
	p := bed.parse(benchPolicy(bed.prefix, n, false))
	bed.mustApply(p)
	for b.Loop() {
		if rep, res := bed.mustApply(p); rep.MutatingCalls != 0 {
			b.Fatalf("no-op run made %d writes (%s)", rep.MutatingCalls, res.Status)
		}
	}
}

// BenchmarkCLIBaseline compares the step with what it replaces: the ziti CLI creating one object per process
// (`ziti edge create config|service|service-policy`, after a single `ziti edge login`), for ZB_BENCH_SERVICES
// (default 100) services with an intercept.v1 config and a Dial policy each, then the step reconciling the same
// objects under other names, in the same run. It reports cli-ms/obj, step-ms/obj and cli/step, the speed-up.
//
// The login's password goes to the CLI's prompt through a pseudo-terminal (script(1)), never in an argument.
func BenchmarkCLIBaseline(b *testing.B) {
	n := benchN(b, 100)
	bed := newBed(b)
	script, err := exec.LookPath("script")
	if err != nil {
		b.Fatalf("script(1) (util-linux) is needed to type the password at the ziti CLI's prompt: %v", err)
	}
	home := b.TempDir() // the CLI keeps its session in $HOME/.config/ziti
	zitiCmd := func(args ...string) *exec.Cmd {
		cmd := exec.Command(bed.bin(), args...)
		cmd.Env = append(os.Environ(), "HOME="+home)
		return cmd
	}
	login := exec.Command(script, "-qec", strings.Join([]string{bed.bin(), "edge", "login", strings.TrimPrefix(bed.info.URL, "https://"),
		"-u", bed.info.User, "--ca", bed.info.CAFile}, " "), "/dev/null")
	login.Env = append(os.Environ(), "HOME="+home)
	login.Stdin = strings.NewReader(bed.info.Password + "\n")
	if out, err := login.CombinedOutput(); err != nil {
		b.Fatalf("ziti edge login: %v\n%s", err, out)
	}
	// The CLI's objects carry an owner of their own: the step must not see them as its own (and delete them).
	cliOwner := bed.owner + "-cli"
	tag := policies.OwnerTag + "=" + cliOwner
	b.Cleanup(func() { bed.deleteOwned(cliOwner) })
	run := func(cmd *exec.Cmd) {
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			b.Fatalf("%s: %v\n%s", strings.Join(cmd.Args[1:], " "), err, out.String())
		}
	}
	for i := 0; b.Loop(); i++ {
		prefix := fmt.Sprintf("cli%d%s", i, bed.prefix)
		start := time.Now()
		for j := range n {
			port := 10000 + j
			svc := fmt.Sprintf("%ssvc-%04d", prefix, j)
			run(zitiCmd("edge", "create", "config", svc+"-intercept", "intercept.v1", "--tags", tag,
				fmt.Sprintf(`{"protocols":["tcp"],"addresses":["svc-%04d.bench"],"portRanges":[{"low":%d,"high":%d}]}`, j, port, port)))
			run(zitiCmd("edge", "create", "service", svc, "--configs", svc+"-intercept", "--role-attributes", "bench", "--tags", tag))
			run(zitiCmd("edge", "create", "service-policy", fmt.Sprintf("%sdial-%04d", prefix, j), "Dial",
				"--identity-roles", "#bench-a", "--service-roles", "@"+svc, "--tags", tag))
		}
		cli := time.Since(start)
		start = time.Now()
		bed.mustApply(bed.parse(benchPolicy(fmt.Sprintf("step%d%s", i, bed.prefix), n, false)))
		step := time.Since(start)
		b.ReportMetric(float64(cli.Milliseconds())/float64(3*n), "cli-ms/obj")
		b.ReportMetric(float64(step.Milliseconds())/float64(3*n), "step-ms/obj")
		b.ReportMetric(cli.Seconds()/step.Seconds(), "cli/step")
		bed.mustApply(bed.parse(""))
		bed.deleteOwned(cliOwner)
	}
}

// deleteOwned deletes the objects tagged with owner, by the step's empty policy.
func (b *bed) deleteOwned(owner string) {
	b.t.Helper()
	s, err := policies.New(b.admin, policies.Config{Policy: b.parse(""), Owner: owner})
	if err != nil {
		b.t.Fatal(err)
	}
	p, err := s.Plan(ctx(b.t))
	if err == nil {
		err = p.Apply(ctx(b.t))
	}
	if err != nil {
		b.t.Errorf("delete the objects of owner %s: %v", owner, err)
	}
}

// bin is the test bed's ziti binary.
func (b *bed) bin() string {
	if b.info.Bin == "" {
		b.t.Fatal("the test bed's state names no ziti binary: run `task testbed:up`")
	}
	return filepath.Clean(b.info.Bin)
}

// floorObjects are the objects of one floor run: n intercept.v1 configs, n services each with its config, and a
// Dial policy each, named like benchPolicy's and owned like the step's objects (so the bed's cleanup finds them).
type floorObjects struct {
	configs, services, policies []string // ids, filled by create
}

// controllerFloor creates what benchPolicy(prefix, n) declares with bare management API calls, through the same
// client and with the step's concurrency, in the order references need (configs, services, policies): what the
// controller itself costs, without observing, diffing or planning. It returns the objects for floorDelete.
func (b *bed) controllerFloor(ctx context.Context, c *ziti.Client, prefix string, n int) (*floorObjects, time.Duration) {
	return b.controllerFloorAt(ctx, c, prefix, n, policies.DefaultParallel)
}

// controllerFloorAt is controllerFloor with parallel calls at a time.
func (b *bed) controllerFloorAt(ctx context.Context, c *ziti.Client, prefix string, n, parallel int) (*floorObjects, time.Duration) {
	b.t.Helper()
	types, err := c.ListConfigTypes(ctx, ziti.FilterEq("name", ziti.ConfigTypeIntercept))
	if err != nil || len(types) != 1 {
		b.t.Fatalf("config type %s: %v %v", ziti.ConfigTypeIntercept, types, err)
	}
	tags := map[string]any{policies.OwnerTag: b.owner}
	o := &floorObjects{configs: make([]string, n), services: make([]string, n), policies: make([]string, n)}
	start := time.Now()
	b.poolAt(parallel, n, func(i int) (err error) {
		port := 10000 + i%50000
		o.configs[i], err = c.CreateConfig(ctx, ziti.Config{Name: fmt.Sprintf("%ssvc-%04d-intercept", prefix, i), ConfigTypeID: types[0].ID, Tags: tags,
			Data: map[string]any{"protocols": []any{"tcp"}, "addresses": []any{fmt.Sprintf("svc-%04d.bench", i)},
				"portRanges": []any{map[string]any{"low": port, "high": port}}}})
		return err
	})
	b.poolAt(parallel, n, func(i int) (err error) {
		o.services[i], err = c.CreateService(ctx, ziti.Service{Name: fmt.Sprintf("%ssvc-%04d", prefix, i), Configs: []string{o.configs[i]},
			RoleAttributes: []string{"bench"}, Tags: tags})
		return err
	})
	b.poolAt(parallel, n, func(i int) (err error) {
		o.policies[i], err = c.CreateServicePolicy(ctx, ziti.ServicePolicy{Name: fmt.Sprintf("%sdial-%04d", prefix, i), Type: ziti.PolicyDial,
			IdentityRoles: []string{"#bench-a"}, ServiceRoles: []string{"@" + o.services[i]}, Tags: tags})
		return err
	})
	return o, time.Since(start)
}

// floorRun creates the floor's objects and deletes them, and returns how long each took.
func (b *bed) floorRun(c *ziti.Client, prefix string, n int) (create, del time.Duration) {
	b.t.Helper()
	objs, create := b.controllerFloor(ctx(b.t), c, prefix, n)
	return create, b.floorDelete(ctx(b.t), c, objs)
}

// floorDelete deletes the floor's objects the same way, in reverse order of references.
func (b *bed) floorDelete(ctx context.Context, c *ziti.Client, o *floorObjects) time.Duration {
	b.t.Helper()
	start := time.Now()
	b.pool(len(o.policies), func(i int) error { return c.DeleteServicePolicy(ctx, o.policies[i]) })
	b.pool(len(o.services), func(i int) error { return c.DeleteService(ctx, o.services[i]) })
	b.pool(len(o.configs), func(i int) error { return c.DeleteConfig(ctx, o.configs[i]) })
	return time.Since(start)
}

// pool runs f(0..n-1), policies.DefaultParallel at a time, and fails the benchmark on the first error.
func (b *bed) pool(n int, f func(i int) error) {
	b.t.Helper()
	b.poolAt(policies.DefaultParallel, n, f)
}

// poolAt is pool with parallel calls at a time.
func (b *bed) poolAt(parallel, n int, f func(i int) error) {
	b.t.Helper()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		sem   = make(chan struct{}, parallel)
	)
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := f(i); err != nil {
				once.Do(func() { first = err })
			}
		}()
	}
	wg.Wait()
	if first != nil {
		b.t.Fatal(first)
	}
}

// BenchmarkControllerFloor measures the controller's floor alone at 1, 2, 4, 8 and 16 calls at a time
// (ZB_BENCH_SERVICES services, default 300, with their configs and Dial policies): whether more concurrency than the
// step's would pay. Reported as objects created per second at each width.
func BenchmarkControllerFloor(b *testing.B) {
	n := benchN(b, 300)
	bed := newBed(b)
	c, _ := bed.client()
	for range b.N {
		for _, width := range []int{1, 2, 4, 8, 16} {
			objs, d := bed.controllerFloorAt(ctx(b), c, fmt.Sprintf("w%d%s", width, bed.prefix), n, width)
			b.ReportMetric(float64(3*n)/d.Seconds(), fmt.Sprintf("objs/s-at-%d", width))
			bed.floorDelete(ctx(b), c, objs)
		}
	}
}

// benchN is ZB_BENCH_SERVICES, or def when it is unset.
func benchN(b *testing.B, def int) int {
	b.Helper()
	v := os.Getenv("ZB_BENCH_SERVICES")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 10 {
		b.Fatalf("ZB_BENCH_SERVICES=%q: want a number >= 10", v)
	}
	return n
}
