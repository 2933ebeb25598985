package main

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/bedziti"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
)

// Two applies started within 100 ms of each other through two different managers of a three-manager Swarm, five
// times: each time exactly one writes (it registers the SPIRE root, which is freed before every round); the
// other either exits 5 naming the writer (ZB_LOCK_WAIT=0, rounds 1-3) or waits for it, naming it, and then
// finds nothing to write (ZB_LOCK_WAIT=2m, rounds 4-5). The lock is a Swarm config, linearised by the managers'
// Raft log; the servers apply converges are the test bed's.
func TestApplyLockAcrossManagers(t *testing.T) {
	bed := testbed.RequireSwarm(t, "swarm3m")
	env, _ := bedEnv(t)
	admin := bedziti.Admin(t)
	root := bedziti.ClaimSpireRoot(t, admin)
	ctx := testutil.Context(t, 15*time.Minute)
	bin := filepath.Join(t.TempDir(), "ziti-bootstrap")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	type run struct {
		node           testbed.SwarmNode
		cmd            *exec.Cmd
		stdout, stderr bytes.Buffer
		started        time.Time
	}
	for round := 1; round <= 5; round++ {
		bedziti.FreeSpireRoot(t, admin, root)
		wait := "0"
		if round > 3 {
			wait = "2m"
		}
		runs := []*run{{node: bed.Nodes[0]}, {node: bed.Nodes[1+round%2]}}
		for _, r := range runs {
			r.cmd = exec.CommandContext(ctx, bin, "apply", "--env-file", env, "-o", "json", "--set", "ZB_DOCKER=true",
				"--set", "DOCKER_HOST="+r.node.DockerHost, "--set", "ZB_LOCK_WAIT="+wait)
			r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
		}
		for _, r := range runs {
			testutil.Must(t, r.cmd.Start())
			r.started = time.Now()
		}
		gap := runs[1].started.Sub(runs[0].started)
		if gap > 100*time.Millisecond {
			t.Fatalf("round %d: the second apply started %s after the first, want within 100 ms", round, gap)
		}
		codes := make([]int, 2)
		for i, r := range runs {
			r.cmd.Wait()
			codes[i] = r.cmd.ProcessState.ExitCode()
		}
		var writer, other *run
		for i, r := range runs {
			if codes[i] == exitcode.OK && report(t, r.stdout.String()).MutatingCalls > 0 {
				if writer != nil {
					t.Fatalf("round %d: both applies wrote", round)
				}
				writer, other = r, runs[1-i]
			}
		}
		if writer == nil {
			t.Fatalf("round %d: no apply wrote; exits %v\n%s: %s\n%s: %s", round, codes, runs[0].node.Hostname,
				lastLines(runs[0].stderr.String(), 10), runs[1].node.Hostname, lastLines(runs[1].stderr.String(), 10))
		}
		holder := fmt.Sprintf("pid %d on", writer.cmd.Process.Pid)
		oc := other.cmd.ProcessState.ExitCode()
		switch {
		case wait == "0" && oc == exitcode.Locked && strings.Contains(other.stderr.String(), holder) && other.stdout.Len() == 0:
			t.Logf("round %d (started %s apart): apply through %s wrote (%d call(s)); through %s: exit 5: %s", round, gap, writer.node.Hostname,
				report(t, writer.stdout.String()).MutatingCalls, other.node.Hostname, lastLines(other.stderr.String(), 1))
		case wait != "0" && oc == exitcode.OK && strings.Contains(other.stderr.String(), "waiting for the lock") &&
			strings.Contains(other.stderr.String(), holder) && report(t, other.stdout.String()).MutatingCalls == 0:
			t.Logf("round %d (started %s apart): apply through %s wrote (%d call(s)); through %s: waited for it, then wrote nothing", round, gap,
				writer.node.Hostname, report(t, writer.stdout.String()).MutatingCalls, other.node.Hostname)
		default:
			t.Fatalf("round %d (ZB_LOCK_WAIT=%s): the apply through %s wrote; the one through %s exited %d, want it to %s naming %q:\n%s",
				round, wait, writer.node.Hostname, other.node.Hostname, oc, map[bool]string{true: "exit 5", false: "wait"}[wait == "0"],
				holder, lastLines(other.stderr.String(), 10))
		}
	}
}
