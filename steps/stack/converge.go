package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/taskwatch"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
)

// ServiceState is where one service stands on its way to convergence, as `docker service ps --no-trunc`
// would show it.
type ServiceState struct {
	Service   string
	Converged bool
	Running   int    // tasks of the current spec that run (and are healthy, where a health check exists)
	Completed int    // jobs: tasks of the current run that completed
	Desired   int    // tasks wanted
	Problem   string // why not converged: the latest task's state and error, an update in progress, …
}

func (s ServiceState) String() string {
	if s.Converged {
		return fmt.Sprintf("%s converged (%d/%d)", s.Service, max(s.Running, s.Completed), s.Desired)
	}
	return fmt.Sprintf("%s %d/%d: %s", s.Service, max(s.Running, s.Completed), s.Desired, s.Problem)
}

// NotConvergedError says which services of a stack did not converge before the deadline, and why.
type NotConvergedError struct {
	Namespace string
	Waited    time.Duration
	Services  []ServiceState // the ones not converged
}

func (e *NotConvergedError) Error() string {
	var parts []string
	for _, s := range e.Services {
		parts = append(parts, s.String())
	}
	return fmt.Sprintf("stack %s did not converge in %s: %s", e.Namespace, e.Waited.Round(time.Second), strings.Join(parts, "; "))
}

// converge waits until every service of the stack has converged: all tasks of the current spec running (Swarm
// reports a task with a health check "running" only once healthy), every job run to completion. It checks again
// at each Docker event of the stack (engines with StackEvents), and at least every 2 s: the events are of this
// node's containers only, so a task on another node is seen by these checks. On failure it
// returns a *NotConvergedError naming each service, its task state and the last task error, or, as soon as a
// task error that will not heal repeats (the fail-fast rule, taskwatch.Rule), a *taskwatch.Failure.
//
// live, when not nil, is the stack's services as the caller has just read them, with nothing written since (a
// plan found nothing to change): the first check reads only their tasks. Only a stack that has not converged at
// that first check is watched (the events, and a fresh check once they are subscribed, so that none is missed),
// so a converged stack costs one read of its tasks.
func (d *Deploy) converge(ctx context.Context, e Engine, live []swarm.Service) error {
	t0 := time.Now()
	ns := d.stack.Namespace
	var last []ServiceState
	names := nodeNames(ctx, e, d.cfg.Watch != nil)
	first := &taskwatch.Rule{N: d.cfg.FailFastAfter, NodeName: names} // its count of checks is not the loop's
	if states, tasks, _, err := d.check(ctx, e, first, t0, live); err == nil && len(notConverged(states)) == 0 {
		if live != nil { // read with nothing written: the job's report needs no read of its own
			d.cfg.Seen.put(ns, live, tasks)
		}
		return nil
	}
	rule := &taskwatch.Rule{N: d.cfg.FailFastAfter, NodeName: names}
	var wake <-chan struct{}
	if ev, ok := e.(interface {
		StackEvents(ctx context.Context, namespace string) <-chan struct{}
	}); ok {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		wake = echo(ev.StackEvents(wctx, ns), taskStateLag, func(d time.Duration, f func()) { time.AfterFunc(d, f) })
	}
	err := wait.For(ctx, wait.Target{What: "stack " + ns + " to converge", Where: "Docker Swarm", Deadline: d.cfg.timeout(),
		Initial: time.Second, Max: 2 * time.Second, Progress: d.cfg.Progress, Wake: wake}, func(ctx context.Context) error {
		states, _, permanent, err := d.check(ctx, e, rule, t0, nil)
		if err != nil {
			var f *taskwatch.Failure
			if errors.As(err, &f) {
				return wait.Permanent(err)
			}
			return err
		}
		last = states
		bad := notConverged(states)
		if len(bad) == 0 {
			return nil
		}
		nerr := &NotConvergedError{Namespace: ns, Waited: time.Since(t0), Services: bad}
		if permanent {
			return wait.Permanent(nerr)
		}
		return nerr
	})
	if err == nil {
		return nil
	}
	var ue *wait.UnreachableError
	if errors.As(err, &ue) {
		if bad := notConverged(last); len(bad) > 0 {
			err = &NotConvergedError{Namespace: ns, Waited: ue.Waited, Services: bad}
		}
	}
	d.addTaskOutput(ctx, e, err)
	return err
}

