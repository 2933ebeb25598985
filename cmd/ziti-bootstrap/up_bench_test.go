package main

import (
	"testing"
	"time"
)

// BenchmarkUpDev measures the Swarm bring-up on the test bed's single-node Swarm (task bench, or
// go test -run '^$' -bench UpDev -benchtime 1x ./cmd/ziti-bootstrap):
//
//   - s-first-up: `up --dev` from an empty Swarm to the three stacks healthy and the bootstrap job converged
//   - s-healthy-to-converged: from the last service healthy to the bootstrap job converged (as up reports it)
//   - ns/op: a no-op re-run of `up --dev` on the converged system (asserted to make 0 mutating calls)
//
// The bring-up happens once, before the timer starts; each iteration is one no-op re-run.
func BenchmarkUpDev(b *testing.B) {
	d := newDevSystem(b, false)
	t0 := time.Now()
	rep := d.run("up --dev", d.up()...)
	first := time.Since(t0)
	if w := d.jobWrites(rep); w == "0" {
		b.Fatal("the first bootstrap made no mutating call: it configured nothing")
	}
	since, ok := d.sinceHealthy(rep)
	if !ok {
		b.Fatalf("up reported no time from services healthy to bootstrap converged: %v", d.notes(rep, jobStep))
	}
	for b.Loop() {
		if rep := d.run("up --dev (no-op)", d.up()...); rep.MutatingCalls != 0 {
			b.Fatalf("the re-run made %d mutating call(s): %v", rep.MutatingCalls, rep.Writes)
		}
	}
	b.ReportMetric(first.Seconds(), "s-first-up")
	b.ReportMetric(since.Seconds(), "s-healthy-to-converged")
}
