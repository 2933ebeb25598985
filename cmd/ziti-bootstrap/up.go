package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/app"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/reach"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/stack"
)

// stackOptions are the flags up and down share.
type stackOptions struct {
	prefix           string
	only             []string
	vars             []string
	externalKeycloak bool
	dryRun           bool
	timeout          time.Duration
}

func (o *stackOptions) bind(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.prefix, "prefix", "", "prefix of the stack names (stacks are <prefix>spire, <prefix>keycloak, <prefix>openziti)")
	f.StringSliceVar(&o.only, "stack", nil, "only these stacks (spire, keycloak, openziti; repeatable)")
	f.StringArrayVar(&o.vars, "var", nil, "set a stack variable, NAME=VALUE (repeatable; see stacks/README.md)")
	f.BoolVar(&o.externalKeycloak, "external-keycloak", false, "Keycloak runs elsewhere (KEYCLOAK_URL): skip its stack")
	f.BoolVar(&o.dryRun, "dry-run", false, "show the plan (service spec differences included) and write nothing")
	f.DurationVar(&o.timeout, "timeout", 5*time.Minute, "how long to wait for each stack to converge")
}

// selected returns the stacks to act on, in deployment order.
func (o *stackOptions) selected() ([]string, error) {
	var out []string
	for _, s := range o.only {
		if !slices.Contains(stacks.All, s) {
			return nil, &exitError{exitcode.InvalidConfig, fmt.Errorf("--stack %q: use %s", s, strings.Join(stacks.All, ", "))}
		}
	}
	for _, s := range stacks.All {
		if (len(o.only) == 0 || slices.Contains(o.only, s)) && !(o.externalKeycloak && s == stacks.Keycloak) {
			out = append(out, s)
		}
	}
	return out, nil
}

// stackVars gathers the stack variables, lowest precedence first: the --env-file, the environment, then --var.
// NAME_FILE reads NAME from a file (for secrets).
//
// TODO(lead): once the stack variables are part of internal/config, take them from the loaded configuration.
func (g *globals) stackVars(o *stackOptions) (map[string]string, error) {
	vars := map[string]string{}
	var problems []config.Problem
	if g.envFile != "" {
		f, err := os.Open(g.envFile)
		if err != nil {
			return nil, &config.Error{Problems: []config.Problem{{Var: "--env-file", Msg: err.Error()}}}
		}
		m, err := config.ParseDotenv(bufio.NewReader(f), g.envFile)
		f.Close()
		if err != nil {
			return nil, &config.Error{Problems: []config.Problem{{Var: "--env-file", Msg: err.Error()}}}
		}
		for k, v := range m {
			vars[k] = v
		}
	}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	secret := stacks.SecretVariables()
	for _, kv := range append(slices.Clone(g.set), o.vars...) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			problems = append(problems, config.Problem{Var: "--var " + kv, Msg: "expected NAME=VALUE"})
			continue
		}
		if meta, known := config.Lookup(k); (known && meta.Secret) || slices.Contains(secret, k) {
			problems = append(problems, config.Problem{Var: "--var " + k, Msg: fmt.Sprintf("secrets are not accepted on the command line; set %s or %s_FILE in the environment or the --env-file", k, k)})
			continue
		}
		vars[k] = v
	}
	used, err := stacks.Variables()
	if err != nil {
		return nil, err
	}
	for k, path := range vars {
		name, isFile := strings.CutSuffix(k, "_FILE")
		if !isFile || path == "" || !slices.Contains(used, name) {
			continue
		}
		if _, set := vars[name]; set {
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			problems = append(problems, config.Problem{Var: k, Msg: err.Error()})
			continue
		}
		vars[name] = strings.TrimRight(string(b), "\r\n")
	}
	if len(problems) > 0 {
		return nil, &config.Error{Problems: problems}
	}
	return vars, nil
}

