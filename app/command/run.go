package command

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/app"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

// Builder makes the steps of one run, given the run's call counter and progress reporter; closer releases the
// clients they made.
type Builder func(counter *calls.Counter, progress wait.Progress) (all []steps.Step, closer func(), err error)

// PlanBuilder loads the configuration and makes the configuration steps (those only selects; all when nil).
func (c *CLI) PlanBuilder(only func(string) bool) Builder {
	return func(counter *calls.Counter, progress wait.Progress) ([]steps.Step, func(), error) {
		cfg, err := c.LoadConfig()
		if err != nil {
			return nil, nil, err
		}
		sys, all, err := app.Steps(cfg, counter, progress)
		if err != nil {
			return nil, nil, err
		}
		return SelectSteps(all, only), sys.Close, nil
	}
}

// ApplyBuilder makes the steps of an apply: those only selects (all when nil), each guarded against dependencies
// that go away mid-run (app.GuardedSteps).
func (c *CLI) ApplyBuilder(cfg *config.Config, only func(string) bool) Builder {
	return func(counter *calls.Counter, progress wait.Progress) ([]steps.Step, func(), error) {
		return app.GuardedSteps(cfg, counter, progress, c.Log, func(all []steps.Step) []steps.Step { return SelectSteps(all, only) })
	}
}

// SelectSteps returns the steps only selects, in order; all of them when only is nil.
func SelectSteps(all []steps.Step, only func(string) bool) []steps.Step {
	if only == nil {
		return all
	}
	var selected []steps.Step
	for _, s := range all {
		if only(s.Name()) {
			selected = append(selected, s)
		}
	}
	return selected
}

// Exec is the one run path of the commands that run steps (plan, apply, status, up, down): it builds the steps,
// runs them in mode with every step logged, prints the report, and returns an error carrying the exit code when
// the run did not converge.
func (c *CLI) Exec(ctx context.Context, mode steps.Mode, build Builder) error {
	rep, err := c.RunReport(ctx, mode, build)
	if err != nil {
		return err
	}
	return c.FinishReport(rep)
}

// RunReport builds the steps, runs them in mode with every step logged, and returns the report.
func (c *CLI) RunReport(ctx context.Context, mode steps.Mode, build Builder) (*steps.Report, error) {
	counter := calls.New()
	progress := func(what, where string, attempt int, elapsed time.Duration, err error) {
		c.Log.Info("waiting", "for", what, "at", where, "attempt", attempt, "elapsed", elapsed.Round(100*time.Millisecond).String(), "lastError", err.Error())
	}
	if c.Live != nil {
		progress = c.Live.Wait
	}
	selected, closer, err := build(counter, progress)
	if err != nil {
		return nil, err
	}
	if closer != nil {
		defer closer()
	}
	for i, s := range selected {
		selected[i] = Deadlined{Step: s, D: StepDeadline}
	}
	runner := &steps.Runner{Steps: selected, Counter: counter, Observer: func(e steps.Event) {
		if c.Live != nil {
			c.Live.Step(e)
		}
		if e.Start {
			c.Log.Info("step start", "step", e.Step)
			return
		}
		r := e.Result
		c.Log.Info("step done", "step", r.Name, "status", string(r.Status), "changes", len(r.Changes), "mutatingCalls", r.MutatingCalls,
			"duration", r.Duration.Round(time.Millisecond).String())
	}}
	rep, err := runner.Run(ctx, mode)
	if c.Live != nil {
		c.Live.Close() // the last frame stays; the report follows it
	}
	if err != nil {
		return nil, &exitcode.Error{Code: exitcode.Internal, Err: err}
	}
	return rep, nil
}

// FinishReport prints the report and returns an error carrying the exit code when the run did not converge.
func (c *CLI) FinishReport(rep *steps.Report) error {
	if err := PrintReport(c.Stdout, c.Output, rep); err != nil {
		return err
	}
	if code := exitcode.For(rep.Errors()...); code != exitcode.OK {
		return &exitcode.Error{Code: code, Err: fmt.Errorf("%s did not converge: %s", rep.Mode, FirstErrors(rep))}
	}
	return nil
}

