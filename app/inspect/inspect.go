// Package inspect is `ziti-bootstrap status`: it answers an operator in one document (internal/status): systems
// reachable, drift, the last convergence, backups, and what runs on each node of the Swarm.
package inspect

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/app"
	"github.com/ziti-bootstrap/ziti-bootstrap/app/backups"
	"github.com/ziti-bootstrap/ziti-bootstrap/app/command"
	"github.com/ziti-bootstrap/ziti-bootstrap/app/deploy"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spire"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/status"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/stack"
)

// Stacks is `status --stacks`: each stack's services (tasks running/desired, image, last task error).
func Stacks(ctx context.Context, c *command.CLI, o *deploy.StackOptions) error {
	sc, err := deploy.LoadStack(c, o, nil)
	if err != nil {
		return err
	}
	return c.Exec(ctx, steps.PlanOnly, deploy.Steps(sc, o, nil, nil, func(cfg stack.Config) []steps.Step {
		return []steps.Step{stack.StatusStep(func() stack.StatusEngine { return cfg.Engine() }, app.DockerReachable, status.Namespaces(o.Prefix)...)}
	}))
}

// Run gathers the status document and prints it.
func Run(ctx context.Context, c *command.CLI, prefix string) error {
	cc, err := config.LoadConverge(c.Sources())
	if err != nil {
		return err
	}
	rep, err := c.RunReport(ctx, steps.PlanOnly, c.PlanBuilder(nil))
	if err != nil {
		return err
	}
	cfg, err := c.LoadConfig()
	if err != nil {
		return err
	}
	now := time.Now()
	doc := status.New(now, rep)
	if cc.URL != nil {
		doc.Convergence = status.GetConvergence(ctx, &http.Client{Timeout: 10 * time.Second}, cc.URL.String())
	}
	if cfg.S3.Endpoint != nil {
		doc.Backups = backupStatus(ctx, c, now)
	}
	if cfg.Docker.Enabled {
		doc.Swarm = swarmStatus(ctx, cfg, prefix)
	}
	if c.Output == "json" {
		err = command.PrintJSON(c.Stdout, doc)
	} else if err = status.Render(c.Stdout, doc); err == nil && cfg.Docker.Enabled {
		// the end-of-up summary (URLs, credentials, first login and enrolment), when the stacks' settings load
		if sc, serr := deploy.LoadStack(c, &deploy.StackOptions{Prefix: prefix}, nil); serr == nil {
			deploy.WriteSummary(c.Stdout, sc.Vars, sc.Docker.Host, "")
		}
	}
	if err != nil {
		return err
	}
	var unreachable []error
	for _, s := range rep.Steps {
		if strings.HasSuffix(s.Name, "/reachable") && s.Err() != nil {
			unreachable = append(unreachable, s.Err())
		}
	}
	if code := exitcode.For(unreachable...); code != exitcode.OK {
		return exitcode.With(code, errors.Join(unreachable...))
	}
	return nil
}

// backupStatus lists the snapshot sets.
func backupStatus(ctx context.Context, c *command.CLI, now time.Time) *status.Backups {
	env, err := backups.Env(c, nil)
	if err != nil {
		return &status.Backups{Error: err.Error()}
	}
	sets, err := env.Lister().List(ctx, now)
	return status.NewBackups(now, env.Settings.Prefix, env.Settings.Schedule, sets, err)
}

// swarmStatus reads the Swarm's nodes and the stacks' tasks, and SPIRE's agents.
func swarmStatus(ctx context.Context, cfg *config.Config, prefix string) *status.Swarm {
	c, err := docker.New(cfg.Docker.Host, nil)
	if err != nil {
		return &status.Swarm{Error: err.Error()}
	}
	defer c.Close()
	var agents []spire.Agent
	sp, err := spire.Dial(ctx, cfg.Spire.Socket, nil)
	if err == nil {
		defer sp.Close()
		agents, err = sp.ListAgents(ctx)
	}
	return status.GetSwarm(ctx, c, status.Namespaces(prefix), agents, err)
}
