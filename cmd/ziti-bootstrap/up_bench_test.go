package main

import (
	"bytes"
	"cmp"
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
)

// BenchmarkUpDev measures the Swarm bring-up on the test bed's single-node Swarm (task bench, or
// go test -run '^$' -bench UpDev -benchtime 1x ./cmd/ziti-bootstrap), the no-op figure beside baselines measured
// in the same run (this machine's load moves both alike):
//
//   - s-first-up: `up --dev` from an empty Swarm to the three stacks healthy and the bootstrap job converged (no
//     baseline in the run: a second bring-up would double its cost; compare with another commit run back to back)
//   - s-healthy-to-converged: from the last service healthy to the bootstrap job converged (as up reports it; the
//     job starts once the services it needs are healthy, so this is its start and its whole apply)
//   - ns/op: a no-op re-run of `up --dev` on the converged system (asserted to make 0 mutating calls);
//     ms-noop-steps: the part of it its steps took (the rest: loading the stacks, preflight, the lock);
//     ms-noop-floor: one pass of the Engine reads a no-op up cannot do without (each stack's networks, secrets,
//     configs, services and their tasks)
//   - ms-noop-process: the same no-op re-run as a fresh `ziti-bootstrap up --dev` process (the binary built
//     once here), from its start to its exit (median of 3, each asserted to make 0 mutating calls): what an
//     operator waits for, with what an in-process re-run does not pay again (process start, the per-process
//     memo of the secrets' slow hashes: stacks.dataHash)
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
	b.Logf("first up --dev: %s; the job:\n%s", first.Round(100*time.Millisecond), strings.Join(d.notes(rep, jobStep), "\n"))
	bin := buildTool(b)
	var noop, floor, process []time.Duration
	for b.Loop() {
		rep := d.run("up --dev (no-op)", d.up()...)
		if rep.MutatingCalls != 0 {
			b.Fatalf("the re-run made %d mutating call(s): %v", rep.MutatingCalls, rep.Writes)
		}
		noop = append(noop, time.Duration(rep.DurationMS)*time.Millisecond)
	}
	b.StopTimer()
	for range 3 {
		floor = append(floor, d.readPass())
		process = append(process, d.processNoop(bin))
	}
	b.ReportMetric(first.Seconds(), "s-first-up")
	b.ReportMetric(since.Seconds(), "s-healthy-to-converged")
	b.ReportMetric(float64(median(noop).Milliseconds()), "ms-noop-steps")
	b.ReportMetric(float64(median(floor).Microseconds())/1000, "ms-noop-floor")
	b.ReportMetric(float64(median(process).Microseconds())/1000, "ms-noop-process")
}

// buildTool builds ziti-bootstrap (this package) into a temporary directory.
func buildTool(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "ziti-bootstrap")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// processNoop times a no-op `up --dev` run by the binary bin in a process of its own; it fails unless the run
// converged with 0 mutating calls.
func (d *devSystem) processNoop(bin string) time.Duration {
	d.tb.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(bin, d.up()...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	t0 := time.Now()
	err := cmd.Run()
	took := time.Since(t0)
	if err != nil {
		d.tb.Fatalf("up --dev (no-op, own process): %v\n%s", err, lastLines(errb.String(), 30))
	}
	if rep := report(d.tb, out.String()); !rep.Converged() || rep.MutatingCalls != 0 {
		d.tb.Fatalf("up --dev (no-op, own process): converged %v, %d mutating call(s): %v", rep.Converged(), rep.MutatingCalls, rep.Writes)
	}
	return took
}

// readPass times one pass of the Engine reads that tell whether the stacks are as their files say and healthy.
func (d *devSystem) readPass() time.Duration {
	ctx := context.Background()
	t0 := time.Now()
	if _, err := d.c.Networks(ctx, ""); err != nil {
		d.tb.Fatal(err)
	}
	for _, s := range stacks.All {
		ns := d.names[s]
		_, err1 := d.c.Secrets(ctx, ns)
		_, err2 := d.c.Configs(ctx, ns)
		svcs, err3 := d.c.Services(ctx, ns)
		if err := cmp.Or(err1, err2, err3); err != nil {
			d.tb.Fatal(err)
		}
		for _, svc := range svcs {
			if _, err := d.c.Tasks(ctx, svc.ID); err != nil {
				d.tb.Fatal(err)
			}
		}
	}
	return time.Since(t0)
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
