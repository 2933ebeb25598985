// Package deploy is what the commands that deploy the stacks to Docker Swarm (up, down, render, status --stacks)
// share: their options, the stack configuration, the steps' Docker client and lock, the files and facts up adds to
// the stacks, the checks before any write, and the summary after up.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/ziti-bootstrap/ziti-bootstrap/app"
	"github.com/ziti-bootstrap/ziti-bootstrap/app/command"
	"github.com/ziti-bootstrap/ziti-bootstrap/backup"
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

// StackOptions are the flags up and down share.
type StackOptions struct {
	Prefix           string
	Only             []string
	Vars             []string
	ExternalKeycloak bool
	DryRun           bool
	Timeout          time.Duration
}

// selected returns the stacks to act on, in deployment order.
func (o *StackOptions) Selected() ([]string, error) {
	// the prefix names Docker objects and is written into the stacks' configuration files
	if strings.Trim(o.Prefix, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != "" {
		return nil, exitcode.With(exitcode.InvalidConfig, fmt.Errorf("--prefix %q: use letters, digits and - _ .", o.Prefix))
	}
	var out []string
	for _, s := range o.Only {
		if !slices.Contains(stacks.All, s) {
			return nil, exitcode.With(exitcode.InvalidConfig, fmt.Errorf("--stack %q: use %s", s, strings.Join(stacks.All, ", ")))
		}
	}
	for _, s := range stacks.All {
		if (len(o.Only) == 0 || slices.Contains(o.Only, s)) && !(o.ExternalKeycloak && s == stacks.Keycloak) {
			out = append(out, s)
		}
	}
	return out, nil
}

// StackVariables are the variables the stack files read that come from the configuration (ZB_STACK_* are set
// from the stack names).
func StackVariables() ([]string, error) {
	all, err := stacks.Variables()
	if err != nil {
		return nil, err
	}
	return append(slices.DeleteFunc(all, func(v string) bool { return strings.HasPrefix(v, "ZB_STACK_") }), JobFileVars()...), nil
}

// LoadStack loads the stack variables and the Docker Engine settings from the configuration: --set and --var,
// the environment, the --env-file, then defaults (those of --dev, then the documented ones); secrets also from
// NAME_FILE or the Docker secrets directory, never from the command line.
func LoadStack(c *command.CLI, o *StackOptions, defaults map[string]string) (*config.Stack, error) {
	names, err := StackVariables()
	if err != nil {
		return nil, err
	}
	return c.LoadStack(o.Vars, defaults, names, stacks.SecretVariables())
}

// DockerConfig is the part of the configuration the docker/reachable step reads.
func DockerConfig(sc *config.Stack) *config.Config {
	return &config.Config{Docker: sc.Docker, WaitTimeout: sc.WaitTimeout}
}

// UnderLock runs fn under the apply lock held in the Swarm (up and down always talk to a Swarm manager), so
// an operator's apply and up/down never write at once. A dry run takes no lock. The bootstrap job that up starts
// runs apply under the same lock (it reaches the Swarm through the Docker socket): up hands the lock over once
// it has made its last write (HandOverLock), and from then on only waits for the job; the job, started a moment
// before, waits for the lock until then.
func UnderLock(ctx context.Context, c *command.CLI, sc *config.Stack, mode steps.Mode, fn func(context.Context) error) error {
	if mode == steps.PlanOnly {
		return fn(ctx)
	}
	return c.WithLock(ctx, lockConfig(sc), fn)
}

// lockConfig is the configuration of the lock of runs on sc's Docker Engine: the lock is in its Swarm.
func lockConfig(sc *config.Stack) *config.Config {
	cfg := DockerConfig(sc)
	cfg.Docker.Enabled = true
	return cfg
}

// ReadOnlyPass runs fn as a read-only pass of a run in mode (app.ReadOnlyPass), on sc's Docker Engine; true when
// it stands. A dry run writes nothing anyway: it runs none.
func ReadOnlyPass(ctx context.Context, c *command.CLI, sc *config.Stack, mode steps.Mode, fn func(context.Context) (whyNot string)) bool {
	if mode == steps.PlanOnly {
		return false
	}
	return c.ReadOnlyPass(ctx, lockConfig(sc), fn)
}

// HandOverLock frees up's lock for the bootstrap job it has started, after up's last write
// (stack.Config.AfterWrites). The lease's fence is closed from then on: a write of up's would fail.
func HandOverLock(log *slog.Logger) func(context.Context) error {
	return func(ctx context.Context) error {
		if l := lock.FromContext(ctx); l != nil {
			log.Info("handing the lock over to the bootstrap job, which takes it itself", "holder", l.Holder().String())
		}
		return lock.HandOver(ctx)
	}
}

// Steps returns a command.Builder of docker/reachable followed by the steps more makes from the stack steps'
// configuration (its Engine is the client docker/reachable made). seen, when set, is the engine's Swarm state as
// the run has read it already (up's preflight): docker/reachable reports it instead of reading it again.
func Steps(sc *config.Stack, o *StackOptions, rerun []string, seen *docker.SwarmInfo, more func(cfg stack.Config) []steps.Step) command.Builder {
	return func(counter *calls.Counter, progress wait.Progress) ([]steps.Step, func(), error) {
		sys, reachable := app.DockerStep(DockerConfig(sc), counter, progress, seen)
		cfg := stack.Config{Engine: func() stack.Engine { return sys.Docker }, Timeout: o.Timeout, Progress: progress, Rerun: rerun, Seen: stack.NewSeen()}
		return append([]steps.Step{reachable}, more(cfg)...), sys.Close, nil
	}
}

// DevOptions are the flags of up's local development mode.
type DevOptions struct {
	Enabled  bool
	StateDir string
}

// defaults generates (once) or reads the dev state and returns the configuration defaults it provides.
func (d *DevOptions) Defaults(c *command.CLI) (map[string]string, error) {
	st, err := devenv.Ensure(d.Dir())
	if err != nil {
		return nil, exitcode.With(exitcode.InvalidConfig, err)
	}
	what := "reused"
	if st.Created {
		what = "generated"
	}
	c.Log.Info("dev: secrets and SPIRE PKI "+what, "stateDir", st.Dir, "envFile", st.Path(devenv.EnvFile))
	defaults := st.Defaults()
	if !devenv.HasIPVS() {
		// Swarm's virtual IPs and routing mesh need IPVS: DNS round robin, ports published on the node instead
		defaults["ZB_ENDPOINT_MODE"], defaults["ZB_PUBLISH_MODE"] = "dnsrr", "host"
		c.Log.Info("dev: this kernel has no IPVS: ZB_ENDPOINT_MODE=dnsrr ZB_PUBLISH_MODE=host unless set")
	}
	return defaults, nil
}

// dir is the state directory: --state-dir, or the default.
func (d *DevOptions) Dir() string {
	if d.StateDir == "" {
		return devenv.DefaultDir()
	}
	return d.StateDir
}

// SwarmFacts are the stack variables up reads from the Swarm before it loads the stacks: SPIRE_NODE_CA, when not
// given, is the Swarm's root CA (it issued every node's certificate, with which the node's SPIRE agent attests
// (x509pop), and the bootstrap job declares the node alias entry from it); SPIRE_DATASTORE_SUFFIX follows the
// running SPIRE server (stacks.PlanSpireDatastore).
type SwarmFacts struct{ NodeCA, Datastore bool }

// Read reads the facts from the Swarm and sets them in sc.Vars.
func (f SwarmFacts) Read(ctx context.Context, log *slog.Logger, sc *config.Stack, spireNamespace string) error {
	found, err := f.Fetch(ctx, sc, spireNamespace)
	if err != nil {
		return err
	}
	return found.Apply(log, sc)
}

// FoundFacts is what Fetch read from the Swarm, for Apply.
type FoundFacts struct {
	f      SwarmFacts
	spire  string // the SPIRE stack's namespace
	ca     string
	server []swarm.Service
}

// Fetch reads from the Swarm what the facts need; it only reads sc (its Docker settings), so that it can run
// while the stacks load.
func (f SwarmFacts) Fetch(ctx context.Context, sc *config.Stack, spireNamespace string) (FoundFacts, error) {
	c, err := Docker(sc)
	if err != nil {
		return FoundFacts{}, err
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
		if f.NodeCA {
			if ca, err = c.SwarmRootCA(ctx); err != nil {
				return err
			}
		}
		if f.Datastore {
			server, err = c.Services(ctx, spireNamespace)
		}
		return err
	})
	if err != nil {
		return FoundFacts{}, exitcode.With(exitcode.For(err), err)
	}
	return FoundFacts{f: f, spire: spireNamespace, ca: ca, server: server}, nil
}

