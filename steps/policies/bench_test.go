package policies_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/policyfile"
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
