package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/backup"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/progress"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spire"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
)

// RestoreOptions say how each server is stopped and started around the restore (the restore command's flags).
type RestoreOptions struct {
	DryRun               bool
	Yes                  bool
	AllowUnauthenticated bool // restore a set that is not authenticated (no key configured)
	Stopped              bool // the operator stopped the servers (RESTORE_SERVICES_STOPPED)
	// shell commands that stop and start each server (RESTORE_<SOURCE>_STOP, RESTORE_<SOURCE>_START)
	ZitiStop, ZitiStart, SpireStop, SpireStart, KeycloakStop, KeycloakStart string
	ReadyTimeout                                                            time.Duration
	// swarm: each server is a Swarm service, scaled to 0 and back; services names them by source
	Swarm       bool
	StackPrefix string
	Services    map[string]*string
}

// commands returns the stop and start commands of source's server.
func (r *RestoreOptions) commands(source string) (stop, start string) {
	switch source {
	case "ziti":
		return r.ZitiStop, r.ZitiStart
	case "spire":
		return r.SpireStop, r.SpireStart
	case "keycloak":
		return r.KeycloakStop, r.KeycloakStart
	}
	return "", ""
}

// SwarmServices are, by source, the stack and the compose key of the Swarm service that runs its server.
var SwarmServices = map[string][2]string{
	"ziti":     {stacks.OpenZiti, "ziti-controller"},
	"spire":    {stacks.Spire, "spire-server"},
	"keycloak": {stacks.Keycloak, "keycloak"},
}

// service returns the name of the Swarm service of source's server: --<source>-service; else <stack>_<key>, the
// stack being <--stack-prefix><stack> when that flag is given, else $ZB_STACK_<STACK> (set by the stack file of the
// scheduled backup service, which knows the names `up` gave the stacks), else the default name.
func (r *RestoreOptions) service(source string) string {
	if s := *r.Services[source]; s != "" {
		return s
	}
	sk := SwarmServices[source]
	stack := stacks.DefaultNames(r.StackPrefix)[sk[0]]
	if v := os.Getenv("ZB_STACK_" + strings.ToUpper(sk[0])); v != "" && r.StackPrefix == "" {
		stack = v
	}
	return stack + "_" + sk[1]
}

// Restore restores the snapshot set (an ID, or "latest") as r says, under the tool's lock (none for a dry run),
// writing what it does to out.
func Restore(ctx context.Context, env *Backup, r *RestoreOptions, set string, lock Locker, out io.Writer) error {
	var (
		scaler *docker.Client
		err    error
	)
	if r.Swarm {
		if scaler, err = docker.New(env.Config.Docker.Host, env.Counter); err != nil {
			return &config.Error{Problems: []config.Problem{{Var: "DOCKER_HOST", Msg: err.Error()}}}
		}
		defer scaler.Close()
	}
	targets, err := restoreTargets(ctx, env, r, scaler)
	if err != nil {
		return err
	}
	if r.DryRun {
		return prepareRestore(ctx, env, r, targets, set, nil, out)
	}
	lockCfg := *env.Config
	if r.Swarm { // the servers are in the Swarm: so is the lock, whatever ZB_DOCKER says
		lockCfg.Docker.Enabled = true
	}
	return lock(ctx, &lockCfg, func(ctx context.Context) error {
		// First finish what an interrupted restore left (a server scaled to 0, a file swap half done).
		did, err := backup.Recover(ctx, targets, env.Log)
		for _, d := range did {
			fmt.Fprintln(out, "interrupted restore: "+d)
		}
		if err != nil {
			return fmt.Errorf("finish an interrupted restore (nothing else was changed): %w", err)
		}
		return prepareRestore(ctx, env, r, targets, set, func(p *backup.Prepared) error {
			done, err := p.Apply(ctx)
			for _, s := range done {
				fmt.Fprintf(out, "restored %s\n", s)
			}
			return err
		}, out)
	})
}

// prepareRestore downloads and verifies the set, prints the plan, and applies it with apply (nil: a dry run).
func prepareRestore(ctx context.Context, env *Backup, r *RestoreOptions, targets []backup.Target, set string, apply func(*backup.Prepared) error, out io.Writer) error {
	p, err := env.Restorer(targets, r.AllowUnauthenticated).Prepare(ctx, set, env.Settings.Sources)
	if err != nil {
		return err
	}
	defer p.Close()
	fmt.Fprintf(out, "set %s verified (%d object(s), taken %s on %s)\n", p.Manifest.Set, len(p.Manifest.Objects),
		p.Manifest.Started.Format(time.RFC3339), p.Manifest.Host)
	if env.Key == nil {
		fmt.Fprintln(out, "  NOT authenticated (no BACKUP_ENCRYPTION_KEY; restored because of --allow-unauthenticated)")
	}
	for _, l := range p.Plan() {
		fmt.Fprintln(out, "  "+l)
	}
	if apply == nil {
		progress.Report(ctx, progress.Event{Stage: progress.Done, Detail: "dry run: nothing changed"})
		fmt.Fprintln(out, "dry run: nothing changed")
		return nil
	}
	return apply(p)
}

