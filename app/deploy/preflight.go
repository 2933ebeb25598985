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
	ctx     context.Context // the reads'; Stop cancels it
	cancel  context.CancelFunc
	done    chan struct{}
	obs     preflight.Observed
	err     error
	rootCA  *read[string]            // the Swarm's root CA, read with the rest when StartPreflight is told to
	images  map[string]*read[string] // by reference: the reads of image IDs ReadImages started
}

// read is one read started ahead of its use: done is closed once val and err are set.
type read[T any] struct {
	done chan struct{}
	val  T
	err  error
}

// start runs f in the background; the result's wait returns what it returned.
func start[T any](f func() (T, error)) *read[T] {
	r := &read[T]{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.val, r.err = f()
	}()
	return r
}

// wait waits for the read, or for ctx.
func (r *read[T]) wait(ctx context.Context) (T, error) {
	select {
	case <-r.done:
		return r.val, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// StartPreflight starts preflight's reads of the engine that do not need the stacks (its Swarm state, nodes and
// services, and with rootCA the Swarm's root CA, which Facts needs for SwarmFacts.NodeCA), waiting for the engine
// up to sc.WaitTimeout; Check waits for them. Stop ends them early.
func StartPreflight(ctx context.Context, sc *config.Stack, rootCA bool) (*Preflight, error) {
	counter := calls.New()
	d, err := docker.New(sc.Docker.Host, counter)
	if err != nil {
		return nil, exitcode.With(exitcode.InvalidConfig, &config.Error{Problems: []config.Problem{{Var: "DOCKER_HOST", Msg: err.Error()}}})
	}
	ctx, cancel := context.WithCancel(ctx)
	p := &Preflight{counter: counter, d: d, ctx: ctx, cancel: cancel, done: make(chan struct{}), images: map[string]*read[string]{},
		target: wait.Target{What: "the Docker Engine, for the preflight checks", Where: sc.Docker.Host, Deadline: sc.WaitTimeout}}
	if rootCA {
		p.rootCA = start(func() (string, error) { return d.SwarmRootCA(ctx) }) // one attempt: Facts reads again after a failure
	}
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
	if p.rootCA != nil {
		if ca, err := p.rootCA.wait(ctx); err == nil {
			found.ca = ca
			return found, nil
		}
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

// ReadImages starts reading whether the images of loaded are on the engine, for Check: the stacks' images do not
// depend on what up reads from the Swarm, so they are read while up loads the stacks again with it. Call it before
// Check, from one goroutine.
func (p *Preflight) ReadImages(loaded []*stacks.Stack) {
	for _, ref := range preflight.ImageRefs(loaded) {
		if p.images[ref] == nil {
			p.images[ref] = start(func() (string, error) { return p.d.ImageID(p.ctx, ref) })
		}
	}
}

// Stop ends the reads (when up fails before its checks) and closes the client.
func (p *Preflight) Stop() {
	p.cancel()
	<-p.done
	for _, r := range p.images {
		<-r.done
	}
	if p.rootCA != nil {
		<-p.rootCA.done
	}
	p.d.Close()
}

// readAhead is the preflight's engine with the reads of images ReadImages started.
type readAhead struct {
	*docker.Client
	images map[string]*read[string]
}

// ImageID waits for the read of ref started ahead, if any, and answers as that read did (an error of that read
// is read again).
func (e readAhead) ImageID(ctx context.Context, ref string) (string, error) {
	if r := e.images[ref]; r != nil {
		if id, err := r.wait(ctx); err == nil {
			return id, nil
		}
	}
	return e.Client.ImageID(ctx, ref)
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
			err := preflight.CheckObserved(ctx, readAhead{Client: p.d, images: p.images}, p.obs, in)
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
