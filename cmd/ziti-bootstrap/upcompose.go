package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/composeproj"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/render"
)

// composeOptions are the flags of up --compose and down --compose: the system as a compose project on one Docker
// Engine without Swarm (rendered by render --compose).
type composeOptions struct {
	enabled bool
	project string
	dir     string
	bin     string
	host    string
}

func (c *composeOptions) bind(f *pflag.FlagSet) {
	f.BoolVar(&c.enabled, "compose", false, "a compose project on this Docker Engine, without Swarm (with --dev; see render --compose)")
	f.StringVar(&c.project, "project", render.DefaultProject, "with --compose: the compose project name")
	f.StringVar(&c.dir, "compose-dir", "", "with --compose: where the project is rendered (default <state-dir>/compose-<project>)")
	f.StringVar(&c.bin, "compose-bin", "docker-compose", "with --compose: the compose CLI")
}

// project is the rendered project for dev's state directory.
func (c *composeOptions) projectIn(dev *devOptions, engine *docker.Client) composeproj.Project {
	dir := c.dir
	if dir == "" {
		dir = filepath.Join(dev.dir(), "compose-"+c.project)
	}
	return composeproj.Project{Dir: dir, Name: c.project, Bin: c.bin, Engine: engine}
}

// upCompose renders the compose project (--dev's configuration), starts it with the compose CLI, waits until
// every service is healthy and the bootstrap has converged (its run of this up), and prints the bootstrap's
// report. Run again, it changes nothing and the bootstrap, started again by compose, writes nothing.
func upCompose(ctx context.Context, g *globals, o *stackOptions, dev *devOptions, c *composeOptions) error {
	if o.dryRun {
		return &exitError{exitcode.InvalidConfig, errors.New("--dry-run: not with --compose; `render --compose --dev --out DIR` shows the files up --compose would run")}
	}
	files, sc, err := renderFiles(ctx, g, o, dev, &renderOptions{compose: true, project: c.project, host: "127.0.0.1"})
	if err != nil {
		return err
	}
	engine, err := docker.New(sc.Docker.Host, nil)
	if err != nil {
		return &exitError{exitcode.InvalidConfig, &config.Error{Problems: []config.Problem{{Var: "DOCKER_HOST", Msg: err.Error()}}}}
	}
	defer engine.Close()
	p := c.projectIn(dev, engine)
	if err := render.Write(p.Dir, files); err != nil {
		return renderError(err)
	}
	g.log.Info("compose project rendered", "project", p.Name, "dir", p.Dir)
	since := time.Now()
	progress := func(what, where string, attempt int, elapsed time.Duration, err error) {
		g.log.Info("waiting", "for", what, "at", where, "attempt", attempt, "elapsed", elapsed.Round(time.Second), "last", err)
	}
	// --timeout is up's wait for each stack; compose starts the three in one go
	if err := p.Up(ctx, 3*o.timeout, progress); err != nil {
		return &exitError{exitcode.For(err), err}
	}
	if err := p.Converged(ctx, since, o.timeout, progress); err != nil {
		return &exitError{exitcode.For(err), err}
	}
	rep, err := p.BootstrapReport(ctx)
	if err != nil {
		return err
	}
	if rep.MutatingCalls == "" {
		return &exitError{exitcode.StepFailed, fmt.Errorf("the bootstrap exited 0 without an apply report:\n%s", lastLines(rep.Text, 20))}
	}
	_, err = fmt.Fprintf(g.stdout, "%scompose project %s: every service healthy, bootstrap converged in %s with %s mutating call(s) (files: %s)\n",
		rep.Text, p.Name, time.Since(since).Round(time.Second), rep.MutatingCalls, p.Dir)
	return err
}

// downCompose stops and removes the compose project (with volumes: its data too).
func downCompose(ctx context.Context, g *globals, dev *devOptions, c *composeOptions, volumes bool) error {
	p := c.projectIn(dev, nil)
	if _, err := os.Stat(filepath.Join(p.Dir, render.ComposeDir, render.ComposeFile)); errors.Is(err, fs.ErrNotExist) {
		return &exitError{exitcode.InvalidConfig, fmt.Errorf("no compose project rendered in %s: give the --state-dir/--compose-dir and --project of up --compose", p.Dir)}
	}
	args := []string{"down", "--remove-orphans"}
	if volumes {
		args = append(args, "--volumes")
	}
	out, err := p.Compose(ctx, args...)
	if err != nil {
		return &exitError{exitcode.StepFailed, fmt.Errorf("%w\n%s", err, lastLines(out, 20))}
	}
	_, err = fmt.Fprintf(g.stdout, "%scompose project %s removed\n", out, p.Name)
	return err
}

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
