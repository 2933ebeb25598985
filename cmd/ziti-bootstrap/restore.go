package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/ziti-bootstrap/ziti-bootstrap/backup"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spire"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
)

// restoreOptions say how each server is stopped and started around the restore.
type restoreOptions struct {
	dryRun  bool
	yes     bool
	stopped bool // the operator stopped the servers (RESTORE_SERVICES_STOPPED)
	// shell commands that stop and start each server (RESTORE_<SOURCE>_STOP, RESTORE_<SOURCE>_START)
	zitiStop, zitiStart, spireStop, spireStart, keycloakStop, keycloakStart string
	readyMax                                                                time.Duration
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

func newRestoreCommand(g *globals) *cobra.Command {
	o := &backupOptions{}
	r := &restoreOptions{}
	cmd := &cobra.Command{
		Use:   "restore SET|latest",
		Short: "Restore a snapshot set: verify every object, then stop each server, put its database back and start it",
		Long: `Restore a snapshot set (an ID from 'backup list', or 'latest': the newest set with a manifest).

Every object of the set is downloaded and checked against the manifest (size, SHA-256, decryption, decoded
SHA-256) before anything is touched; a corrupt, truncated or incomplete set is refused, naming the object, and
nothing changes. Then, for each server in turn (keycloak, spire, ziti): stop it, put its database back (the
replaced files are kept as <file>.before-restore-<set>; Keycloak's database is restored with pg_restore in one
transaction), start it and wait until it answers.

Host-run servers are stopped and started with the commands you give (--ziti-stop 'systemctl stop ziti-controller',
...), or by you: stop them first and pass --services-stopped. Run it where the databases' volumes are mounted.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return classify(runRestore(cmd.Context(), g, o, r, args[0]))
		},
	}
	o.bind(cmd.Flags())
	f := cmd.Flags()
	f.BoolVar(&r.dryRun, "dry-run", false, "download and verify the set and show what would be restored; change nothing")
	f.BoolVar(&r.yes, "yes", false, "confirm that the servers' current state is to be replaced")
	f.BoolVar(&r.stopped, "services-stopped", false, "the servers are stopped (and will be started) by you")
	f.StringVar(&r.zitiStop, "ziti-stop", "", "shell command that stops the Ziti controller and returns once it has exited")
	f.StringVar(&r.zitiStart, "ziti-start", "", "shell command that starts the Ziti controller")
	f.StringVar(&r.spireStop, "spire-stop", "", "shell command that stops the SPIRE server and returns once it has exited")
	f.StringVar(&r.spireStart, "spire-start", "", "shell command that starts the SPIRE server")
	f.StringVar(&r.keycloakStop, "keycloak-stop", "", "shell command that stops Keycloak (its database stays up)")
	f.StringVar(&r.keycloakStart, "keycloak-start", "", "shell command that starts Keycloak")
	f.DurationVar(&r.readyMax, "ready-timeout", 3*time.Minute, "how long to wait for each server to answer after its start")
	return cmd
}

func runRestore(ctx context.Context, g *globals, o *backupOptions, r *restoreOptions, set string) error {
	if !r.dryRun && !r.yes {
		return &exitError{exitcode.InvalidConfig, errors.New("restore replaces the servers' databases: pass --yes (or --dry-run to only verify and show the plan)")}
	}
	env, err := g.backupEnv(ctx, o)
	if err != nil {
		return err
	}
	targets, err := restoreTargets(env, o, r)
	if err != nil {
		return err
	}
	res := &backup.Restore{Store: env.store, Prefix: o.prefix, Key: env.key, TempDir: o.tmpDir, Targets: targets, Log: g.log}
	p, err := res.Prepare(ctx, set, o.sources)
	if err != nil {
		return err
	}
	defer p.Close()
	fmt.Fprintf(g.stdout, "set %s verified (%d object(s), taken %s on %s)\n", p.Manifest.Set, len(p.Manifest.Objects),
		p.Manifest.Started.Format(time.RFC3339), p.Manifest.Host)
	for _, l := range p.Plan() {
		fmt.Fprintln(g.stdout, "  "+l)
	}
	if r.dryRun {
		fmt.Fprintln(g.stdout, "dry run: nothing changed")
		return nil
	}
	done, err := p.Apply(ctx)
	for _, s := range done {
		fmt.Fprintf(g.stdout, "restored %s\n", s)
	}
	return err
}

// restoreTargets builds the targets of the sources to restore, in the order they are restored.
func restoreTargets(env *backupEnv, o *backupOptions, r *restoreOptions) ([]backup.Target, error) {
	var targets []backup.Target
	var problems []config.Problem
	for _, s := range []string{"keycloak", "spire", "ziti"} {
		if !o.has(s) {
			continue
		}
		svc, err := r.service(env, s)
		if err != nil {
			problems = append(problems, config.Problem{Var: "--" + s + "-stop/--" + s + "-start", Msg: err.Error()})
			continue
		}
		switch s {
		case "ziti":
			targets = append(targets, &backup.FileTarget{SourceName: s, Path: o.zitiDB, Format: "bbolt", Service: svc})
		case "spire":
			targets = append(targets, &backup.FileTarget{SourceName: s, Path: o.spireDB, Format: "sqlite3", Sidecars: backup.SQLiteSidecars, Service: svc})
		case "keycloak":
			pg, err := o.postgres()
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

// service is how source's server is stopped and started.
func (r *restoreOptions) service(env *backupEnv, source string) (backup.Service, error) {
	stop, start := r.commands(source)
	switch {
	case r.stopped && (stop != "" || start != ""):
		return nil, errors.New("give either --services-stopped or stop/start commands, not both")
	case r.stopped:
		return backup.Stopped{Name: source}, nil
	case stop == "" || start == "":
		return nil, fmt.Errorf("the %s server must be stopped during its restore: give both commands (e.g. --%s-stop 'systemctl stop …' --%s-start 'systemctl start …'), or stop the servers yourself and pass --services-stopped (restore only the sources you stopped with --sources)", source, source, source)
	}
	return &backup.ExecService{Name: source, StopCommand: []string{"sh", "-c", stop}, StartCommand: []string{"sh", "-c", start},
		Ready: readiness(env, source), ReadyTimeout: r.readyMax}, nil
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
