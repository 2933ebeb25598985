package policies_test

import (
	"fmt"
	"os"
	"strconv"
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
// deletion of everything. Each iteration is one whole cycle (the default -benchtime runs one); it reports the
// seconds and mutating calls of each phase.
func BenchmarkReconcile(b *testing.B) {
	n := 1000
	if v := os.Getenv("ZB_BENCH_SERVICES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 10 {
			b.Fatalf("ZB_BENCH_SERVICES=%q: want a number >= 10", v)
		}
	}
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
		phase("create", create, 3*n)
		phase("noop", create, 0)
		phase("change10pct", change, 2*((n+9)/10))
		phase("delete", empty, 3*n)
	}
	b.StopTimer()
}
