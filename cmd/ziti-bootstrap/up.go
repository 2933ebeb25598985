package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/spf13/cobra"

	"github.com/ziti-bootstrap/ziti-bootstrap/app"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/devenv"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/lock"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/stack"
)

// bootstrapService is the compose key of ziti-bootstrap's one-shot job in the OpenZiti stack.
const bootstrapService = "bootstrap"

// backupService is the compose key of the scheduled backup service in the OpenZiti stack: deployed only when
// BACKUP_SCHEDULE is set.
const backupService = "backup"

// backupDocker is the compose key of the backup service's Docker proxy: deployed with it.
const backupDocker = "backup-docker"

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
	f.StringArrayVar(&o.vars, "var", nil, "set a stack variable, NAME=VALUE (repeatable; the same as --set; see stacks/README.md)")
	f.BoolVar(&o.externalKeycloak, "external-keycloak", false, "Keycloak runs elsewhere (KEYCLOAK_URL): skip its stack")
	f.BoolVar(&o.dryRun, "dry-run", false, "show the plan (service spec differences included) and write nothing")
	f.DurationVar(&o.timeout, "timeout", 5*time.Minute, "how long to wait for each stack to converge")
}

// selected returns the stacks to act on, in deployment order.
func (o *stackOptions) selected() ([]string, error) {
	// the prefix names Docker objects and is written into the stacks' configuration files
	if strings.Trim(o.prefix, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != "" {
		return nil, &exitError{exitcode.InvalidConfig, fmt.Errorf("--prefix %q: use letters, digits and - _ .", o.prefix)}
	}
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

// stackVariables are the variables the stack files read that come from the configuration (ZB_STACK_* are set
// from the stack names).
func stackVariables() ([]string, error) {
	all, err := stacks.Variables()
	if err != nil {
		return nil, err
	}
	return append(slices.DeleteFunc(all, func(v string) bool { return strings.HasPrefix(v, "ZB_STACK_") }), jobFileVars()...), nil
}

// stackConfig loads the stack variables and the Docker Engine settings from the configuration: --set and --var,
// the environment, the --env-file, then defaults (those of --dev, then the documented ones); secrets also from
// NAME_FILE or the Docker secrets directory, never from the command line.
func (g *globals) stackConfig(o *stackOptions, defaults map[string]string) (*config.Stack, error) {
	flags := map[string]string{}
	var bad []config.Problem
	secret := stacks.SecretVariables()
	for _, kv := range append(slices.Clone(g.set), o.vars...) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			bad = append(bad, config.Problem{Var: "--set " + kv, Msg: "expected NAME=VALUE"})
			continue
		}
		if meta, known := config.Lookup(k); (known && meta.Secret) || slices.Contains(secret, k) {
			bad = append(bad, config.Problem{Var: "--set " + k, Msg: fmt.Sprintf("secrets are not accepted on the command line; set %s or %s_FILE in the environment or the --env-file", k, k)})
			continue
		}
		flags[k] = v
	}
	src := config.Sources{Flags: flags, EnvFile: g.envFile}
	if defaults != nil {
		src = src.WithDefaults(defaults)
	}
	names, err := stackVariables()
	if err != nil {
		return nil, err
	}
	sc, err := config.LoadStack(src, names)
	if len(bad) > 0 {
		var ce *config.Error
		if errors.As(err, &ce) {
			bad = append(bad, ce.Problems...)
		}
		return nil, &config.Error{Problems: bad}
	}
	return sc, err
}

// dockerConfig is the part of the configuration the docker/reachable step reads.
func dockerConfig(sc *config.Stack) *config.Config {
	return &config.Config{Docker: sc.Docker, WaitTimeout: sc.WaitTimeout}
}

// underStackLock runs fn under the apply lock held in the Swarm (up and down always talk to a Swarm manager), so
// an operator's apply and up/down never write at once. A dry run takes no lock. The bootstrap job that up starts
// runs apply under the same lock (it reaches the Swarm through the Docker socket): up hands the lock over once
// it has made its last write (handOverLock), and from then on only waits for the job; the job, started a moment
// before, waits for the lock until then.
func underStackLock(ctx context.Context, g *globals, sc *config.Stack, mode steps.Mode, fn func(context.Context) error) error {
	if mode == steps.PlanOnly {
		return fn(ctx)
	}
	cfg := dockerConfig(sc)
	cfg.Docker.Enabled = true
	return withLock(ctx, g, cfg, fn)
}

