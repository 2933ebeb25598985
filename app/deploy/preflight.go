package deploy

import (
	"context"
	"strings"

	"github.com/ziti-bootstrap/ziti-bootstrap/app/command"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/preflight"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
)

// AfterPreflight runs once preflight has passed, before up's first write (tests take a port there).
var AfterPreflight = func() {}

// Preflight is up's preflight check: StartPreflight reads the engine while the stacks load, Check checks them.
type Preflight struct {
	counter *calls.Counter
	d       *docker.Client
	target  wait.Target
	cancel  context.CancelFunc
	done    chan struct{}
	obs     preflight.Observed
	err     error
}

// StartPreflight starts preflight's reads of the engine that do not need the stacks (its Swarm state, nodes and
// services), waiting for the engine up to sc.WaitTimeout; Check waits for them. Stop ends them early.
func StartPreflight(ctx context.Context, sc *config.Stack) (*Preflight, error) {
	counter := calls.New()
	d, err := docker.New(sc.Docker.Host, counter)
	if err != nil {
		return nil, exitcode.With(exitcode.InvalidConfig, &config.Error{Problems: []config.Problem{{Var: "DOCKER_HOST", Msg: err.Error()}}})
	}
	ctx, cancel := context.WithCancel(ctx)
	p := &Preflight{counter: counter, d: d, cancel: cancel, done: make(chan struct{}),
		target: wait.Target{What: "the Docker Engine, for the preflight checks", Where: sc.Docker.Host, Deadline: sc.WaitTimeout}}
	go func() {
		defer close(p.done)
		p.err = wait.For(ctx, p.target, func(ctx context.Context) (err error) {
			p.obs, err = preflight.Observe(ctx, d)
			return err
		})
	}()
	return p, nil
}

// Facts reads what f needs from the Swarm for up (see SwarmFacts.Fetch) from what the preflight reads, which it
// waits for: the engine's Swarm state and the SPIRE stack's services from the preflight's, and the Swarm's root CA
// by the preflight's client. Call it before Check (which closes that client).
func (p *Preflight) Facts(ctx context.Context, f SwarmFacts, spireNamespace string) (FoundFacts, error) {
	select {
	case <-p.done:
	case <-ctx.Done():
		return FoundFacts{}, ctx.Err()
	}
	if p.err != nil {
		return FoundFacts{}, exitcode.With(exitcode.For(p.err), p.err)
	}
	if err := p.obs.Swarm().RequireManager(p.target.Where); err != nil {
		return FoundFacts{}, exitcode.With(exitcode.For(err), err)
	}
	found := FoundFacts{f: f, spire: spireNamespace}
	if f.Datastore {
		found.server, _ = p.obs.Services(ctx, spireNamespace)
	}
	if !f.NodeCA {
		return found, nil
	}
	err := wait.For(ctx, wait.Target{What: "the Swarm's root CA", Where: p.target.Where, Deadline: p.target.Deadline}, func(ctx context.Context) (err error) {
		found.ca, err = p.d.SwarmRootCA(ctx)
		return err
	})
	if err != nil {
		return FoundFacts{}, exitcode.With(exitcode.For(err), err)
	}
	return found, nil
}

// Observed is what the preflight read of the engine (after Check): its Swarm state and services.
func (p *Preflight) Observed() preflight.Observed { return p.obs }

// Stop ends the reads (when up fails before its checks) and closes the client.
func (p *Preflight) Stop() {
	p.cancel()
	<-p.done
	p.d.Close()
}

// Check checks, before up writes anything (its lock included), everything preflight knows would fail in the
// loaded stacks: every problem at once, exit code 2. Only reads: the count of mutating calls is logged.
func (p *Preflight) Check(ctx context.Context, c *command.CLI, sc *config.Stack, loaded []*stacks.Stack) error {
	defer p.Stop()
	<-p.done
	err := p.err
	if err == nil {
		in := preflight.Input{Stacks: loaded, Provided: []string{config.StateLabel}, Local: strings.HasPrefix(sc.Docker.Host, "unix://")}
		err = wait.For(ctx, p.target, func(ctx context.Context) error {
			err := preflight.CheckObserved(ctx, p.d, p.obs, in)
			if preflight.IsProblems(err) {
				return wait.Permanent(err)
			}
			return err
		})
	}
	c.Log.Info("preflight", "ok", err == nil, "mutatingCalls", p.counter.Writes())
	switch {
	case preflight.IsProblems(err):
		return exitcode.With(exitcode.InvalidConfig, err)
	case err != nil:
		return exitcode.With(exitcode.For(err), err)
	}
	AfterPreflight()
	return nil
}
