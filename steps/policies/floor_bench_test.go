package policies_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/policies"
)

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
