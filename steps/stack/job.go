package stack

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

// LogReader reads the output of a task; *docker.Client implements it. Engines without it report no output.
type LogReader interface {
	TaskLogs(ctx context.Context, taskID string, tail int) (stdout, stderr string, err error)
}

// JobStepName is the name of the step that reports on the job service of stack name, e.g.
// "stack/openziti/bootstrap".
func JobStepName(name, service string) string { return StepName(name) + "/" + service }

// Job is the step that reports on a one-shot job of a stack (ziti-bootstrap's own `bootstrap`): when its
// current run completed, after how many attempts, how long after every service of the stacks had become
// healthy, and what it printed (its report). It runs after the stack's deploy step, which started the job and
// waited for it to complete; it never writes.
type Job struct {
	cfg     Config
	stack   *stacks.Stack
	service string
	among   []*stacks.Stack
}

// NewJob returns the report step of the job service of st; among are the stacks whose services' health the
// job waits for (all the stacks deployed with it).
func NewJob(cfg Config, st *stacks.Stack, service string, among ...*stacks.Stack) *Job {
	return &Job{cfg: cfg, stack: st, service: service, among: among}
}

func (j *Job) Name() string        { return JobStepName(j.stack.Name, j.service) }
func (j *Job) DependsOn() []string { return []string{StepName(j.stack.Name)} }

// JobRun is what Job found about the current run of the job.
type JobRun struct {
	Service    string
	Iteration  uint64
	Attempts   int // tasks of this run
	Failed     int
	FirstStart time.Time // creation of the run's first task
	Completed  time.Time
	// HealthyAt is when the last of the other services of the stacks that were healthy before the run's first task
	// became so (running, and healthy where a health check exists): the job's dependencies are among them.
	HealthyAt   time.Time
	LastHealthy string // that service
	// Later lists the services that became healthy only after the run's first task (the job did not need them).
	Later  []string
	Output string // standard output of the completed task
}

// SinceHealthy is the time from "services healthy" to "job completed".
func (r JobRun) SinceHealthy() time.Duration { return r.Completed.Sub(r.HealthyAt) }

// startedOnHealthy bounds the time from the last service healthy to the job's first task for a job started
// because they were healthy (a Graph starts jobs so): its time to converge counts from that service's health. A
// job started long after (run again on a system up for hours) reports that services were healthy before.
const startedOnHealthy = time.Minute

// Plan reads the job's tasks and output, and the other services' tasks, and returns an empty plan with notes.
func (j *Job) Plan(ctx context.Context) (*steps.Plan, error) {
	e, err := (&Deploy{cfg: j.cfg}).engine()
	if err != nil {
		return nil, err
	}
	run, err := inspectJob(ctx, e, j.cfg.Seen, j.stack, j.service, j.among...)
	if err != nil {
		return nil, err
	}
	p := steps.NewPlan(nil, nil)
	p.Note("job %s: run %d completed at %s after %d attempt(s), %d failed; %s from its first task",
		run.Service, run.Iteration, run.Completed.Format(time.RFC3339), run.Attempts, run.Failed,
		run.Completed.Sub(run.FirstStart).Round(100*time.Millisecond))
	switch {
	case !run.HealthyAt.IsZero() && run.FirstStart.Sub(run.HealthyAt) > startedOnHealthy:
		p.Note("services were healthy before this run started (the last: %s at %s)", run.LastHealthy, run.HealthyAt.Format(time.RFC3339))
	case !run.HealthyAt.IsZero():
		p.Note("bootstrap converged %s after services healthy (the last: %s at %s)",
			run.SinceHealthy().Round(10*time.Millisecond), run.LastHealthy, run.HealthyAt.Format(time.RFC3339))
	}
	if len(run.Later) > 0 {
		sort.Strings(run.Later)
		p.Note("healthy only after the job started: %s", strings.Join(run.Later, ", "))
	}
	if run.Output != "" {
		p.Note("output of run %d:", run.Iteration)
		for _, l := range strings.Split(strings.TrimRight(run.Output, "\n"), "\n") {
			p.Note("| %s", l)
		}
	}
	return p, nil
}

// InspectJob finds the completed task of the job's current run and the time the other services became healthy.
func InspectJob(ctx context.Context, e Engine, st *stacks.Stack, service string, among ...*stacks.Stack) (JobRun, error) {
	return inspectJob(ctx, e, nil, st, service, among...)
}

