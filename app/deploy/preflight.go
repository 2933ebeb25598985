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

// Preflight checks, before up writes anything (its lock included), everything preflight knows would fail:
// every problem at once, exit code 2. Only reads: the count of mutating calls is logged.
func Preflight(ctx context.Context, c *command.CLI, sc *config.Stack, loaded []*stacks.Stack) error {
	counter := calls.New()
	d, err := docker.New(sc.Docker.Host, counter)
	if err != nil {
		return exitcode.With(exitcode.InvalidConfig, &config.Error{Problems: []config.Problem{{Var: "DOCKER_HOST", Msg: err.Error()}}})
	}
	defer d.Close()
	in := preflight.Input{Stacks: loaded, Provided: []string{config.StateLabel}, Local: strings.HasPrefix(sc.Docker.Host, "unix://")}
	err = wait.For(ctx, wait.Target{What: "the Docker Engine, for the preflight checks", Where: sc.Docker.Host, Deadline: sc.WaitTimeout},
		func(ctx context.Context) error {
			err := preflight.Check(ctx, d, in)
			if preflight.IsProblems(err) {
				return wait.Permanent(err)
			}
			return err
		})
	c.Log.Info("preflight", "ok", err == nil, "mutatingCalls", counter.Writes())
	switch {
	case preflight.IsProblems(err):
		return exitcode.With(exitcode.InvalidConfig, err)
	case err != nil:
		return exitcode.With(exitcode.For(err), err)
	}
	AfterPreflight()
	return nil
}
