package stack

import (
	"context"
	"strings"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
)

type fakeNodes struct {
	self    string
	nodes   []docker.Node
	labeled []string
}

func (f *fakeNodes) Swarm(context.Context) (docker.SwarmInfo, error) {
	return docker.SwarmInfo{NodeID: f.self, Manager: true, NodeState: "active"}, nil
}
func (f *fakeNodes) Nodes(context.Context) ([]docker.Node, error) { return f.nodes, nil }
func (f *fakeNodes) LabelNode(_ context.Context, id, label, value string) error {
	f.labeled = append(f.labeled, id+" "+label+"="+value)
	return nil
}

func TestStateNode(t *testing.T) {
	const label = "ziti-bootstrap.state"
	mgr := func(id string, labels map[string]string) docker.Node {
		return docker.Node{ID: id, Hostname: "host-" + id, Role: "manager", State: "ready", Availability: "active", Labels: labels}
	}
	state := map[string]string{label: "true"}
	for name, tc := range map[string]struct {
		nodes   []docker.Node
		changes int
		err     []string
	}{
		"none labelled: this manager": {nodes: []docker.Node{mgr("m1", nil), mgr("m2", nil)}, changes: 1},
		"one labelled":                {nodes: []docker.Node{mgr("m1", nil), mgr("m2", state)}},
		"two labelled":                {nodes: []docker.Node{mgr("m1", state), mgr("m2", state)}, err: []string{"2 nodes", "host-m1", "host-m2", "--label-rm"}},
		"drained":                     {nodes: []docker.Node{func() docker.Node { n := mgr("m2", state); n.Availability = "drain"; return n }()}, err: []string{"host-m2", "drain", "backup", "restore"}},
		"down":                        {nodes: []docker.Node{func() docker.Node { n := mgr("m2", state); n.State = "down"; return n }()}, err: []string{"is down"}},
		"a worker":                    {nodes: []docker.Node{func() docker.Node { n := mgr("w1", state); n.Role = "worker"; return n }()}, err: []string{"is a worker", "label a manager"}},
	} {
		f := &fakeNodes{self: "m1", nodes: tc.nodes}
		s := NewStateNode(func() NodeEngine { return f }, label)
		p, err := s.Plan(context.Background())
		if len(tc.err) > 0 {
			for _, w := range tc.err {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("%s: error %v lacks %q", name, err, w)
				}
			}
			continue
		}
		if err != nil || len(p.Changes) != tc.changes {
			t.Fatalf("%s: plan %+v, %v; want %d change(s)", name, p, err, tc.changes)
		}
		if err := p.Apply(context.Background()); err != nil {
			t.Fatal(err)
		}
		if tc.changes == 1 && (len(f.labeled) != 1 || f.labeled[0] != "m1 "+label+"=true") {
			t.Errorf("%s: labelled %v, want this manager m1", name, f.labeled)
		}
		if tc.changes == 0 && len(f.labeled) != 0 {
			t.Errorf("%s: labelled %v, want nothing written", name, f.labeled)
		}
	}
}
