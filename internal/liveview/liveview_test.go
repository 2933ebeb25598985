package liveview

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/taskwatch"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// clock is a settable time for frames that do not depend on when the test runs.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// The frame of a run half-way: steps done, one waiting for its stack with per-node task counts, health and the
// problem of the service not yet healthy; a step's error; lines cut to the terminal's width.
func TestFrameGolden(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 5, 15, 0, 0, 0, time.UTC)}
	var out bytes.Buffer
	v := New(&out, "up", func() int { return 100 })
	v.now = c.now
	v.start = c.t
	v.Step(steps.Event{Step: "docker/reachable", Start: true})
	c.t = c.t.Add(50 * time.Millisecond)
	v.Step(steps.Event{Step: "docker/reachable", Result: &steps.Result{Name: "docker/reachable", Status: steps.Unchanged, Duration: 50 * time.Millisecond}})
	v.Step(steps.Event{Step: "stack/spire", Start: true})
	c.t = c.t.Add(35 * time.Second)
	v.Step(steps.Event{Step: "stack/spire", Result: &steps.Result{Name: "stack/spire", Status: steps.Changed, Duration: 35 * time.Second, MutatingCalls: 9}})
	v.Step(steps.Event{Step: "stack/keycloak", Start: true})
	c.t = c.t.Add(80 * time.Second)
	v.Wait("stack zbt-keycloak to converge", "Docker Swarm", 7, 80*time.Second, errors.New("not yet"))
	v.Stack(taskwatch.Stack{Namespace: "zbt-keycloak", Step: "stack/keycloak", Services: []taskwatch.Service{
		{Name: "zbt-keycloak_postgres", Running: 1, Desired: 1, Converged: true, Nodes: []taskwatch.NodeTasks{{Node: "node1", Running: 1}}},
		{Name: "zbt-keycloak_keycloak", Desired: 1, Starting: 1, Problem: "task abc (slot 1) starting, desired running (waiting for the health check)",
			Nodes: []taskwatch.NodeTasks{{Node: "node1", Starting: 1, Failed: 2}}},
	}})
	v.Close()
	golden(t, "frame.golden", v.Frame(), 100)
	// redrawn in place: every frame after the first starts by going up as many lines as the frame before had
	if !strings.Contains(out.String(), "\x1b[") || !strings.Contains(out.String(), "A\r\x1b[J") {
		t.Errorf("no in-place redraw in the output: %q", out.String())
	}
}