// inspectJob is InspectJob, with the services and tasks of stacks the run's deploys found converged without a
// write taken from seen. Three round trips: the services of every stack at once, the tasks of the job and of the
// others' services in one list, then the job's output; only the last when seen has every stack.
func inspectJob(ctx context.Context, e Engine, seen *Seen, st *stacks.Stack, service string, among ...*stacks.Stack) (JobRun, error) {
	name := st.Namespace + "_" + service
	run := JobRun{Service: name}
	namespaces := []string{st.Namespace}
	for _, other := range among {
		if !slices.Contains(namespaces, other.Namespace) {
			namespaces = append(namespaces, other.Namespace)
		}
	}
	byNamespace, byService, found := seen.get(namespaces)
	if !found {
		var err error
		if byNamespace, err = docker.ServicesByNamespace(ctx, e, namespaces...); err != nil {
			return run, err
		}
	}
	svc := findService(byNamespace[st.Namespace], name)
	if svc == nil {
		return run, fmt.Errorf("job service %s does not exist", name)
	}
	if svc.Spec.Mode.ReplicatedJob == nil && svc.Spec.Mode.GlobalJob == nil {
		return run, fmt.Errorf("service %s is not a job (mode %s)", name, modeString(svc.Spec.Mode))
	}
	others := []swarm.Service{}
	for _, other := range among {
		others = append(others, slices.DeleteFunc(slices.Clone(byNamespace[other.Namespace]), func(s swarm.Service) bool {
			return s.Spec.Mode.ReplicatedJob != nil || s.Spec.Mode.GlobalJob != nil
		})...)
	}
	if !found {
		var err error
		if byService, err = docker.TasksByService(ctx, e, append([]swarm.Service{*svc}, others...)); err != nil {
			return run, err
		}
	}
	tasks := byService[svc.ID]
	if svc.JobStatus != nil {
		run.Iteration = svc.JobStatus.JobIteration.Index
	}
	var done *swarm.Task
	for i, t := range tasks {
		if t.JobIteration != nil && t.JobIteration.Index != run.Iteration {
			continue
		}
		run.Attempts++
		if run.FirstStart.IsZero() || t.CreatedAt.Before(run.FirstStart) {
			run.FirstStart = t.CreatedAt
		}
		switch t.Status.State {
		case swarm.TaskStateComplete:
			if done == nil || t.Status.Timestamp.After(done.Status.Timestamp) {
				done = &tasks[i]
			}
		case swarm.TaskStateFailed, swarm.TaskStateRejected:
			run.Failed++
		}
	}
	if done == nil {
		return run, fmt.Errorf("job %s: run %d has not completed (%d attempt(s), %d failed)", name, run.Iteration, run.Attempts, run.Failed)
	}
	run.Completed = done.Status.Timestamp
	if r, ok := e.(LogReader); ok {
		out, _, err := r.TaskLogs(ctx, done.ID, 200)
		if err != nil {
			return run, err
		}
		run.Output = out
	}
	for _, s := range others {
		ts := byService[s.ID]
		var healthy time.Time
		for _, t := range ts {
			if t.DesiredState == swarm.TaskStateRunning && t.Status.State == swarm.TaskStateRunning &&
				sameTaskSpec(t.Spec, s.Spec.TaskTemplate) && t.Status.Timestamp.After(healthy) {
				healthy = t.Status.Timestamp
			}
		}
		run.noteHealthy(s.Spec.Name, healthy)
	}
	return run, nil
}

// noteHealthy counts service, healthy since at (zero: not healthy), in HealthyAt when it was healthy before the
// run's first task: the job starts once the services it needs are healthy, so one that became healthy only after
// that (router-enrol, the router, which wait for the job's SPIRE entries) is not among them and goes to Later.
func (r *JobRun) noteHealthy(service string, at time.Time) {
	switch {
	case at.IsZero():
	case at.After(r.FirstStart):
		r.Later = append(r.Later, service)
	case at.After(r.HealthyAt):
		r.HealthyAt, r.LastHealthy = at, service
	}
}

// taskOutput returns the last lines printed by the latest task of svc that ended (failed; for a job, completed
// too), for the error that says it did not converge.
func taskOutput(ctx context.Context, e Engine, svc swarm.Service) string {
	r, ok := e.(LogReader)
	if !ok {
		return ""
	}
	tasks, err := e.Tasks(ctx, svc.ID)
	if err != nil || len(tasks) == 0 {
		return ""
	}
	job := svc.Spec.Mode.ReplicatedJob != nil || svc.Spec.Mode.GlobalJob != nil
	sort.Slice(tasks, func(i, k int) bool { return tasks[i].Status.Timestamp.After(tasks[k].Status.Timestamp) })
	for _, t := range tasks {
		if t.Status.State != swarm.TaskStateFailed && (!job || t.Status.State != swarm.TaskStateComplete) {
			continue
		}
		out, errs, err := r.TaskLogs(ctx, t.ID, outputScan)
		if err != nil {
			return ""
		}
		lines := telling(errs+"\n"+out, outputTail)
		if len(lines) == 0 {
			return ""
		}
		return fmt.Sprintf("output of task %s: %s", docker.ShortID(t.ID), strings.Join(lines, " ⏎ "))
	}
	return ""
}

// outputScan lines of a failed task are read; outputTail of them end the error, after the first that names a
// cause if it is earlier.
const (
	outputScan = 200
	outputTail = 8
)

// causePrefixes start the line that says why a program stopped: a Go panic or fatal error (whose stack trace fills
// the last lines), or an error a program or script printed.
var causePrefixes = []string{"panic:", "fatal error:", "error:", "error ", "fatal:", "level=error", "level=fatal"}

// telling returns the last tail non-blank lines of out, preceded by the first line that names a cause when that
// line is earlier (a panic's message sits above its stack trace) followed by "…".
func telling(out string, tail int) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) <= tail {
		return lines
	}
	last := lines[len(lines)-tail:]
	for _, l := range lines[:len(lines)-tail] {
		low := strings.ToLower(l)
		for _, p := range causePrefixes {
			if strings.HasPrefix(low, p) {
				return append([]string{l, "…"}, last...)
			}
		}
	}
	return last
}