// handOverLock frees up's lock for the bootstrap job it has started, after up's last write
// (stack.Config.AfterWrites). The lease's fence is closed from then on: a write of up's would fail.
func handOverLock(log *slog.Logger) func(context.Context) error {
	return func(ctx context.Context) error {
		if l := lock.FromContext(ctx); l != nil {
			log.Info("handing the lock over to the bootstrap job, which takes it itself", "holder", l.Holder().String())
		}
		return lock.HandOver(ctx)
	}
}

// stackSteps returns a stepBuilder of docker/reachable followed by the steps more makes from the stack steps'
// configuration (its Engine is the client docker/reachable made).
func stackSteps(sc *config.Stack, o *stackOptions, rerun []string, more func(cfg stack.Config) []steps.Step) stepBuilder {
	return func(counter *calls.Counter, progress wait.Progress) ([]steps.Step, func(), error) {
		sys, reachable := app.DockerStep(dockerConfig(sc), counter, progress)
		cfg := stack.Config{Engine: func() stack.Engine { return sys.Docker }, Timeout: o.timeout, Progress: progress, Rerun: rerun}
		return append([]steps.Step{reachable}, more(cfg)...), sys.Close, nil
	}
}

// devOptions are the flags of up's local development mode.
type devOptions struct {
	enabled  bool
	stateDir string
}

// defaults generates (once) or reads the dev state and returns the configuration defaults it provides.
func (d *devOptions) defaults(g *globals) (map[string]string, error) {
	st, err := devenv.Ensure(d.dir())
	if err != nil {
		return nil, &exitError{exitcode.InvalidConfig, err}
	}
	what := "reused"
	if st.Created {
		what = "generated"
	}
	g.log.Info("dev: secrets and SPIRE PKI "+what, "stateDir", st.Dir, "envFile", st.Path(devenv.EnvFile))
	defaults := st.Defaults()
	if !devenv.HasIPVS() {
		// Swarm's virtual IPs and routing mesh need IPVS: DNS round robin, ports published on the node instead
		defaults["ZB_ENDPOINT_MODE"], defaults["ZB_PUBLISH_MODE"] = "dnsrr", "host"
		g.log.Info("dev: this kernel has no IPVS: ZB_ENDPOINT_MODE=dnsrr ZB_PUBLISH_MODE=host unless set")
	}
	return defaults, nil
}

// dir is the state directory: --state-dir, or the default.
func (d *devOptions) dir() string {
	if d.stateDir == "" {
		return devenv.DefaultDir()
	}
	return d.stateDir
}