// taskStateLag is how long after a container's event (a health check passed, an exit) the manager has usually
// recorded its task's new state, which is what a check reads: a check at the event may still see the old one. The
// manager's dispatcher writes the task states its agents report in batches, at least every 100 ms (swarmkit's
// maxBatchInterval; measured on Engine 20.10: a health_status event to its task "running" in the API 18-97 ms),
// so the first check after the event comes just after that, the others for a loaded machine. Every stage gated on
// a health (the bootstrap job on the last one) starts that much after the health check passed.
var taskStateLag = []time.Duration{120 * time.Millisecond, 300 * time.Millisecond, time.Second}

// echo passes on every signal of in at once and again after each of lags, timed by after (time.AfterFunc's
// shape; a signal pending is not doubled). It is never closed: once in is, it only stays quiet (as a closed wake
// would).
func echo(in <-chan struct{}, lags []time.Duration, after func(time.Duration, func())) <-chan struct{} {
	out := make(chan struct{}, 1)
	send := func() {
		select {
		case out <- struct{}{}:
		default:
		}
	}
	go func() {
		for range in {
			send()
			for _, d := range lags {
				after(d, send)
			}
		}
	}()
	return out
}

// notConverged returns the states of the services that have not converged.
func notConverged(states []ServiceState) []ServiceState {
	var bad []ServiceState
	for _, s := range states {
		if !s.Converged {
			bad = append(bad, s)
		}
	}
	return bad
}

// nodeNames returns a function from node ID to hostname, read once from engines that list nodes ("" for every
// node if the read failed), or nil for other engines. With early (a live view shows the nodes at every check),
// the nodes are read at once, while the caller reads on; otherwise only when a name is first asked for (a
// failure's message), so that a check that needs none reads no nodes.
func nodeNames(ctx context.Context, e Engine, early bool) func(string) string {
	ne, ok := e.(interface {
		Nodes(ctx context.Context) ([]docker.Node, error)
	})
	if !ok {
		return nil
	}
	read := sync.OnceValue(func() map[string]string {
		names := map[string]string{}
		nodes, err := ne.Nodes(ctx)
		if err != nil {
			return names // every name "": the IDs are shown
		}
		for _, n := range nodes {
			names[n.ID] = n.Hostname
		}
		return names
	})
	if early {
		go read()
	}
	return func(id string) string { return read()[id] }
}

// addTaskOutput adds to the problem of each service that did not converge the last lines its latest finished
// task printed: why a job failed, or why a server's task exited or never became healthy, is in its output.
func (d *Deploy) addTaskOutput(ctx context.Context, e Engine, err error) {
	var nce *NotConvergedError
	if !errors.As(err, &nce) {
		return
	}
	live, lerr := e.Services(ctx, d.stack.Namespace)
	if lerr != nil {
		return
	}
	for i, st := range nce.Services {
		if svc := findService(live, st.Service); svc != nil {
			if out := taskOutput(ctx, e, *svc); out != "" {
				nce.Services[i].Problem += "; " + out
			}
		}
	}
}