// restoreTargets builds the targets of the sources to restore, in the order they are restored. With --swarm it
// checks first that every service exists and can be scaled.
func restoreTargets(ctx context.Context, env *Backup, r *RestoreOptions, scaler *docker.Client) ([]backup.Target, error) {
	var targets []backup.Target
	var problems []config.Problem
	for _, s := range []string{"keycloak", "spire", "ziti"} {
		if !env.Settings.Has(s) {
			continue
		}
		svc, problem, err := r.serverService(ctx, env, s, scaler)
		switch {
		case err != nil:
			return nil, err
		case problem != nil:
			problems = append(problems, *problem)
			continue
		}
		switch s {
		case "ziti":
			targets = append(targets, &backup.FileTarget{SourceName: s, Path: env.Settings.ZitiDBPath, Format: "bbolt", Service: svc})
		case "spire":
			targets = append(targets, &backup.FileTarget{SourceName: s, Path: env.Settings.SpireDatastorePath, Format: "sqlite3", Sidecars: backup.SQLiteSidecars, Service: svc})
		case "keycloak":
			pg, err := postgres(env.Settings)
			if err != nil {
				return nil, err
			}
			targets = append(targets, &backup.PostgresTarget{SourceName: s, DB: pg, Service: svc})
		}
	}
	if len(problems) > 0 {
		return nil, &config.Error{Problems: problems}
	}
	return targets, nil
}

// serverService is how source's server is stopped and started; problem says what is wrong with the options.
func (r *RestoreOptions) serverService(ctx context.Context, env *Backup, source string, scaler *docker.Client) (svc backup.Service, problem *config.Problem, err error) {
	stop, start := r.commands(source)
	cmds := "--" + source + "-stop/--" + source + "-start"
	switch {
	case r.Swarm && (r.Stopped || stop != "" || start != ""):
		return nil, &config.Problem{Var: "--swarm", Msg: "give one of --swarm, --services-stopped or stop/start commands"}, nil
	case r.Swarm:
		return r.swarmService(ctx, env, source, scaler)
	case r.Stopped && (stop != "" || start != ""):
		return nil, &config.Problem{Var: cmds, Msg: "give either --services-stopped or stop/start commands, not both"}, nil
	case r.Stopped:
		return backup.Stopped{Name: source}, nil, nil
	case stop == "" || start == "":
		return nil, &config.Problem{Var: cmds, Msg: fmt.Sprintf("the %s server must be stopped during its restore: give both commands (e.g. --%s-stop 'systemctl stop …' --%s-start 'systemctl start …'), or --swarm when it is a Swarm service, or stop the servers yourself and pass --services-stopped (restore only the sources you stopped with --sources)", source, source, source)}, nil
	}
	return &backup.ExecService{Name: source, StopCommand: []string{"sh", "-c", stop}, StartCommand: []string{"sh", "-c", start},
		Ready: readiness(env, source), ReadyTimeout: r.ReadyTimeout}, nil, nil
}

// swarmService is source's server as a Swarm service, checked to exist and to be replicated: nothing is
// stopped before every server is known to be.
func (r *RestoreOptions) swarmService(ctx context.Context, env *Backup, source string, scaler *docker.Client) (backup.Service, *config.Problem, error) {
	name := r.service(source)
	if _, err := scaler.Replicas(ctx, name); err != nil {
		flag := "--" + source + "-service"
		switch {
		case docker.IsNotFound(err):
			return nil, &config.Problem{Var: flag, Msg: fmt.Sprintf("the Swarm at %s has no service %s: give the stacks' prefix (--stack-prefix, as given to up --prefix) or the service's name (%s)", env.Config.Docker.Host, name, flag)}, nil
		case errors.Is(err, docker.ErrNotReplicated):
			return nil, &config.Problem{Var: flag, Msg: err.Error()}, nil
		}
		return nil, nil, &exitcode.Error{Code: exitcode.Unreachable, Err: fmt.Errorf("Docker Engine at %s: %w", env.Config.Docker.Host, err)}
	}
	return &backup.SwarmService{Scaler: scaler, Service: name, Ready: readiness(env, source), ReadyTimeout: r.ReadyTimeout}, nil, nil
}

// readiness probes a server after its start, through its API.
func readiness(env *Backup, source string) func(context.Context) error {
	switch source {
	case "ziti":
		return func(ctx context.Context) error {
			_, err := ziti.Probe(ctx, ziti.Options{URL: env.Config.Ziti.URL, CAFile: env.Config.Ziti.CAFile, TOFU: env.Config.Ziti.CATOFU})
			return err
		}
	case "spire":
		return func(ctx context.Context) error {
			c, err := spire.Dial(ctx, env.Config.Spire.Socket, nil)
			if err != nil {
				return err
			}
			defer c.Close()
			return c.Healthy(ctx)
		}
	case "keycloak":
		return func(ctx context.Context) error {
			u := env.Config.Keycloak.URL.JoinPath("realms", "master")
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("GET %s: %s", u.Redacted(), resp.Status)
			}
			return nil
		}
	}
	return nil
}
