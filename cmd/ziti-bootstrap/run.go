package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/app"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

// stepBuilder makes the steps of one run, given the run's call counter and progress reporter; closer releases
// the clients they made.
type stepBuilder func(counter *calls.Counter, progress wait.Progress) (all []steps.Step, closer func(), err error)

// runSteps loads the configuration and runs the configuration steps (those only selects; all when nil) in mode.
func runSteps(ctx context.Context, g *globals, mode steps.Mode, only func(string) bool) error {
	return execSteps(ctx, g, mode, planBuilder(g, only))
}

// planBuilder loads the configuration and makes the configuration steps (those only selects; all when nil).
func planBuilder(g *globals, only func(string) bool) stepBuilder {
	return func(counter *calls.Counter, progress wait.Progress) ([]steps.Step, func(), error) {
		cfg, err := g.loadConfig()
		if err != nil {
			return nil, nil, err
		}
		sys, all, err := app.Steps(cfg, counter, progress)
		if err != nil {
			return nil, nil, err
		}
		return selectSteps(all, only), sys.Close, nil
	}
}

// selectSteps returns the steps only selects, in order; all of them when only is nil.
func selectSteps(all []steps.Step, only func(string) bool) []steps.Step {
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

// execSteps is the one run path of the commands that run steps (plan, apply, status, up, down): it builds the
// steps, runs them in mode with every step logged, prints the report, and returns an exitError carrying the
// exit code when the run did not converge.
func execSteps(ctx context.Context, g *globals, mode steps.Mode, build stepBuilder) error {
	rep, err := runReport(ctx, g, mode, build)
	if err != nil {
		return err
	}
	return finishReport(g, rep)
}

// runReport builds the steps, runs them in mode with every step logged, and returns the report.
func runReport(ctx context.Context, g *globals, mode steps.Mode, build stepBuilder) (*steps.Report, error) {
	counter := calls.New()
	progress := func(what, where string, attempt int, elapsed time.Duration, err error) {
		g.log.Info("waiting", "for", what, "at", where, "attempt", attempt, "elapsed", elapsed.Round(100*time.Millisecond).String(), "lastError", err.Error())
	}
	if g.live != nil {
		progress = g.live.Wait
	}
	selected, closer, err := build(counter, progress)
	if err != nil {
		return nil, err
	}
	if closer != nil {
		defer closer()
	}
	for i, s := range selected {
		selected[i] = deadlined{Step: s, d: stepDeadline}
	}
	runner := &steps.Runner{Steps: selected, Counter: counter, Observer: func(e steps.Event) {
		if g.live != nil {
			g.live.Step(e)
		}
		if e.Start {
			g.log.Info("step start", "step", e.Step)
			return
		}
		r := e.Result
		g.log.Info("step done", "step", r.Name, "status", string(r.Status), "changes", len(r.Changes), "mutatingCalls", r.MutatingCalls,
			"duration", r.Duration.Round(time.Millisecond).String())
	}}
	rep, err := runner.Run(ctx, mode)
	if g.live != nil {
		g.live.Close() // the last frame stays; the report follows it
	}
	if err != nil {
		return nil, &exitError{exitcode.Internal, err}
	}
	return rep, nil
}

// finishReport prints the report and returns an exitError carrying the exit code when the run did not converge.
func finishReport(g *globals, rep *steps.Report) error {
	if err := printReport(g.stdout, g.output, rep); err != nil {
		return err
	}
	if code := exitcode.For(rep.Errors()...); code != exitcode.OK {
		return &exitError{code, fmt.Errorf("%s did not converge: %s", rep.Mode, firstErrors(rep))}
	}
	return nil
}

// stepDeadline bounds the plan, and then the apply, of every step: a backstop for a call that would never end
// (every client also bounds each request by calls.AnswerTimeout), so that no run holds the lock forever. The
// longest steps (a stack's deploy, waiting for its services; the bootstrap job) take minutes.
const stepDeadline = 30 * time.Minute

// deadlined is a step whose plan and apply each end after d.
type deadlined struct {
	steps.Step
	d time.Duration
}

func (s deadlined) Plan(ctx context.Context) (*steps.Plan, error) {
	var p *steps.Plan
	err := s.bounded(ctx, "plan", func(ctx context.Context) (err error) { p, err = s.Step.Plan(ctx); return err })
	if err != nil || p.Empty() {
		return p, err
	}
	out := steps.NewPlan(p.Changes, func(ctx context.Context) error { return s.bounded(ctx, "apply", p.Apply) })
	out.Notes = p.Notes
	return out, nil
}

// bounded runs fn with a context that ends after s.d, saying so when that is why fn failed.
func (s deadlined) bounded(ctx context.Context, what string, fn func(context.Context) error) error {
	dctx, cancel := context.WithTimeout(ctx, s.d)
	defer cancel()
	err := fn(dctx)
	if err != nil && dctx.Err() != nil && ctx.Err() == nil {
		return fmt.Errorf("%s %s: stopped after %s, the deadline of a step: %w", s.Name(), what, s.d, err)
	}
	return err
}

func firstErrors(rep *steps.Report) string {
	var msgs []string
	for _, s := range rep.Steps {
		if s.Status == steps.Failed {
			msgs = append(msgs, s.Error)
		}
	}
	return strings.Join(msgs, "; ")
}

// printReport writes the report as JSON or as a human summary.
func printReport(w io.Writer, format string, rep *steps.Report) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
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