// newUpCommand is `ziti-bootstrap up`: deploy the stacks SPIRE → Keycloak → OpenZiti to Docker Swarm, each once
// the previous one is healthy, and report what the bootstrap job did.
func newUpCommand(g *globals) *cobra.Command {
	o := &stackOptions{}
	dev := &devOptions{}
	comp := &composeOptions{}
	var without []string
	var rerun bool
	upg := &upgradeOptions{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Deploy the SPIRE, Keycloak and OpenZiti stacks to Docker Swarm, in order, each gated on the previous one's health",
		Long: `Deploys the stacks embedded in ziti-bootstrap (see stacks/) through the Docker Engine API, as docker stack
deploy would: networks, secrets, configs, then services, all labelled com.docker.stack.namespace so that
docker stack ls/ps/rm see them. A stack that matches its file is not touched. Every stack file is checked
before anything is written. After each stack, up waits until every task runs and is healthy; the OpenZiti
stack's one-shot bootstrap job (ziti-bootstrap's own image, running apply inside the Swarm) must have run to
completion, and its report is shown. The job runs again when its spec changes (image, configuration, secrets)
or with --rerun-bootstrap.

The stack variables come from the configuration (--set, the environment, --env-file; see .env.example).
With --dev, up brings the stacks up on a local single-node Swarm with built-in development settings: the
passwords, the SPIRE upstream root and the SPIRE agent certificate are generated once into --state-dir (mode
0700, files 0600) and reused on every run, and without IPVS in the kernel the services use DNS round robin and
ports published on the node. Anything set explicitly takes precedence.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if comp.enabled {
				return upCompose(cmd.Context(), g, o, dev, comp)
			}
			defer startLiveView(g, "up")() // from the start: on a terminal, the view replaces the info logs
			names, err := o.selected()
			if err != nil {
				return err
			}
			var defaults map[string]string
			if dev.enabled {
				if defaults, err = dev.defaults(g); err != nil {
					return err
				}
			}
			sc, err := g.stackConfig(o, defaults)
			if err != nil {
				return err
			}
			if slices.Contains(without, bootstrapService) {
				without = append(without, bootstrapDocker) // its Docker proxy serves nothing else
			}
			if sc.Vars["BACKUP_SCHEDULE"] == "" {
				without = append(without, backupService, backupDocker)
			} else if err := g.checkBackupService(sc, o.externalKeycloak); err != nil {
				return err
			}
			if u, local := localPublicURL(sc); local && !dev.enabled && !o.externalKeycloak {
				g.log.Warn("Keycloak's public URL is on this machine: its pages and the issuer of its tokens name it, so users on other machines cannot log in; set KEYCLOAK_PUBLIC_URL to the URL they reach", "KEYCLOAK_PUBLIC_URL", u)
			}
			// all stack files first: bad input fails before any call. SPIRE_NODE_CA, unless given, is read from the
			// Swarm once everything else is known to be right.
			load := func() ([]*stacks.Stack, error) {
				var loaded []*stacks.Stack
				var errs []error
				for _, n := range names {
					st, err := stacks.Load(cmd.Context(), n, stacks.Options{Names: stacks.DefaultNames(o.prefix), Vars: sc.Vars, Without: without, ExternalKeycloak: o.externalKeycloak})
					if err == nil {
						err = addJobFiles(st, sc.Vars)
					}
					if err != nil {
						errs = append(errs, err)
						continue
					}
					loaded = append(loaded, st)
				}
				if err := errors.Join(errs...); err != nil {
					return nil, &exitError{exitcode.InvalidConfig, err}
				}
				return loaded, nil
			}
			facts := swarmFacts{nodeCA: sc.Vars["SPIRE_NODE_CA"] == "", datastore: sc.Vars["SPIRE_DATASTORE_SUFFIX"] == "" && slices.Contains(names, stacks.Spire)}
			if facts.nodeCA {
				sc.Vars["SPIRE_NODE_CA"] = "(read from the Swarm)"
			}
			loaded, err := load()
			if err != nil {
				return err
			}
			if facts.nodeCA || facts.datastore {
				if err := facts.read(cmd.Context(), g.log, sc, stacks.DefaultNames(o.prefix)[stacks.Spire]); err != nil {
					return err
				}
				if loaded, err = load(); err != nil {
					return err
				}
			}
			if err := runPreflight(cmd.Context(), g, sc, loaded); err != nil {
				return err
			}
			controllerOnly, err := controllerOnlyStack(cmd.Context(), loaded, stacks.Options{Names: stacks.DefaultNames(o.prefix), Vars: sc.Vars, Without: without, ExternalKeycloak: o.externalKeycloak})
			if err != nil {
				return err
			}
			var again []string
			if rerun {
				again = []string{bootstrapService}
			}
			mode := steps.Apply
			if o.dryRun {
				mode = steps.PlanOnly
			}
			deployOnce := func(ctx context.Context) error {
				if mode == steps.Apply {
					// a restore killed half-way left services scaled to 0: bring them back before the deploy, which
					// would overwrite the labels that say how
					if err := resumeRestores(ctx, g, sc); err != nil {
						return err
					}
				}
				return execSteps(ctx, g, mode, stackSteps(sc, o, again, func(cfg stack.Config) []steps.Step {
					cfg.AfterWrites = handOverLock(g.log)
					if g.live != nil {
						cfg.Watch = g.live.Stack
					}
					state := stack.NewStateNode(func() stack.NodeEngine { return stateEngine(cfg) }, config.StateLabel, app.DockerReachable)
					out := append([]steps.Step{state}, pinSteps(cfg, dockerCAEngine(cfg), controllerOnly, stack.StateNodeName, loaded...)...)
					for _, st := range loaded {
						if hasService(st, bootstrapService) && !o.dryRun {
							out = append(out, stack.NewJob(cfg, st, bootstrapService, loaded...))
						}
					}
					return out
				}))
			}
			// a stateful server's new image is an upgrade: snapshot, deploy, checks, rollback (upgrade.go)
			err = g.upOrUpgrade(cmd.Context(), sc, o, upg, loaded, func(ctx context.Context, vars map[string]string, rerunJob bool) error {
				if maps.Copy(sc.Vars, vars); rerunJob {
					again = []string{bootstrapService}
				}
				if vars != nil { // the rollback's previous versions
					if loaded, err = load(); err != nil {
						return err
					}
				}
				return underStackLock(ctx, g, sc, mode, deployOnce)
			})
			if err == nil && !o.dryRun && g.output == "text" && slices.Contains(names, stacks.OpenZiti) {
				writeSummary(g.stdout, sc.Vars, sc.Docker.Host, summaryStateDir(dev))
			}
			return err
		},
	}
	o.bind(cmd)
	upg.bind(cmd.Flags())
	f := cmd.Flags()
	f.StringSliceVar(&without, "without", nil, "leave these services out (e.g. bootstrap, to run ziti-bootstrap from this machine instead; backup is left out unless BACKUP_SCHEDULE is set)")
	f.BoolVar(&rerun, "rerun-bootstrap", false, "run the bootstrap job again although nothing it depends on changed")
	f.BoolVar(&dev.enabled, "dev", false, "local development: generate secrets and PKI once into --state-dir, pick dnsrr/host without IPVS")
	f.StringVar(&dev.stateDir, "state-dir", "", "directory of --dev's generated settings (default "+devenv.DefaultDir()+")")
	comp.bind(f)
	return cmd
}

// hasService reports whether the stack has the service with compose key key.
func hasService(st *stacks.Stack, key string) bool {
	for _, s := range st.Services {
		if s.Spec.Name == st.Namespace+"_"+key {
			return true
		}
	}
	return false
}

// swarmFacts are the stack variables up reads from the Swarm before it loads the stacks: SPIRE_NODE_CA, when not
// given, is the Swarm's root CA (it issued every node's certificate, with which the node's SPIRE agent attests
// (x509pop), and the bootstrap job declares the node alias entry from it); SPIRE_DATASTORE_SUFFIX follows the
// running SPIRE server (stacks.PlanSpireDatastore).
type swarmFacts struct{ nodeCA, datastore bool }

func (f swarmFacts) read(ctx context.Context, log *slog.Logger, sc *config.Stack, spireNamespace string) error {
	c, err := docker.New(sc.Docker.Host, nil)
	if err != nil {
		return &exitError{exitcode.InvalidConfig, &config.Error{Problems: []config.Problem{{Var: "DOCKER_HOST", Msg: err.Error()}}}}
	}
	defer c.Close()
	var ca string
	var server []swarm.Service
	err = wait.For(ctx, wait.Target{What: "the Swarm's root CA and the running SPIRE server", Where: "Docker Engine at " + sc.Docker.Host,
		Deadline: sc.WaitTimeout}, func(ctx context.Context) error {
		if _, err := c.RequireManager(ctx); err != nil {
			if errors.Is(err, docker.ErrNotManager) {
				return wait.Permanent(err)
			}
			return err
		}
		if f.nodeCA {
			if ca, err = c.SwarmRootCA(ctx); err != nil {
				return err
			}
		}
		if f.datastore {
			server, err = c.Services(ctx, spireNamespace)
		}
		return err
	})
	if err != nil {
		return &exitError{exitcode.For(err), err}
	}
	if f.nodeCA {
		sc.Vars["SPIRE_NODE_CA"] = ca
	}
	if !f.datastore {
		return nil
	}
	var image, suffix string
	for _, s := range server {
		if s.Spec.Name == spireNamespace+"_spire-server" && s.Spec.TaskTemplate.ContainerSpec != nil {
			image = s.Spec.TaskTemplate.ContainerSpec.Image
			for _, kv := range s.Spec.TaskTemplate.ContainerSpec.Env {
				if v, ok := strings.CutPrefix(kv, "SPIRE_DATASTORE_SUFFIX="); ok {
					suffix = v
				}
			}
		}
	}
	ds, err := stacks.PlanSpireDatastore(image, suffix, sc.Vars["SPIRE_SERVER_IMAGE"])
	if err != nil {
		return &exitError{exitcode.InvalidConfig, &config.Error{Problems: []config.Problem{{Var: "SPIRE_SERVER_IMAGE", Msg: err.Error()}}}}
	}
	if ds.Fresh {
		log.Warn("a fresh SPIRE datastore: "+ds.Why, "from", image, "to", sc.Vars["SPIRE_SERVER_IMAGE"])
	}
	if ds.Suffix != "" {
		sc.Vars["SPIRE_DATASTORE_SUFFIX"] = ds.Suffix
	}
	return nil
}

// stateEngine is the Docker client of the stack steps as the state-node step needs it; nil before docker/reachable.
func stateEngine(cfg stack.Config) stack.NodeEngine {
	if c, ok := cfg.Engine().(*docker.Client); ok && c != nil {
		return c
	}
	return nil
}

// resumeRestores finishes, under up's lock, what an interrupted `restore --swarm` left (finishInterruptedRestores).
func resumeRestores(ctx context.Context, g *globals, sc *config.Stack) error {
	c, err := docker.New(sc.Docker.Host, nil)
	if err != nil {
		return &exitError{exitcode.InvalidConfig, &config.Error{Problems: []config.Problem{{Var: "DOCKER_HOST", Msg: err.Error()}}}}
	}
	defer c.Close()
	return finishInterruptedRestores(ctx, g, c)
}