// Apply sets the facts found in sc.Vars.
func (ff FoundFacts) Apply(log *slog.Logger, sc *config.Stack) error {
	if ff.f.NodeCA {
		sc.Vars["SPIRE_NODE_CA"] = ff.ca
	}
	if !ff.f.Datastore {
		return nil
	}
	var image, suffix string
	for _, s := range ff.server {
		if s.Spec.Name == ff.spire+"_spire-server" && s.Spec.TaskTemplate.ContainerSpec != nil {
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
		return exitcode.With(exitcode.InvalidConfig, &config.Error{Problems: []config.Problem{{Var: "SPIRE_SERVER_IMAGE", Msg: err.Error()}}})
	}
	if ds.Fresh {
		log.Warn("a fresh SPIRE datastore: "+ds.Why, "from", image, "to", sc.Vars["SPIRE_SERVER_IMAGE"])
	}
	if ds.Suffix != "" {
		sc.Vars["SPIRE_DATASTORE_SUFFIX"] = ds.Suffix
	}
	return nil
}

// StateEngine is the Docker client of the stack steps as the state-node step needs it; nil before docker/reachable.
func StateEngine(cfg stack.Config) stack.NodeEngine {
	if c, ok := cfg.Engine().(*docker.Client); ok && c != nil {
		return c
	}
	return nil
}

// ResumeRestores finishes, under up's lock, what an interrupted `restore --swarm` of these stacks (names) left
// (FinishInterruptedRestores). Another deployment's restore on the same Swarm (another --prefix) is not this up's
// to finish: it may be running, between its own lock's renewals.
func ResumeRestores(ctx context.Context, c *command.CLI, sc *config.Stack, names stacks.Names) error {
	d, err := Docker(sc)
	if err != nil {
		return err
	}
	defer d.Close()
	return FinishInterruptedRestores(ctx, c, OwnServices{LabelledServices: d, Names: names})
}

// OwnServices narrows ServicesLabelled to the services of the stacks of Names.
type OwnServices struct {
	backup.LabelledServices
	Names stacks.Names
}

func (o OwnServices) ServicesLabelled(ctx context.Context, key string) ([]string, error) {
	names, err := o.LabelledServices.ServicesLabelled(ctx, key)
	return slices.DeleteFunc(names, func(service string) bool {
		for _, ns := range o.Names {
			if strings.HasPrefix(service, ns+"_") {
				return false
			}
		}
		return true
	}), err
}

// Docker is a client of the Docker Engine at DOCKER_HOST (no call yet); a refused DOCKER_HOST is invalid
// configuration.
func Docker(sc *config.Stack) (*docker.Client, error) {
	d, err := docker.New(sc.Docker.Host, nil)
	if err != nil {
		return nil, exitcode.With(exitcode.InvalidConfig, &config.Error{Problems: []config.Problem{{Var: "DOCKER_HOST", Msg: err.Error()}}})
	}
	return d, nil
}
