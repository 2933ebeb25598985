package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ziti-bootstrap/ziti-bootstrap/backup"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spire"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
)

// restoreOptions say how each server is stopped and started around the restore.
type restoreOptions struct {
	dryRun  bool
	yes     bool
	unauth  bool // restore a set that is not authenticated (no key configured)
	stopped bool // the operator stopped the servers (RESTORE_SERVICES_STOPPED)
	// shell commands that stop and start each server (RESTORE_<SOURCE>_STOP, RESTORE_<SOURCE>_START)
	zitiStop, zitiStart, spireStop, spireStart, keycloakStop, keycloakStart string
	readyMax                                                                time.Duration
	// swarm: each server is a Swarm service, scaled to 0 and back; services names them by source
	swarm       bool
	stackPrefix string
	services    map[string]*string
}

// commands returns the stop and start commands of source's server.
func (r *restoreOptions) commands(source string) (stop, start string) {
	switch source {
	case "ziti":
		return r.zitiStop, r.zitiStart
	case "spire":
		return r.spireStop, r.spireStart
	case "keycloak":
		return r.keycloakStop, r.keycloakStart
	}
	return "", ""
}

// swarmServices are, by source, the stack and the compose key of the Swarm service that runs its server.
var swarmServices = map[string][2]string{
	"ziti":     {stacks.OpenZiti, "ziti-controller"},
	"spire":    {stacks.Spire, "spire-server"},
	"keycloak": {stacks.Keycloak, "keycloak"},
}

// service returns the name of the Swarm service of source's server: --<source>-service; else <stack>_<key>, the
// stack being <--stack-prefix><stack> when that flag is given, else $ZB_STACK_<STACK> (set by the stack file of the
// scheduled backup service, which knows the names `up` gave the stacks), else the default name.
func (r *restoreOptions) service(source string) string {
	if s := *r.services[source]; s != "" {
		return s
	}
	sk := swarmServices[source]
	stack := stacks.DefaultNames(r.stackPrefix)[sk[0]]
	if v := os.Getenv("ZB_STACK_" + strings.ToUpper(sk[0])); v != "" && r.stackPrefix == "" {
		stack = v
	}
	return stack + "_" + sk[1]
}

