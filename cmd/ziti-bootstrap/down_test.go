package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/app/down"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

func TestCleanNodeNeedsANamespace(t *testing.T) {
	code, _, errs := cli(t, "down", "clean-node")
	if code == exitcode.OK || !strings.Contains(errs, "--namespace") {
		t.Errorf("exit %d, stderr %q: want a failure naming --namespace", code, errs)
	}
}

// On a Swarm of three nodes, `down --volumes` run once through the manager removes, on every node, the volumes
// and the plain containers (running or not) labelled with the stacks' namespaces, and nothing else; its node job
// leaves nothing behind either. Each engine is checked afterwards; the test removes none of these objects itself.
func TestDownVolumesCleansEveryNode(t *testing.T) {
	bed := testbed.RequireSwarm(t, "swarm3")
	ctx := testutil.Context(t, 15*time.Minute)
	tool, err := testbed.StaticImage(ctx, "./cmd/ziti-bootstrap", "zb-testbed/ziti-bootstrap")
	testutil.Must(t, err)
	probe, err := testbed.ProbeImage(ctx)
	testutil.Must(t, err)
	testutil.Must(t, bed.LoadImages(ctx, io.Discard, tool, probe))

	prefix := "zbd" + testutil.RandHex(t, 3) + "-"
	names := stacks.DefaultNames(prefix)
	other := "zbo" + testutil.RandHex(t, 3) // a namespace not ours: it must survive
	label := func(ns string) string { return docker.NamespaceLabel + "=" + ns }
	for _, n := range bed.Nodes {
		for _, s := range stacks.All {
			_, err := n.Docker(ctx, "volume", "create", "--label", label(names[s]), names[s]+"_data")
			testutil.Must(t, err)
		}
		// a running plain container holding a stack volume, as a per-node SPIRE agent would, and a stopped one
		_, err := n.Docker(ctx, "run", "-d", "--name", names[stacks.Spire]+"_agent", "--label", label(names[stacks.Spire]),
			"-v", names[stacks.Spire]+"_data:/data", probe, "serve")
		testutil.Must(t, err)
		_, err = n.Docker(ctx, "create", "--name", names[stacks.OpenZiti]+"_stopped", "--label", label(names[stacks.OpenZiti]), probe, "serve")
		testutil.Must(t, err)
		_, err = n.Docker(ctx, "volume", "create", "--label", label(other), other+"_data")
		testutil.Must(t, err)
		_, err = n.Docker(ctx, "run", "-d", "--name", other+"_c", "--label", label(other), "-v", other+"_data:/data", probe, "serve")
		testutil.Must(t, err)
	}
	t.Cleanup(func() { // the objects of the namespace that is not ours
		for _, n := range bed.Nodes {
			n.Docker(ctx, "rm", "-f", other+"_c")
			n.Docker(ctx, "volume", "rm", other+"_data")
		}
	})

	env := filepath.Join(t.TempDir(), ".env")
	testutil.Must(t, os.WriteFile(env, []byte(fmt.Sprintf("DOCKER_HOST=%s\nZB_IMAGE=%s\n", bed.Manager().DockerHost, tool)), 0o600))
	t0 := time.Now()
	code, out, errs := cli(t, "down", "--volumes", "--prefix", prefix, "--env-file", env, "-o", "json")
	if code != exitcode.OK {
		t.Fatalf("down --volumes: exit %d\n%s\n%s", code, out, errs)
	}
	r := testutil.StepResult(t, new(report(t, out)), down.NodesStepName)
	t.Logf("down --volumes through %s: %s", bed.Manager().Hostname, time.Since(t0).Round(time.Millisecond))
	if len(r.Changes) != len(bed.Nodes) {
		t.Errorf("%s planned %d change(s), want one per node (%d)", down.NodesStepName, len(r.Changes), len(bed.Nodes))
	}

	for _, n := range bed.Nodes {
		for _, s := range stacks.All {
			ns := names[s]
			if l := list(t, n, "ps", "-aq", "--filter", "label="+label(ns)); l != "" {
				t.Errorf("node %s: containers of %s left: %s", n.Hostname, ns, l)
			}
			if l := list(t, n, "volume", "ls", "-q", "--filter", "label="+label(ns)); l != "" {
				t.Errorf("node %s: volumes of %s left: %s", n.Hostname, ns, l)
			}
		}
		if l := list(t, n, "ps", "-q", "--filter", "label="+label(other)); l == "" {
			t.Errorf("node %s: the container of namespace %s (not ours) was removed", n.Hostname, other)
		}
		if l := list(t, n, "volume", "ls", "-q", "--filter", "label="+label(other)); l == "" {
			t.Errorf("node %s: the volume of namespace %s (not ours) was removed", n.Hostname, other)
		}
		// the node job's containers go with the job (asynchronously, on each node)
		err := wait.For(ctx, wait.Target{What: "removal of the node job's container", Where: n.Hostname, Deadline: 2 * time.Minute},
			func(ctx context.Context) error {
				if l := list(t, n, "ps", "-aq", "--filter", "label="+docker.NodeJobLabel); l != "" {
					return fmt.Errorf("left: %s", l)
				}
				return nil
			})
		testutil.Must(t, err)
	}
	if l := list(t, bed.Manager(), "service", "ls", "-q", "--filter", "label="+docker.NodeJobLabel); l != "" {
		t.Errorf("node job services left: %s", l)
	}
}