// StepDeadline bounds the plan, and then the apply, of every step: a backstop for a call that would never end
// (every client also bounds each request by calls.AnswerTimeout), so that no run holds the lock forever. The
// longest steps (a stack's deploy, waiting for its services; the bootstrap job) take minutes.
const StepDeadline = 30 * time.Minute

// Deadlined is a step whose plan and apply each end after D.
type Deadlined struct {
	steps.Step
	D time.Duration
}

func (s Deadlined) Plan(ctx context.Context) (*steps.Plan, error) {
	var p *steps.Plan
	err := s.bounded(ctx, "plan", func(ctx context.Context) (err error) { p, err = s.Step.Plan(ctx); return err })
	if err != nil || p.Empty() {
		return p, err
	}
	out := steps.NewPlan(p.Changes, func(ctx context.Context) error { return s.bounded(ctx, "apply", p.Apply) })
	out.Notes = p.Notes
	return out, nil
}

// bounded runs fn with a context that ends after s.D, saying so when that is why fn failed.
func (s Deadlined) bounded(ctx context.Context, what string, fn func(context.Context) error) error {
	dctx, cancel := context.WithTimeout(ctx, s.D)
	defer cancel()
	err := fn(dctx)
	if err != nil && dctx.Err() != nil && ctx.Err() == nil {
		return fmt.Errorf("%s %s: stopped after %s, the deadline of a step: %w", s.Name(), what, s.D, err)
	}
	return err
}

// FirstErrors joins the errors of the failed steps of rep.
func FirstErrors(rep *steps.Report) string {
	var msgs []string
	for _, s := range rep.Steps {
		if s.Status == steps.Failed {
			msgs = append(msgs, s.Error)
		}
	}
	return strings.Join(msgs, "; ")
}

// PrintReport writes the report as JSON or as a human summary.
func PrintReport(w io.Writer, format string, rep *steps.Report) error {
	if format == "json" {
		return PrintJSON(w, rep)
	}
	counts := map[steps.Status]int{}
	for _, s := range rep.Steps {
		counts[s.Status]++
		fmt.Fprintf(w, "%-22s %-9s %6.1fs", s.Name, s.Status, float64(s.DurationMS)/1000)
		if s.MutatingCalls > 0 {
			fmt.Fprintf(w, "  %d write(s)", s.MutatingCalls)
		}
		fmt.Fprintln(w)
		for _, n := range s.Notes {
			fmt.Fprintf(w, "    %s\n", n)
		}
		for _, c := range s.Changes {
			fmt.Fprintf(w, "    %s %s\n", map[steps.Action]string{steps.Create: "+", steps.Update: "~", steps.Delete: "-"}[c.Action], c)
		}
		if s.Error != "" {
			fmt.Fprintf(w, "    error: %s\n", s.Error)
		}
	}
	verdict := "converged"
	if !rep.Converged() {
		verdict = "NOT converged"
		if rep.Mode == "plan" && counts[steps.Failed] == 0 && counts[steps.Skipped] == 0 {
			verdict = "changes pending"
		}
	}
	fmt.Fprintf(w, "%s: %d step(s): %d unchanged, %d %s, %d failed, %d skipped; %d mutating call(s); %s\n",
		rep.Mode, len(rep.Steps), counts[steps.Unchanged], counts[steps.Changed]+counts[steps.Planned],
		map[string]string{"plan": "to change", "apply": "changed"}[rep.Mode], counts[steps.Failed], counts[steps.Skipped],
		rep.MutatingCalls, verdict)
	return nil
}

// Plan is `plan`: every step planned, nothing written, the report printed; with detailed, ErrPending when
// changes are pending.
func (c *CLI) Plan(ctx context.Context, detailed bool) error {
	rep, err := c.RunReport(ctx, steps.PlanOnly, c.PlanBuilder(nil))
	if err != nil {
		return err
	}
	if err := c.FinishReport(rep); err != nil {
		return err
	}
	if detailed && !rep.Converged() {
		return ErrPending
	}
	return nil
}
