package testbed_test

import (
	"context"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
)

// TestSwarm3 proves the multi-node test bed: three engines in one Swarm, an overlay that carries traffic between
// nodes (a global dnsrr service answers from every node to a client on the first), and a worker that is seen Down
// when its engine stops and rejoins by itself when it starts again.
func TestSwarm3(t *testing.T) {
	bed := testbed.RequireSwarm(t, "swarm3")
	ctx := testutil.Context(t, 15*time.Minute)
	mgr := bed.Manager()
	var hosts []string
	for _, n := range bed.Nodes {
		hosts = append(hosts, n.Hostname)
	}

	st, err := bed.Status(ctx)
	testutil.Must(t, err)
	if len(st) != 3 {
		t.Fatalf("manager %s sees nodes %v, want %v", mgr.Hostname, st, hosts)
	}

	image, err := testbed.ProbeImage(ctx)
	testutil.Must(t, err)
	testutil.Must(t, bed.LoadImages(ctx, io.Discard, image))

	name := "zb-probe-" + testutil.RandHex(t, 3)
	docker := func(n testbed.SwarmNode, args ...string) string {
		t.Helper()
		out, err := n.Docker(ctx, args...)
		testutil.Must(t, err)
		return out
	}
	docker(mgr, "network", "create", "--driver", "overlay", "--attachable", "--label", testbed.TestServiceLabel+"="+t.Name(), name)
	t.Cleanup(func() {
		// the service's tasks leave the network as their containers stop
		err := wait.For(context.Background(), wait.Target{What: "removal of network " + name, Where: mgr.DockerHost, Deadline: 2 * time.Minute},
			func(ctx context.Context) error { _, err := mgr.Docker(ctx, "network", "rm", name); return err })
		if err != nil {
			t.Error(err)
		}
	})
	docker(mgr, "service", "create", "--detach", "--name", name, "--mode", "global", "--endpoint-mode", "dnsrr",
		"--network", name, "--no-resolve-image", "--hostname", "{{.Node.Hostname}}",
		"--label", testbed.TestServiceLabel+"="+t.Name(), image, "serve")
	t.Cleanup(func() { mgr.Docker(context.Background(), "service", "rm", name) })

	// a client on the first node, on the overlay: the service's name resolves to one address per task (dnsrr)
	fanout := func(want int) []string {
		t.Helper()
		out := docker(mgr, "run", "--rm", "--network", name, image, "fanout", name, "8080", strconv.Itoa(want), "5m")
		var answers []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if f := strings.Fields(line); len(f) == 2 {
				answers = append(answers, f[1])
			}
		}
		t.Logf("client on %s: %s answered from %q", mgr.Hostname, name, answers)
		slices.Sort(answers)
		return slices.Compact(answers)
	}
	if got := fanout(3); !slices.Equal(got, hosts) {
		t.Fatalf("the global service answered from %v, want every node %v", got, hosts)
	}

	worker := bed.Nodes[2]
	if worker.Manager {
		t.Fatalf("node %s is a manager; swarm3 has workers at 2 and 3", worker.Hostname)
	}
	testutil.Must(t, bed.StopNode(ctx, worker.Hostname))
	t.Cleanup(func() { bed.StartNode(context.Background(), worker.Hostname) })
	testutil.Must(t, bed.WaitNodes(ctx, testbed.NodeStatus{worker.Hostname: "down"}, 3*time.Minute))
	st, err = bed.Status(ctx)
	testutil.Must(t, err)
	t.Logf("%s stopped: nodes %v", worker.Hostname, st)
	testutil.Must(t, bed.StartNode(ctx, worker.Hostname))
	testutil.Must(t, bed.WaitNodes(ctx, nil, 3*time.Minute))
	st, err = bed.Status(ctx)
	testutil.Must(t, err)
	t.Logf("%s started: nodes %v", worker.Hostname, st)
	// its task of the global service runs again and answers across the overlay
	if got := fanout(3); !slices.Equal(got, hosts) {
		t.Fatalf("after %s rejoined, the global service answered from %v, want %v", worker.Hostname, got, hosts)
	}
}