// check reads the services (unless live has them) and tasks of the stack once, tells Config.Watch what it saw,
// and applies the fail-fast rule (its *taskwatch.Failure is returned as the error). It returns each service's
// state and the tasks it read, by service ID; permanent reports a failure that waiting cannot cure.
func (d *Deploy) check(ctx context.Context, e Engine, rule *taskwatch.Rule, since time.Time, live []swarm.Service) (states []ServiceState, byService map[string][]swarm.Task, permanent bool, err error) {
	if live == nil {
		if live, err = e.Services(ctx, d.stack.Namespace); err != nil {
			return nil, nil, false, err
		}
	}
	if byService, err = docker.TasksByService(ctx, e, live); err != nil {
		return nil, nil, false, err
	}
	var out []ServiceState
	view := taskwatch.Stack{Namespace: d.stack.Namespace, Step: d.Name(), Since: since, Done: true}
	var stuck *taskwatch.Failure
	for _, want := range d.stack.Services {
		svc := findService(live, want.Spec.Name)
		if svc == nil {
			out = append(out, ServiceState{Service: want.Spec.Name, Problem: "service does not exist"})
			view.Services = append(view.Services, taskwatch.Service{Name: want.Spec.Name, Job: want.Job(), Problem: "service does not exist"})
			view.Done = false
			continue
		}
		tasks := byService[svc.ID]
		st, perm := Assess(*svc, want, tasks)
		permanent = permanent || perm
		out = append(out, st)
		current := currentTasks(*svc, tasks)
		if d.cfg.Watch != nil { // the view's nodes are named: only a live view reads them
			nodes, starting := taskwatch.Tally(current, rule.NodeName)
			view.Services = append(view.Services, taskwatch.Service{Name: st.Service, Job: want.Job(), Running: max(st.Running, st.Completed),
				Desired: st.Desired, Starting: starting, Converged: st.Converged, Problem: st.Problem, Nodes: nodes})
		}
		view.Done = view.Done && st.Converged
		if !st.Converged && stuck == nil {
			stuck = rule.Check(*svc, current, time.Now())
		}
	}
	if d.cfg.Watch != nil {
		d.cfg.Watch(view)
	}
	if stuck != nil {
		return out, byService, true, fmt.Errorf("stack %s: %w", d.stack.Namespace, stuck)
	}
	return out, byService, permanent, nil
}

// currentTasks returns the tasks made from the service's current task template (an update replaces the others).
func currentTasks(svc swarm.Service, tasks []swarm.Task) []swarm.Task {
	var current []swarm.Task
	for _, t := range tasks {
		if sameTaskSpec(t.Spec, svc.Spec.TaskTemplate) {
			current = append(current, t)
		}
	}
	return current
}

// Assess says whether one service has converged, from the service and its tasks as the engine lists them. It
// is pure. permanent reports a failure that waiting cannot cure (an image that does not exist, an update that
// Swarm rolled back, a job out of attempts).
func Assess(svc swarm.Service, want stacks.Service, tasks []swarm.Task) (st ServiceState, permanent bool) {
	st = ServiceState{Service: svc.Spec.Name}
	if u := svc.UpdateStatus; u != nil {
		switch u.State {
		case swarm.UpdateStateUpdating, swarm.UpdateStateRollbackStarted:
			st.Problem = fmt.Sprintf("update %s: %s", u.State, u.Message)
			return st, false
		case swarm.UpdateStatePaused, swarm.UpdateStateRollbackPaused:
			st.Problem = fmt.Sprintf("update %s: %s (run `docker service update --rollback %s` or fix and deploy again)", u.State, u.Message, svc.Spec.Name)
			return st, true
		case swarm.UpdateStateRollbackCompleted:
			st.Problem = fmt.Sprintf("update rolled back: %s", u.Message)
			return st, true
		}
	}
	current := currentTasks(svc, tasks)
	sort.Slice(current, func(i, j int) bool { return current[i].Status.Timestamp.After(current[j].Status.Timestamp) })
	mode := svc.Spec.Mode
	switch {
	case mode.ReplicatedJob != nil || mode.GlobalJob != nil:
		return assessJob(svc, current, st)
	case mode.Global != nil:
		st.Desired = int(desiredTasks(svc))
	default:
		st.Desired = 1
		if mode.Replicated != nil && mode.Replicated.Replicas != nil {
			st.Desired = int(*mode.Replicated.Replicas)
		}
	}
	for _, t := range current {
		if t.DesiredState == swarm.TaskStateRunning && t.Status.State == swarm.TaskStateRunning {
			st.Running++
		}
	}
	if st.Running >= st.Desired && (st.Desired > 0 || mode.Global == nil) {
		// no task of the current spec still on its way up or down
		for _, t := range current {
			if t.DesiredState == swarm.TaskStateRunning && t.Status.State != swarm.TaskStateRunning {
				st.Problem = describe(t, "")
				return st, false
			}
		}
		st.Converged = true
		return st, false
	}
	st.Problem = "no task yet"
	if len(current) > 0 {
		st.Problem = describe(current[0], latestError(current))
		if current[0].Status.State == swarm.TaskStateRejected && strings.Contains(current[0].Status.Err, "No such image") {
			permanent = true
		}
	}
	if want.Healthcheck && st.Problem != "" && len(current) > 0 && current[0].Status.State == swarm.TaskStateStarting {
		st.Problem += " (waiting for the health check)"
	}
	return st, permanent
}