// dockerSteps returns the docker/reachable step and the Engine it makes, for the stack steps.
func dockerSteps(vars map[string]string, counter *calls.Counter, progress wait.Progress) (steps.Step, func() stack.Engine, func()) {
	host := vars["DOCKER_HOST"]
	if host == "" {
		host = "unix:///var/run/docker.sock"
	}
	var client *docker.Client
	probe := func(ctx context.Context) (string, error) {
		if client == nil {
			c, err := docker.New(host, counter)
			if err != nil {
				return "", wait.Permanent(&config.Error{Problems: []config.Problem{{Var: "DOCKER_HOST", Msg: err.Error()}}})
			}
			client = c
		}
		info, err := client.RequireManager(ctx)
		if errors.Is(err, docker.ErrNotManager) {
			return "", wait.Permanent(err)
		}
		if err != nil {
			return "", err
		}
		return info.String(), nil
	}
	step := reach.New(app.DockerReachable, "Docker Engine", host, 2*time.Minute, progress, probe)
	engine := func() stack.Engine {
		if client == nil {
			return nil
		}
		return client
	}
	closer := func() {
		if client != nil {
			client.Close()
		}
	}
	return step, engine, closer
}

// runStackSteps runs the steps build makes after docker/reachable, prints the report and returns the exit.
func runStackSteps(ctx context.Context, g *globals, o *stackOptions, vars map[string]string,
	build func(cfg stack.Config) []steps.Step) error {
	counter := calls.New()
	progress := func(what, where string, attempt int, elapsed time.Duration, err error) {
		g.log.Info("waiting", "for", what, "at", where, "attempt", attempt, "elapsed", elapsed.Round(100*time.Millisecond).String(), "lastError", err.Error())
	}
	reachable, engine, closer := dockerSteps(vars, counter, progress)
	defer closer()
	cfg := stack.Config{Engine: engine, Timeout: o.timeout, Progress: progress}
	runner := &steps.Runner{Steps: append([]steps.Step{reachable}, build(cfg)...), Counter: counter, Observer: func(e steps.Event) {
		if e.Start {
			g.log.Info("step start", "step", e.Step)
			return
		}
		r := e.Result
		g.log.Info("step done", "step", r.Name, "status", string(r.Status), "changes", len(r.Changes), "mutatingCalls", r.MutatingCalls,
			"duration", r.Duration.Round(time.Millisecond).String())
	}}
	mode := steps.Apply
	if o.dryRun {
		mode = steps.PlanOnly
	}
	rep, err := runner.Run(ctx, mode)
	if err != nil {
		return &exitError{exitcode.Internal, err}
	}
	if err := printReport(g.stdout, g.output, rep); err != nil {
		return err
	}
	if code := exitcode.For(rep.Errors()...); code != exitcode.OK {
		return &exitError{code, fmt.Errorf("%s did not converge: %s", rep.Mode, firstErrors(rep))}
	}
	return nil
}

// newUpCommand is `ziti-bootstrap up`: deploy the stacks SPIRE → Keycloak → OpenZiti to Docker Swarm, each once
// the previous one is healthy.
func newUpCommand(g *globals) *cobra.Command {
	o := &stackOptions{}
	var without []string
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Deploy the SPIRE, Keycloak and OpenZiti stacks to Docker Swarm, in order, each gated on the previous one's health",
		Long: `Deploys the stacks embedded in ziti-bootstrap (see stacks/) through the Docker Engine API, as docker stack
deploy would: networks, secrets, configs, then services, all labelled com.docker.stack.namespace so that
docker stack ls/ps/rm see them. A stack that matches its file is not touched. Every stack file is checked
before anything is written. After each stack, up waits until every task runs and is healthy.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			names, err := o.selected()
			if err != nil {
				return err
			}
			vars, err := g.stackVars(o)
			if err != nil {
				return err
			}
			// all stack files first: bad input fails before any write
			var loaded []*stacks.Stack
			var errs []error
			for _, n := range names {
				st, err := stacks.Load(cmd.Context(), n, stacks.Options{Names: stacks.DefaultNames(o.prefix), Vars: vars, Without: without})
				if err != nil {
					errs = append(errs, err)
					continue
				}
				loaded = append(loaded, st)
			}
			if err := errors.Join(errs...); err != nil {
				return &exitError{exitcode.InvalidConfig, err}
			}
			return runStackSteps(cmd.Context(), g, o, vars, func(cfg stack.Config) []steps.Step {
				return stack.Steps(cfg, app.DockerReachable, loaded...)
			})
		},
	}
	o.bind(cmd)
	cmd.Flags().StringSliceVar(&without, "without", nil, "leave these services out (e.g. bootstrap, to run ziti-bootstrap from this machine instead)")
	return cmd
}
