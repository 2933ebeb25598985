package stack

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

// Graph builds the deploy steps of stacks deployed together, each started as soon as what it really needs is
// there, rather than each after the one before it:
//
//   - a stack whose services mount a volume that another stack of the graph owns (declared external here; e.g.
//     SPIRE's agent socket, through which the OpenZiti router and router-enrol get their SVIDs) is deployed once
//     that stack is healthy: its deploy step depends on the owner's;
//   - a stack that joins a network another stack of the graph owns (e.g. the Keycloak network the controller
//     fetches signing keys on) only waits, inside its step, until that network exists: the owner's writes, not
//     its health;
//   - the jobs of a stack (the bootstrap job, which configures all three systems) are started only once every
//     other stack of the graph is healthy; the stack's other services start at once.
//
// Every deploy step depends on first (e.g. the state node's label). Steps lists them in the order of the stacks,
// which is the order a run reports them in.
type Graph struct {
	cfg    Config
	first  string
	stacks []*stacks.Stack
	gates  map[*stacks.Stack]*stackGates
}

// stackGates are the moments the deploy step of a stack of the graph has reached, for the steps that wait on
// them: written (it has made its writes, or will make none: those waiting for its objects then see for themselves
// what exists) and done (healthy, or the step failed: then with its error).
type stackGates struct{ written, done *gate }

// NewGraph returns the graph of sts, whose deploys depend on first ("" for none).
func NewGraph(cfg Config, first string, sts ...*stacks.Stack) *Graph {
	g := &Graph{cfg: cfg, first: first, stacks: sts, gates: map[*stacks.Stack]*stackGates{}}
	for _, st := range sts {
		g.gates[st] = &stackGates{written: newGate(), done: newGate()}
	}
	return g
}

// Steps returns the deploy step of each stack, preceded by the steps before returns for it (nil: none). Those
// run after what the stack needs healthy (they declare their own dependencies; first at least), and the stack's
// deploy after the last of them, e.g. the steps that start the OpenZiti controller alone and pin its CA.
func (g *Graph) Steps(before func(st *stacks.Stack) []steps.Step) []steps.Step {
	var out []steps.Step
	for _, st := range g.stacks {
		deps := g.needs(st)
		if before != nil {
			if pre := before(st); len(pre) > 0 {
				out = append(out, pre...)
				deps = append(deps, pre[len(pre)-1].Name())
			}
		}
		d := g.Deploy(st, deps...)
		d.own = g.gates[st]
		out = append(out, d)
	}
	return out
}

// Deploy returns the deploy step of st (a stack of the graph, or another view of one, e.g. the controller alone),
// run after first and deps: it waits for the networks the graph's stacks own, and starts its jobs only once the
// other stacks are healthy.
func (g *Graph) Deploy(st *stacks.Stack, deps ...string) *Deploy {
	if g.first != "" && !slices.Contains(deps, g.first) {
		deps = append([]string{g.first}, deps...)
	}
	return &Deploy{cfg: g.cfg, stack: st, deps: deps, graph: g}
}

// needs returns the deploy steps of the stacks st needs healthy: the owners of the volumes it declares external.
func (g *Graph) needs(st *stacks.Stack) []string {
	var out []string
	for _, v := range st.Volumes {
		if !v.External {
			continue
		}
		for _, o := range g.stacks {
			if o != st && slices.ContainsFunc(o.Volumes, func(ov stacks.Volume) bool { return !ov.External && ov.Name == v.Name }) &&
				!slices.Contains(out, StepName(o.Name)) {
				out = append(out, StepName(o.Name))
			}
		}
	}
	return out
}

// needsStack reports whether a needs b healthy, directly or through other stacks (at most depth steps away).
func (g *Graph) needsStack(a, b *stacks.Stack, depth int) bool {
	if depth == 0 {
		return false
	}
	for _, n := range g.needs(a) {
		for _, o := range g.stacks {
			if StepName(o.Name) == n && (o.Namespace == b.Namespace || g.needsStack(o, b, depth-1)) {
				return true
			}
		}
	}
	return false
}

// awaitNetworks waits until the networks st declares external that a stack of the graph owns have been written
// by that stack's deploy (which runs at the same time).
func (g *Graph) awaitNetworks(ctx context.Context, st *stacks.Stack) error {
	for _, n := range st.Networks {
		if !n.External {
			continue
		}
		for _, o := range g.stacks {
			if o != st && slices.ContainsFunc(o.Networks, func(on stacks.Network) bool { return !on.External && on.Name == n.Name }) {
				if err := g.gates[o].written.wait(ctx, g.cfg.timeout(), fmt.Sprintf("network %s (created by %s)", n.Name, StepName(o.Name))); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// awaitOthersHealthy waits until the deploy of every other stack of the graph has converged, but those that need
// st (they wait for it).
func (g *Graph) awaitOthersHealthy(ctx context.Context, st *stacks.Stack) error {
	for _, o := range g.stacks {
		if o.Namespace == st.Namespace || g.needsStack(o, st, len(g.stacks)) {
			continue
		}
		if err := g.gates[o].done.wait(ctx, g.cfg.timeout(), fmt.Sprintf("stack %s healthy (%s), before the jobs of %s start", o.Namespace, StepName(o.Name), st.Namespace)); err != nil {
			return err
		}
	}
	return nil
}

// gate is closed once, with the outcome of what it stands for.
type gate struct {
	once sync.Once
	ch   chan struct{}
	err  error
}

func newGate() *gate { return &gate{ch: make(chan struct{})} }

func (g *gate) close(err error) {
	g.once.Do(func() {
		g.err = err
		close(g.ch)
	})
}

// wait waits until the gate is closed and returns its error, for at most timeout.
func (g *gate) wait(ctx context.Context, timeout time.Duration, what string) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-g.ch:
		if g.err != nil {
			return fmt.Errorf("waiting for %s: %w", what, g.err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
	case <-t.C:
		return fmt.Errorf("waited %s for %s: its step did not get there", timeout, what)
	}
}