func assessJob(svc swarm.Service, current []swarm.Task, st ServiceState) (ServiceState, bool) {
	iter := uint64(0)
	if svc.JobStatus != nil {
		iter = svc.JobStatus.JobIteration.Index
	}
	var run []swarm.Task
	for _, t := range current {
		if t.JobIteration == nil || t.JobIteration.Index == iter {
			run = append(run, t)
		}
	}
	st.Desired = 1
	if m := svc.Spec.Mode.ReplicatedJob; m != nil && m.TotalCompletions != nil {
		st.Desired = int(*m.TotalCompletions)
	}
	if svc.Spec.Mode.GlobalJob != nil {
		st.Desired = int(desiredTasks(svc))
	}
	failed, active := 0, 0
	for _, t := range run {
		switch t.Status.State {
		case swarm.TaskStateComplete:
			st.Completed++
		case swarm.TaskStateFailed, swarm.TaskStateRejected, swarm.TaskStateOrphaned:
			failed++
		case swarm.TaskStateShutdown, swarm.TaskStateRemove:
		default:
			active++
		}
	}
	if st.Completed >= st.Desired {
		st.Converged = true
		return st, false
	}
	st.Problem = "no task yet"
	if len(run) > 0 {
		st.Problem = describe(run[0], latestError(run))
	}
	// out of attempts: Swarm starts no new task
	if rp := svc.Spec.TaskTemplate.RestartPolicy; rp != nil && rp.MaxAttempts != nil && *rp.MaxAttempts > 0 &&
		failed > int(*rp.MaxAttempts) && active == 0 {
		st.Problem = fmt.Sprintf("job failed %d time(s), out of attempts; last: %s", failed, st.Problem)
		return st, true
	}
	return st, false
}

func desiredTasks(svc swarm.Service) uint64 {
	if svc.ServiceStatus != nil {
		return svc.ServiceStatus.DesiredTasks
	}
	return 0
}

// describe renders a task as `docker service ps --no-trunc` would: state, desired state, age, error.
func describe(t swarm.Task, lastErr string) string {
	s := fmt.Sprintf("task %s (slot %d) %s, desired %s, since %s", docker.ShortID(t.ID), t.Slot, t.Status.State, t.DesiredState,
		t.Status.Timestamp.Format(time.RFC3339))
	if t.Status.Message != "" {
		s += ": " + t.Status.Message
	}
	if t.Status.Err != "" {
		s += ": " + t.Status.Err
	}
	if cs := t.Status.ContainerStatus; cs != nil && cs.ExitCode != 0 {
		s += fmt.Sprintf(" (exit code %d)", cs.ExitCode)
	}
	if lastErr != "" && lastErr != t.Status.Err {
		s += "; last task error: " + lastErr
	}
	return s
}

func latestError(ts []swarm.Task) string {
	for _, t := range ts { // newest first
		if t.Status.Err != "" {
			return t.Status.Err
		}
	}
	return ""
}

// sameTaskSpec reports whether a task was made from the service's current task template. Both come from the
// engine, in the same normal form.
func sameTaskSpec(a, b swarm.TaskSpec) bool {
	a.Runtime, b.Runtime = "", "" // the service says "container", its tasks say nothing
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}
