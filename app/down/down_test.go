package down

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
)

func TestCleanNodeArgs(t *testing.T) {
	got := strings.Join(cleanNodeArgs([]string{"a-spire", "a-openziti"}, true, 90*time.Second), " ")
	want := "down clean-node --timeout 1m30s --namespace a-spire --namespace a-openziti --volumes"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := strings.Join(cleanNodeArgs([]string{"a-spire"}, false, time.Minute), " "); strings.Contains(got, "--volumes") {
		t.Errorf("without volumes: %q", got)
	}
}

// fakeNodes is a nodeEngine whose Swarm has the given nodes; it records the node job it is asked to run.
type fakeNodes struct {
	nodes []docker.Node
	job   *docker.NodeJob
	res   []docker.NodeResult
}

func (f *fakeNodes) Nodes(context.Context) ([]docker.Node, error) { return f.nodes, nil }
func (f *fakeNodes) Containers(context.Context, string) ([]docker.Container, error) {
	return nil, nil
}
func (f *fakeNodes) Volumes(context.Context, string) ([]docker.Volume, error) { return nil, nil }
func (f *fakeNodes) CleanNode(context.Context, []string, bool, time.Duration) (docker.NodeCleanup, error) {
	return docker.NodeCleanup{}, nil
}
func (f *fakeNodes) RunOnEveryNode(_ context.Context, job docker.NodeJob) ([]docker.NodeResult, error) {
	f.job = &job
	return f.res, nil
}

// On several nodes, down/nodes plans one change per ready node, names the nodes that are not ready, runs one
// global job of ZB_IMAGE, and fails naming each node whose run reported an error.
func TestNodesStepSeveralNodes(t *testing.T) {
	e := &fakeNodes{
		nodes: []docker.Node{{Hostname: "n1", Ready: true, Manager: true}, {Hostname: "n2", Ready: true}, {Hostname: "n3"}},
		res: []docker.NodeResult{{Node: "n1", State: "complete", Output: "removed volume a_data"},
			{Node: "n2", State: "complete", Output: "removed volume a_data\n" + cleanNodeError + " remove volume b_data: boom"}},
	}
	s := &nodesStep{engine: func() nodeEngine { return e }, image: "tool:1", namespaces: []string{"a", "b"}, volumes: true,
		timeout: time.Minute, log: slog.New(slog.DiscardHandler)}
	p, err := s.Plan(context.Background())
	testutil.Must(t, err)
	var keys []string
	for _, c := range p.Changes {
		keys = append(keys, c.Key)
	}
	if !slices.Equal(keys, []string{"n1", "n2"}) {
		t.Errorf("planned changes for %v, want the ready nodes n1 n2", keys)
	}
	if len(p.Notes) != 1 || !strings.Contains(p.Notes[0], "n3") {
		t.Errorf("notes %q: want one naming the node that is not ready (n3)", p.Notes)
	}
	err = p.Apply(context.Background())
	if err == nil || !strings.Contains(err.Error(), "node n2") || strings.Contains(err.Error(), "node n1") {
		t.Errorf("apply: %v; want an error naming n2 only", err)
	}
	if e.job == nil || e.job.Image != "tool:1" || !slices.Contains(e.job.Args, "--volumes") {
		t.Errorf("node job %+v: want ZB_IMAGE tool:1 running clean-node --volumes", e.job)
	}
}
