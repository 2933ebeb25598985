package up

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/app/command"
	"github.com/ziti-bootstrap/ziti-bootstrap/app/deploy"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/render"
)

// Compose renders the compose project (--dev's configuration), starts it with the compose CLI, waits until
// every service is healthy and the bootstrap has converged (its run of this up), and prints the bootstrap's
// report. Run again, it changes nothing and the bootstrap, started again by compose, writes nothing.
func Compose(ctx context.Context, c *command.CLI, o *deploy.StackOptions, dev *deploy.DevOptions, comp *deploy.ComposeOptions) error {
	if o.DryRun {
		return exitcode.With(exitcode.InvalidConfig, errors.New("--dry-run: not with --compose; `render --compose --dev --out DIR` shows the files up --compose would run"))
	}
	files, sc, err := deploy.Render(ctx, c, o, dev, &deploy.RenderOptions{Compose: true, Project: comp.Project, Host: "127.0.0.1"})
	if err != nil {
		return err
	}
	engine, err := deploy.Docker(sc)
	if err != nil {
		return err
	}
	defer engine.Close()
	p := comp.ProjectIn(dev, engine)
	if err := render.Write(p.Dir, files); err != nil {
		return deploy.RenderError(err)
	}
	c.Log.Info("compose project rendered", "project", p.Name, "dir", p.Dir)
	since := time.Now()
	progress := func(what, where string, attempt int, elapsed time.Duration, err error) {
		c.Log.Info("waiting", "for", what, "at", where, "attempt", attempt, "elapsed", elapsed.Round(time.Second), "last", err)
	}
	// --timeout is up's wait for each stack; compose starts the three in one go
	if err := p.Up(ctx, 3*o.Timeout, progress); err != nil {
		return exitcode.With(exitcode.For(err), err)
	}
	if err := p.Converged(ctx, since, o.Timeout, progress); err != nil {
		return exitcode.With(exitcode.For(err), err)
	}
	rep, err := p.BootstrapReport(ctx)
	if err != nil {
		return err
	}
	if rep.MutatingCalls == "" {
		return exitcode.With(exitcode.StepFailed, fmt.Errorf("the bootstrap exited 0 without an apply report:\n%s", deploy.LastLines(rep.Text, 20)))
	}
	_, err = fmt.Fprintf(c.Stdout, "%scompose project %s: every service healthy, bootstrap converged in %s with %s mutating call(s) (files: %s)\n",
		rep.Text, p.Name, time.Since(since).Round(time.Second), rep.MutatingCalls, p.Dir)
	return err
}
