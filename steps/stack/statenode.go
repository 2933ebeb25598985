package stack

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

// StateNodeName is the name of the step that makes sure exactly one node carries the state label.
const StateNodeName = "stack/state-node"

// KindNode is the Change.Kind of Swarm nodes.
const KindNode = "swarm-node"

// NodeEngine is what the state-node step needs of the Docker Engine (a manager); *docker.Client has it.
type NodeEngine interface {
	Swarm(ctx context.Context) (docker.SwarmInfo, error)
	Nodes(ctx context.Context) ([]docker.Node, error)
	LabelNode(ctx context.Context, id, label, value string) error
}

var _ NodeEngine = (*docker.Client)(nil)

// StateNode is the step that keeps the Swarm's state node: the node whose local volumes hold the databases
// (SPIRE's datastore, Keycloak's PostgreSQL, the OpenZiti controller's PKI and database) and next to which the
// bootstrap job and the backup service run. The stacks place those services by the node label Label=true. When no
// node has it, the manager up talks to becomes the state node; when one has it, nothing is written; two labelled
// nodes, or a state node that is down or drained, stop up before any stack is touched: starting a stateful service
// elsewhere would start it on empty volumes.
type StateNode struct {
	engine func() NodeEngine
	label  string
	deps   []string
}

var _ steps.Step = (*StateNode)(nil)

// NewStateNode returns the state-node step for label (e.g. config.StateLabel), run after deps.
func NewStateNode(engine func() NodeEngine, label string, deps ...string) *StateNode {
	return &StateNode{engine: engine, label: label, deps: deps}
}

func (s *StateNode) Name() string        { return StateNodeName }
func (s *StateNode) DependsOn() []string { return s.deps }

// Plan finds the labelled node; it writes nothing.
func (s *StateNode) Plan(ctx context.Context) (*steps.Plan, error) {
	e := s.engine()
	if e == nil {
		return nil, errors.New("no Docker client: the step docker/reachable must run first")
	}
	nodes, err := e.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	var labelled []docker.Node
	for _, n := range nodes {
		if n.Labels[s.label] == "true" {
			labelled = append(labelled, n)
		}
	}
	switch len(labelled) {
	case 0:
		info, err := e.Swarm(ctx)
		if err != nil {
			return nil, err
		}
		self := nodeByID(nodes, info.NodeID)
		ch := steps.Change{Action: steps.Update, Kind: KindNode, Key: self.Hostname + " (" + self.ID + ")",
			Reason: fmt.Sprintf("no node has the label %s=true: this manager becomes the state node (its local volumes hold the databases)", s.label),
		}.WithDiff(steps.Diff{{Field: "labels." + s.label, Before: self.Labels[s.label], After: "true"}})
		return steps.NewPlan([]steps.Change{ch}, func(ctx context.Context) error {
			return e.LabelNode(ctx, self.ID, s.label, "true")
		}), nil
	case 1:
		n := labelled[0]
		if n.Role != "manager" {
			return nil, fmt.Errorf("the state node %s (%s) is a %s: the bootstrap job and the backup service run beside the state and hold the lock through a manager's Engine API; label a manager %s=true instead (docker node update --label-add %s=true NODE) and remove the label from %s",
				n.Hostname, n.ID, n.Role, s.label, s.label, n.Hostname)
		}
		if n.State != "ready" || n.Availability != "active" {
			return nil, fmt.Errorf("the state node %s (%s) is %s and %s: the SPIRE server, Keycloak's database and the OpenZiti controller keep their data in its local volumes, so they cannot start elsewhere; bring it back (docker node update --availability active %s), or move the state: take a backup, label another node %s=true (and remove the label here), then restore onto it",
				n.Hostname, n.ID, n.State, n.Availability, n.ID, s.label)
		}
		return steps.NewPlan(nil, nil).Note("state node: %s (%s)", n.Hostname, n.ID), nil
	default:
		var names []string
		for _, n := range labelled {
			names = append(names, n.Hostname+" ("+n.ID+")")
		}
		return nil, fmt.Errorf("%d nodes have the label %s=true (%s): the stateful services must stay beside their volumes on one node; remove the label from all but one (docker node update --label-rm %s NODE)",
			len(labelled), s.label, strings.Join(names, ", "), s.label)
	}
}

func nodeByID(nodes []docker.Node, id string) docker.Node {
	for _, n := range nodes {
		if n.ID == id {
			return n
		}
	}
	return docker.Node{ID: id, Hostname: id}
}
