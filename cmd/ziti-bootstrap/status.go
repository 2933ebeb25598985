package main

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ziti-bootstrap/ziti-bootstrap/app"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spire"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/status"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/stack"
)

func newStatusCommand(g *globals) *cobra.Command {
	var withStacks bool
	o := &stackOptions{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Answer an operator: systems reachable? drift? last convergence? last and next backup? what runs on each node?",
		Long: `Answers an operator's questions in one report (-o json: the document of schema ziti-bootstrap.status/v1,
described in internal/status):

  systems      each system reachable, and what answered (version, trust domain, …)
  drift        a plan of every step (writes nothing): the changes apply would make; none when converged
  convergence  the converge service's last convergence, last pass and next one (with ZB_CONVERGE_URL)
  backups      the last snapshot set (age, size, verified by the listing or not), the last valid one, and the
               next scheduled run (with S3_ENDPOINT; BACKUP_SCHEDULE)
  swarm        per node: role, state, the SPIRE agent attested there, and the tasks of the stacks (--prefix)
               running on it (with ZB_DOCKER=true)

The exit code is that of the reachability checks (0: every system answered; 3: one did not): drift and failed
plans are reported, not failures of status. --stacks shows each stack's services instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !withStacks {
				return runStatus(cmd, g, o.prefix)
			}
			sc, err := g.stackConfig(o, nil)
			if err != nil {
				return err
			}
			return execSteps(cmd.Context(), g, steps.PlanOnly, stackSteps(sc, o, nil, func(cfg stack.Config) []steps.Step {
				return []steps.Step{stack.StatusStep(func() stack.StatusEngine { return cfg.Engine() }, app.DockerReachable, status.Namespaces(o.prefix)...)}
			}))
		},
	}
	cmd.Flags().BoolVar(&withStacks, "stacks", false, "show each stack's services instead: tasks running/desired, image, last task error")
	cmd.Flags().StringVar(&o.prefix, "prefix", "", "prefix of the stack names (as given to up)")
	return cmd
}

// runStatus gathers the status document and prints it.
func runStatus(cmd *cobra.Command, g *globals, prefix string) error {
	ctx := cmd.Context()
	cc, err := config.LoadConverge(config.Sources{Flags: g.setFlags(), EnvFile: g.envFile})
	if err != nil {
		return err
	}
	rep, err := runReport(ctx, g, steps.PlanOnly, planBuilder(g, nil))
	if err != nil {
		return err
	}
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	now := time.Now()
	doc := status.New(now, rep)
	if cc.URL != nil {
		doc.Convergence = status.GetConvergence(ctx, &http.Client{Timeout: 10 * time.Second}, cc.URL.String())
	}
	if cfg.S3.Endpoint != nil {
		doc.Backups = backupStatus(cmd, g, now)
	}
	if cfg.Docker.Enabled {
		doc.Swarm = swarmStatus(ctx, cfg, prefix)
	}
	if g.output == "json" {
		err = printJSON(g.stdout, doc)
	} else if err = status.Render(g.stdout, doc); err == nil && cfg.Docker.Enabled {
		// the end-of-up summary (URLs, credentials, first login and enrolment), when the stacks' settings load
		if sc, serr := g.stackConfig(&stackOptions{prefix: prefix}, nil); serr == nil {
			writeSummary(g.stdout, sc.Vars, sc.Docker.Host, "")
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
		return &exitError{code, errors.Join(unreachable...)}
	}
	return nil
}

// backupStatus lists the snapshot sets.
func backupStatus(cmd *cobra.Command, g *globals, now time.Time) *status.Backups {
	env, err := g.backupEnv(cmd)
	if err != nil {
		return &status.Backups{Error: err.Error()}
	}
	sets, err := env.Lister().List(cmd.Context(), now)
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