// list runs a listing docker command on node n and returns its output, trimmed.
func list(t *testing.T, n testbed.SwarmNode, args ...string) string {
	t.Helper()
	out, err := n.Docker(testutil.Context(t, time.Minute), args...)
	testutil.Must(t, err)
	return strings.TrimSpace(out)
}

// On a single node, down/nodes plans exactly this node's containers and volumes of the stacks and removes them;
// a second down plans nothing and makes no mutating call.
func TestDownVolumesOneNode(t *testing.T) {
	in := testbed.Require(t, "docker")
	testbed.LockSwarmApply(t)
	ctx := testutil.Context(t, 5*time.Minute)
	prefix := "zbd" + testutil.RandHex(t, 3) + "-"
	ns := stacks.DefaultNames(prefix)[stacks.Spire]
	host := func(args ...string) {
		t.Helper()
		if out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput(); err != nil {
			t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	host("volume", "create", "--label", docker.NamespaceLabel+"="+ns, ns+"_data")
	host("run", "-d", "--name", ns+"_agent", "--label", docker.NamespaceLabel+"="+ns, "-v", ns+"_data:/data",
		testbed.SleepImage, "sleep", "infinity")
	env := filepath.Join(t.TempDir(), ".env")
	testutil.Must(t, os.WriteFile(env, []byte("DOCKER_HOST="+in.Docker.Host+"\n"), 0o600))
	down := func() steps.Result {
		t.Helper()
		code, out, errs := cli(t, "down", "--volumes", "--prefix", prefix, "--env-file", env, "-o", "json")
		if code != exitcode.OK {
			t.Fatalf("down --volumes: exit %d\n%s\n%s", code, out, errs)
		}
		return testutil.StepResult(t, new(report(t, out)), down.NodesStepName)
	}
	got := testutil.ChangeStrings(down().Changes)
	want := []string{"delete container " + ns + "_agent: stack " + ns + " removed", "delete swarm-volume " + ns + "_data: stack " + ns + " removed"}
	if !slices.Equal(got, want) {
		t.Errorf("first down planned %q, want %q", got, want)
	}
	if r := down(); len(r.Changes) != 0 || r.MutatingCalls != 0 {
		t.Errorf("second down: %d change(s), %d mutating call(s); want none", len(r.Changes), r.MutatingCalls)
	}
}