func newRestoreCommand(g *globals) *cobra.Command {
	r := &restoreOptions{services: map[string]*string{}}
	cmd := &cobra.Command{
		Use:   "restore SET|latest",
		Short: "Restore a snapshot set: verify every object, then stop each server, put its database back and start it",
		Long: `Restore a snapshot set (an ID from 'backup list', or 'latest': the newest valid set: complete, and
authenticated by the encryption key when one is configured).

Every object of the set is downloaded and checked against the manifest (size, SHA-256, decryption, decoded
SHA-256) before anything is touched; a corrupt, truncated, incomplete or invalid set (one not written by
ziti-bootstrap with the configured key) is refused, naming the set and the reason, and nothing changes. Without
a key (BACKUP_ENCRYPTION_KEY) no set is authenticated: restoring one then needs --allow-unauthenticated. Then, for each server in turn (keycloak, spire, ziti): stop it, put its database back (the
replaced files are kept as <file>.before-restore-<set>; Keycloak's database is restored with pg_restore in one
transaction), start it and wait until it answers.

How the servers are stopped and started:
  --swarm            each is a Swarm service of the stacks 'up' deployed (<prefix>openziti_ziti-controller,
                     <prefix>spire_spire-server, <prefix>keycloak_keycloak; --stack-prefix, or --<source>-service
                     for another name; in the backup service, ZB_STACK_* name the stacks), scaled to 0 and back to
                     its replica count through the Docker Engine API (DOCKER_HOST). Run it where the volumes are
                     mounted: docker exec <the scheduled backup service's container> ziti-bootstrap restore latest
                     --yes --swarm
  --ziti-stop ...    host-run servers: the commands you give ('systemctl stop ziti-controller', ...)
  --services-stopped you stopped them first and start them after
Run it where the databases' volumes are mounted.

A restore takes the lock of apply, up, down and backup (see apply --help; with --swarm always the one held in the
Swarm), so none of them runs beside it: it waits up to ZB_LOCK_WAIT, then exits with code 5 naming the holder,
having changed nothing. --dry-run takes no lock.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return classify(runRestore(cmd, g, r, args[0]))
		},
	}
	bindVarFlags(cmd.Flags(), backupFlags)
	f := cmd.Flags()
	f.BoolVar(&r.dryRun, "dry-run", false, "download and verify the set and show what would be restored; change nothing")
	f.BoolVar(&r.yes, "yes", false, "confirm that the servers' current state is to be replaced")
	f.BoolVar(&r.unauth, "allow-unauthenticated", false, "restore a set although it is not authenticated (no encryption key configured): anyone who can write to the bucket could have written it")
	f.BoolVar(&r.stopped, "services-stopped", false, "the servers are stopped (and will be started) by you")
	f.StringVar(&r.zitiStop, "ziti-stop", "", "shell command that stops the Ziti controller and returns once it has exited")
	f.StringVar(&r.zitiStart, "ziti-start", "", "shell command that starts the Ziti controller")
	f.StringVar(&r.spireStop, "spire-stop", "", "shell command that stops the SPIRE server and returns once it has exited")
	f.StringVar(&r.spireStart, "spire-start", "", "shell command that starts the SPIRE server")
	f.StringVar(&r.keycloakStop, "keycloak-stop", "", "shell command that stops Keycloak (its database stays up)")
	f.StringVar(&r.keycloakStart, "keycloak-start", "", "shell command that starts Keycloak")
	f.BoolVar(&r.swarm, "swarm", false, "the servers are Swarm services: scale each to 0 and back through the Docker Engine (DOCKER_HOST)")
	f.StringVar(&r.stackPrefix, "stack-prefix", "", "with --swarm: prefix of the stack names, as given to up --prefix (default: the stack names in $ZB_STACK_SPIRE, $ZB_STACK_KEYCLOAK, $ZB_STACK_OPENZITI when set, else none)")
	for _, s := range config.BackupSources {
		sk := swarmServices[s]
		r.services[s] = f.String(s+"-service", "", fmt.Sprintf("with --swarm: the Swarm service of the %s server (default <stack-prefix>%s_%s)", s, sk[0], sk[1]))
	}
	f.DurationVar(&r.readyMax, "ready-timeout", 3*time.Minute, "how long to wait for each server to answer after its start")
	return cmd
}

func runRestore(cmd *cobra.Command, g *globals, r *restoreOptions, set string) error {
	ctx := cmd.Context()
	if !r.dryRun && !r.yes {
		return &exitError{exitcode.InvalidConfig, errors.New("restore replaces the servers' databases: pass --yes (or --dry-run to only verify and show the plan)")}
	}
	env, err := g.backupEnv(cmd)
	if err != nil {
		return err
	}
	var scaler *docker.Client
	if r.swarm {
		if scaler, err = docker.New(env.cfg.Docker.Host, env.counter); err != nil {
			return &config.Error{Problems: []config.Problem{{Var: "DOCKER_HOST", Msg: err.Error()}}}
		}
		defer scaler.Close()
	}
	targets, err := restoreTargets(ctx, env, r, scaler)
	if err != nil {
		return err
	}
	if r.dryRun {
		return prepareRestore(ctx, g, env, r, targets, set, nil)
	}
	lockCfg := *env.cfg
	if r.swarm { // the servers are in the Swarm: so is the lock, whatever ZB_DOCKER says
		lockCfg.Docker.Enabled = true
	}
	return withLock(ctx, g, &lockCfg, func(ctx context.Context) error {
		// First finish what an interrupted restore left (a server scaled to 0, a file swap half done).
		did, err := backup.Recover(ctx, targets, g.log)
		for _, d := range did {
			fmt.Fprintln(g.stdout, "interrupted restore: "+d)
		}
		if err != nil {
			return fmt.Errorf("finish an interrupted restore (nothing else was changed): %w", err)
		}
		return prepareRestore(ctx, g, env, r, targets, set, func(p *backup.Prepared) error {
			done, err := p.Apply(ctx)
			for _, s := range done {
				fmt.Fprintf(g.stdout, "restored %s\n", s)
			}
			return err
		})
	})
}

// prepareRestore downloads and verifies the set, prints the plan, and applies it with apply (nil: a dry run).
func prepareRestore(ctx context.Context, g *globals, env *backupEnv, r *restoreOptions, targets []backup.Target, set string, apply func(*backup.Prepared) error) error {
	p, err := env.restorer(g, targets, r.unauth).Prepare(ctx, set, env.b.Sources)
	if err != nil {
		return err
	}
	defer p.Close()
	fmt.Fprintf(g.stdout, "set %s verified (%d object(s), taken %s on %s)\n", p.Manifest.Set, len(p.Manifest.Objects),
		p.Manifest.Started.Format(time.RFC3339), p.Manifest.Host)
	if env.key == nil {
		fmt.Fprintln(g.stdout, "  NOT authenticated (no BACKUP_ENCRYPTION_KEY; restored because of --allow-unauthenticated)")
	}
	for _, l := range p.Plan() {
		fmt.Fprintln(g.stdout, "  "+l)
	}
	if apply == nil {
		fmt.Fprintln(g.stdout, "dry run: nothing changed")
		return nil
	}
	return apply(p)
}

// restoreTargets builds the targets of the sources to restore, in the order they are restored. With --swarm it
// checks first that every service exists and can be scaled.
func restoreTargets(ctx context.Context, env *backupEnv, r *restoreOptions, scaler *docker.Client) ([]backup.Target, error) {
	var targets []backup.Target
	var problems []config.Problem
	for _, s := range []string{"keycloak", "spire", "ziti"} {
		if !env.b.Has(s) {
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
			targets = append(targets, &backup.FileTarget{SourceName: s, Path: env.b.ZitiDBPath, Format: "bbolt", Service: svc})
		case "spire":
			targets = append(targets, &backup.FileTarget{SourceName: s, Path: env.b.SpireDatastorePath, Format: "sqlite3", Sidecars: backup.SQLiteSidecars, Service: svc})
		case "keycloak":
			pg, err := postgres(env.b)
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
func (r *restoreOptions) serverService(ctx context.Context, env *backupEnv, source string, scaler *docker.Client) (svc backup.Service, problem *config.Problem, err error) {
	stop, start := r.commands(source)
	cmds := "--" + source + "-stop/--" + source + "-start"
	switch {
	case r.swarm && (r.stopped || stop != "" || start != ""):
		return nil, &config.Problem{Var: "--swarm", Msg: "give one of --swarm, --services-stopped or stop/start commands"}, nil
	case r.swarm:
		return r.swarmService(ctx, env, source, scaler)
	case r.stopped && (stop != "" || start != ""):
		return nil, &config.Problem{Var: cmds, Msg: "give either --services-stopped or stop/start commands, not both"}, nil
	case r.stopped:
		return backup.Stopped{Name: source}, nil, nil
	case stop == "" || start == "":
		return nil, &config.Problem{Var: cmds, Msg: fmt.Sprintf("the %s server must be stopped during its restore: give both commands (e.g. --%s-stop 'systemctl stop …' --%s-start 'systemctl start …'), or --swarm when it is a Swarm service, or stop the servers yourself and pass --services-stopped (restore only the sources you stopped with --sources)", source, source, source)}, nil
	}
	return &backup.ExecService{Name: source, StopCommand: []string{"sh", "-c", stop}, StartCommand: []string{"sh", "-c", start},
		Ready: readiness(env, source), ReadyTimeout: r.readyMax}, nil, nil
}

// swarmService is source's server as a Swarm service, checked to exist and to be replicated: nothing is
// stopped before every server is known to be.
func (r *restoreOptions) swarmService(ctx context.Context, env *backupEnv, source string, scaler *docker.Client) (backup.Service, *config.Problem, error) {
	name := r.service(source)
	if _, err := scaler.Replicas(ctx, name); err != nil {
		flag := "--" + source + "-service"
		switch {
		case docker.IsNotFound(err):
			return nil, &config.Problem{Var: flag, Msg: fmt.Sprintf("the Swarm at %s has no service %s: give the stacks' prefix (--stack-prefix, as given to up --prefix) or the service's name (%s)", env.cfg.Docker.Host, name, flag)}, nil
		case errors.Is(err, docker.ErrNotReplicated):
			return nil, &config.Problem{Var: flag, Msg: err.Error()}, nil
		}
		return nil, nil, &exitError{exitcode.Unreachable, fmt.Errorf("Docker Engine at %s: %w", env.cfg.Docker.Host, err)}
	}
	return &backup.SwarmService{Scaler: scaler, Service: name, Ready: readiness(env, source), ReadyTimeout: r.readyMax}, nil, nil
}

// readiness probes a server after its start, through its API.
func readiness(env *backupEnv, source string) func(context.Context) error {
	switch source {
	case "ziti":
		return func(ctx context.Context) error {
			_, err := ziti.Probe(ctx, ziti.Options{URL: env.cfg.Ziti.URL, CAFile: env.cfg.Ziti.CAFile, TOFU: env.cfg.Ziti.CATOFU})
			return err
		}
	case "spire":
		return func(ctx context.Context) error {
			c, err := spire.Dial(ctx, env.cfg.Spire.Socket, nil)
			if err != nil {
				return err
			}
			defer c.Close()
			return c.Healthy(ctx)
		}
	case "keycloak":
		return func(ctx context.Context) error {
			u := env.cfg.Keycloak.URL.JoinPath("realms", "master")
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
