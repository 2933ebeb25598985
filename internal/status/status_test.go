package status

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/ziti-bootstrap/ziti-bootstrap/backup"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spire"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

type fakeEngine struct {
	nodes    []docker.Node
	services map[string][]swarm.Service
	tasks    map[string][]swarm.Task
}

func (f fakeEngine) Nodes(context.Context) ([]docker.Node, error) { return f.nodes, nil }
func (f fakeEngine) Services(_ context.Context, ns string) ([]swarm.Service, error) {
	return f.services[ns], nil
}
func (f fakeEngine) Tasks(_ context.Context, ids ...string) ([]swarm.Task, error) {
	var out []swarm.Task
	for _, id := range ids {
		for _, t := range f.tasks[id] {
			t.ServiceID = id
			out = append(out, t)
		}
	}
	return out, nil
}

// Agents go to the node their ID names; a job shows its current run only; old tasks are not shown.
func TestGetSwarm(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	job := swarm.Service{ID: "j", Spec: swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "openziti_bootstrap"},
		Mode: swarm.ServiceMode{ReplicatedJob: &swarm.ReplicatedJob{}}}, JobStatus: &swarm.JobStatus{JobIteration: swarm.Version{Index: 7}}}
	ctrl := swarm.Service{ID: "c", Spec: swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "openziti_ziti-controller"}}}
	task := func(node string, desired, state swarm.TaskState, iter uint64) swarm.Task {
		t := swarm.Task{NodeID: node, DesiredState: desired, Status: swarm.TaskStatus{State: state, Timestamp: t0}}
		if iter > 0 {
			t.JobIteration = &swarm.Version{Index: iter}
		}
		return t
	}
	e := fakeEngine{
		nodes:    []docker.Node{{ID: "n1", Hostname: "a", Role: "manager", State: "ready"}, {ID: "n2", Hostname: "b", Role: "worker", State: "down"}},
		services: map[string][]swarm.Service{"openziti": {job, ctrl}},
		tasks: map[string][]swarm.Task{
			"j": {task("n1", swarm.TaskStateComplete, swarm.TaskStateComplete, 7), task("n1", swarm.TaskStateComplete, swarm.TaskStateComplete, 6)},
			"c": {task("n2", swarm.TaskStateShutdown, swarm.TaskStateFailed, 0), task("n1", swarm.TaskStateRunning, swarm.TaskStateRunning, 0)},
		},
	}
	agents := []spire.Agent{{ID: "spiffe://td/spire/agent/x509pop/n2"}, {ID: "spiffe://td/spire/agent/join_token/xyz"}}
	s := GetSwarm(context.Background(), e, []string{"openziti", "spire"}, agents, nil)
	if s.Error != "" || len(s.Nodes) != 2 {
		t.Fatalf("%+v", s)
	}
	n1, n2 := s.Nodes[0], s.Nodes[1]
	if len(n1.Tasks) != 2 || n1.Tasks[0].Service != "openziti_bootstrap" || n1.Tasks[0].State != "complete" ||
		n1.Tasks[1].Service != "openziti_ziti-controller" || n1.Tasks[1].State != "running" || len(n1.SpireAgents) != 0 {
		t.Errorf("node a: %+v", n1)
	}
	if len(n2.Tasks) != 0 || len(n2.SpireAgents) != 1 || n2.SpireAgents[0].ID != agents[0].ID {
		t.Errorf("node b: %+v", n2)
	}
	if len(s.SpireAgentsWithoutNode) != 1 || s.SpireAgentsWithoutNode[0].ID != agents[1].ID {
		t.Errorf("agents without node: %+v", s.SpireAgentsWithoutNode)
	}
	if s := GetSwarm(context.Background(), e, nil, nil, errors.New("socket gone")); !strings.Contains(s.Error, "SPIRE agents: socket gone") {
		t.Errorf("agents error not reported: %q", s.Error)
	}
}

// The newest set is "last" whatever its state; only a complete, authenticated one is verified and "lastValid".
func TestNewBackups(t *testing.T) {
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	sets := []backup.SetInfo{
		{ID: "s1", Started: now.Add(-2 * time.Hour), State: backup.Complete, Authenticated: true, Size: 100},
		{ID: "s2", Started: now.Add(-time.Hour), State: backup.Damaged, Authenticated: true, Size: 50},
	}
	b := NewBackups(now, "p", "0 3 * * *", sets, nil)
	if b.Sets != 2 || b.Last.ID != "s2" || b.Last.Verified || b.Last.AgeSeconds != 3600 || b.LastValid.ID != "s1" || !b.LastValid.Verified ||
		!b.NextScheduled.Equal(time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)) {
		t.Errorf("%+v last %+v valid %+v", b, b.Last, b.LastValid)
	}
	if b := NewBackups(now, "p", "", nil, nil); b.Last != nil || b.LastValid != nil || !b.NextScheduled.IsZero() {
		t.Errorf("no sets: %+v", b)
	}
}

// Reachable steps are systems, the others drift; drift makes the document not converged, and the text says what.
func TestNewAndRender(t *testing.T) {
	rep := &steps.Report{Steps: []steps.Result{
		{Name: "ziti/reachable", Status: steps.Unchanged, Notes: []string{"OpenZiti controller at https://c:1280: version v1.7.2"}},
		{Name: "ziti/oidc", Status: steps.Planned, Changes: []steps.Change{{Action: steps.Create, Kind: "ziti-auth-policy", Key: "kc", Reason: "missing"}}},
	}}
	d := New(time.Now(), rep)
	if d.Converged || d.Drift.Converged || d.Drift.Changes != 1 || len(d.Systems) != 1 || len(d.Drift.Steps) != 1 {
		t.Fatalf("%+v", d)
	}
	var w bytes.Buffer
	if err := Render(&w, d); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"version v1.7.2", "drift: 1 change(s) pending", "create ziti-auth-policy kc: missing", "status: NOT converged"} {
		if !strings.Contains(w.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, w.String())
		}
	}
}
