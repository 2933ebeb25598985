package taskwatch

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
)

// Errors as the Docker Engine (20.10) writes them into task status.
const (
	bindErr  = "starting container failed: driver failed programming external connectivity on endpoint zbt_keycloak.1.%s (%s): Error starting userland proxy: listen tcp4 0.0.0.0:18080: bind: address already in use"
	allocErr = "starting container failed: driver failed programming external connectivity on endpoint x (%s%s): Bind for 0.0.0.0:18080 failed: port is already allocated"
	imageErr = "No such image: zb-local/nope:1"
	mountErr = `invalid mount config for type "bind": bind source path does not exist: /nonexistent`
	exitErr  = "task: non-zero exit (1)"
	placeMsg = "no suitable node (scheduling constraints not satisfied on 1 node)"
)

var t0 = time.Date(2026, 12, 5, 15, 0, 0, 0, time.UTC)

// attempt is the i-th task of slot 1 (newer with i), in state with err.
func attempt(i int, state swarm.TaskState, err string) swarm.Task {
	if strings.Contains(err, "%s") {
		err = fmt.Sprintf(err, fmt.Sprintf("task%04d", i), fmt.Sprintf("ep%04d", i))
	}
	return swarm.Task{ID: fmt.Sprintf("task%04d", i), Slot: 1, NodeID: "node1", DesiredState: swarm.TaskStateShutdown,
		Status: swarm.TaskStatus{State: state, Err: err, Timestamp: t0.Add(time.Duration(i) * 10 * time.Second)}}
}

func svc() swarm.Service {
	s := swarm.Service{}
	s.Spec.Name = "zbt_keycloak"
	s.Spec.TaskTemplate.Placement = &swarm.Placement{Constraints: []string{"node.labels.x == y"}}
	return s
}

func TestRuleStreaks(t *testing.T) {
	failed, rejected, starting := swarm.TaskStateFailed, swarm.TaskStateRejected, swarm.TaskStateStarting
	for _, tc := range []struct {
		name  string
		tasks []swarm.Task
		cause Cause // "" = keep waiting
		want  string
	}{
		{"bind failure three times (IDs differ)", []swarm.Task{attempt(1, failed, bindErr), attempt(2, failed, bindErr), attempt(3, failed, bindErr)}, PortInUse, "port 18080"},
		{"port allocated by another container", []swarm.Task{attempt(1, failed, allocErr), attempt(2, failed, allocErr), attempt(3, failed, allocErr)}, PortInUse, "port 18080"},
		{"bind failure twice: wait", []swarm.Task{attempt(1, failed, bindErr), attempt(2, failed, bindErr)}, "", ""},
		{"the next attempt on its way does not break the streak", []swarm.Task{attempt(1, failed, bindErr), attempt(2, failed, bindErr), attempt(3, failed, bindErr), attempt(4, starting, "")}, PortInUse, "3 task(s) in a row"},
		{"a transient exit breaks the streak", []swarm.Task{attempt(1, failed, bindErr), attempt(2, failed, bindErr), attempt(3, failed, exitErr), attempt(4, failed, bindErr)}, "", ""},
		{"exits repeat: transient, wait", []swarm.Task{attempt(1, failed, exitErr), attempt(2, failed, exitErr), attempt(3, failed, exitErr), attempt(4, failed, exitErr)}, "", ""},
		{"a running attempt in between breaks it", []swarm.Task{attempt(1, failed, bindErr), attempt(2, swarm.TaskStateShutdown, ""), attempt(3, failed, bindErr), attempt(4, failed, bindErr)}, "", ""},
		{"missing image", []swarm.Task{attempt(1, rejected, imageErr), attempt(2, rejected, imageErr), attempt(3, rejected, imageErr)}, ImageMissing, "zb-local/nope:1"},
		{"invalid mount", []swarm.Task{attempt(1, rejected, mountErr), attempt(2, rejected, mountErr), attempt(3, rejected, mountErr)}, InvalidMount, "/nonexistent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Rule{NodeName: func(id string) string { return map[string]string{"node1": "host1"}[id] }}
			f := r.Check(svc(), tc.tasks, t0)
			if tc.cause == "" {
				if f != nil {
					t.Fatalf("stopped: %v; want to keep waiting", f)
				}
				return
			}
			if f == nil {
				t.Fatalf("kept waiting; want %s", tc.cause)
			}
			msg := f.Error()
			for _, want := range []string{"zbt_keycloak", string(tc.cause), "host1", "fix: ", tc.want} {
				if !strings.Contains(msg, want) {
					t.Errorf("%q does not say %q", msg, want)
				}
			}
		})
	}
}

// A task held pending by placement stops the wait only after N checks and the grace period.
func TestRulePlacement(t *testing.T) {
	task := swarm.Task{ID: "p1", Slot: 1, DesiredState: swarm.TaskStateRunning, Status: swarm.TaskStatus{State: swarm.TaskStatePending, Err: placeMsg, Timestamp: t0}}
	r := &Rule{N: 3, Grace: 30 * time.Second}
	for i, at := range []time.Duration{0, 10 * time.Second, 20 * time.Second} {
		if f := r.Check(svc(), []swarm.Task{task}, t0.Add(at)); f != nil {
			t.Fatalf("check %d at +%s stopped: %v", i+1, at, f)
		}
	}
	f := r.Check(svc(), []swarm.Task{task}, t0.Add(31*time.Second))
	if f == nil || f.Cause != NoSuitableNode || !strings.Contains(f.Error(), "node.labels.x == y") {
		t.Fatalf("after the grace: %v; want a placement failure naming the constraint", f)
	}
	// the task got placed: the count starts again
	r2 := &Rule{N: 1, Grace: time.Nanosecond}
	r2.Check(svc(), []swarm.Task{task}, t0)
	placed := task
	placed.Status.State = swarm.TaskStateRunning
	if f := r2.Check(svc(), []swarm.Task{placed}, t0.Add(time.Hour)); f != nil {
		t.Fatalf("a placed task stopped the wait: %v", f)
	}
}
