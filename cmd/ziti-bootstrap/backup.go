package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ziti-bootstrap/ziti-bootstrap/app"
	"github.com/ziti-bootstrap/ziti-bootstrap/backup"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/lock"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
)

// backupFlags are the command-line forms of the backup variables (config.BackupVars, and the stack variables
// KEYCLOAK_DB_USER and KEYCLOAK_DB_PASSWORD): a flag given beats the variable, which beats the .env file and the
// default. A secret's flag names a file holding it (NAME_FILE).
var backupFlags = []varFlag{
	{"prefix", "BACKUP_PREFIX", ""},
	{"encryption-key-file", "BACKUP_ENCRYPTION_KEY_FILE", "file holding the encryption key, 32 random bytes as base64 (unset: no encryption)"},
	{"keep-last", "BACKUP_KEEP_LAST", ""},
	{"keep-daily", "BACKUP_KEEP_DAILY", ""},
	{"keep-weekly", "BACKUP_KEEP_WEEKLY", ""},
	{"incomplete-grace", "BACKUP_INCOMPLETE_GRACE", ""},
	{"sources", "BACKUP_SOURCES", ""},
	{"tmp-dir", "BACKUP_TMPDIR", ""},
	{"part-size-mib", "BACKUP_PART_SIZE_MIB", ""},
	{"ziti-db", "ZITI_DB_PATH", ""},
	{"spire-datastore", "SPIRE_DATASTORE_PATH", ""},
	{"keycloak-db-host", "KEYCLOAK_DB_HOST", ""},
	{"keycloak-db-port", "KEYCLOAK_DB_PORT", ""},
	{"keycloak-db-user", "KEYCLOAK_DB_USER", ""},
	{"keycloak-db-name", "KEYCLOAK_DB_NAME", ""},
	{"keycloak-db-password-file", "KEYCLOAK_DB_PASSWORD_FILE", "file holding Keycloak's PostgreSQL password"},
	{"pg-bin-dir", "PG_BIN_DIR", ""},
}

// jobFlags are the scheduled job's (backup only).
var jobFlags = []varFlag{
	{"schedule", "BACKUP_SCHEDULE", ""},
	{"listen", "BACKUP_LISTEN", ""},
}

// varFlag is a flag that sets a configuration variable; only the flags of secret files (NAME_FILE) have their
// own help, the others have their variable's.
type varFlag struct{ flag, variable, help string }

// bindVarFlags defines flags as strings whose default and help are their variable's (see internal/config).
func bindVarFlags(f *pflag.FlagSet, flags []varFlag) {
	for _, vf := range flags {
		base, isFile := strings.CutSuffix(vf.variable, "_FILE")
		meta, _ := config.Lookup(base)
		if isFile {
			f.String(vf.flag, "", fmt.Sprintf("%s (%s); default: %s, else the Docker secret %s", vf.help, vf.variable, base, meta.SecretName))
			continue
		}
		f.String(vf.flag, meta.Default, fmt.Sprintf("%s (%s)", meta.Help, vf.variable))
	}
}

// backupConfig loads the backup configuration: the flags of cmd given on the command line, then --set, the
// environment, the --env-file and the defaults. A problem with a value given as a flag names the flag.
func (g *globals) backupConfig(cmd *cobra.Command) (*config.Backup, *backup.Key, error) {
	vars := g.setFlags()
	named := map[string]string{} // variable → the flag that set it
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		for _, vf := range append(slices.Clone(backupFlags), jobFlags...) {
			if vf.flag == f.Name && f.Changed {
				vars[vf.variable] = f.Value.String()
				named[vf.variable] = "--" + f.Name
			}
		}
	})
	b, err := config.LoadBackup(config.Sources{Flags: vars, EnvFile: g.envFile})
	var key *backup.Key
	if err == nil && b.EncryptionKey.IsSet() {
		key, err = backup.ParseKey(b.EncryptionKey)
	}
	var ce *config.Error
	if errors.As(err, &ce) {
		for i, p := range ce.Problems {
			if f := named[p.Var]; f != "" {
				ce.Problems[i].Var = f + " (" + p.Var + ")"
			} else if f := named[p.Var+"_FILE"]; f != "" {
				ce.Problems[i].Var = f + " (" + p.Var + ")"
			}
		}
	}
	if err != nil {
		return nil, nil, err
	}
	return b, key, nil
}

// unusedByBackup are secrets the configuration requires for apply that backup and restore never use; the
// scheduled backup service has neither.
var unusedByBackup = map[string]string{"KEYCLOAK_ADMIN_PASSWORD": "unused by backup", "SPIRE_UPSTREAM_CA_KEY": "unused by backup"}

// backupBaseConfig loads the configuration as every command does, except that secrets of unusedByBackup that are
// set nowhere are not required (a placeholder, never used, stands in).
func (g *globals) backupBaseConfig() (*config.Config, error) {
	cfg, err := g.loadConfig()
	var ce *config.Error
	if !errors.As(err, &ce) || slices.ContainsFunc(ce.Problems, func(p config.Problem) bool { return unusedByBackup[p.Var] == "" }) {
		return cfg, err
	}
	// Only unused secrets are missing (so the --set values passed loadConfig's checks): load again without them.
	return config.Load(config.Sources{Flags: g.setFlags(), EnvFile: g.envFile}.WithDefaults(unusedByBackup))
}

// joinInvalid reports the problems of every invalid-configuration error at once; any other error comes first.
func joinInvalid(errs ...error) error {
	var all []config.Problem
	for _, err := range errs {
		var ce *config.Error
		switch {
		case err == nil:
		case errors.As(err, &ce):
			all = append(all, ce.Problems...)
		default:
			return err
		}
	}
	if len(all) == 0 {
		return nil
	}
	return &config.Error{Problems: all}
}

// backupEnv loads the backup configuration (the flags of cmd, --set, the environment, --env-file) and returns
// what every backup command needs (app.NewBackup).
func (g *globals) backupEnv(cmd *cobra.Command) (*app.Backup, error) {
	cfg, cerr := g.backupBaseConfig()
	b, key, berr := g.backupConfig(cmd)
	if err := joinInvalid(cerr, berr); err != nil {
		return nil, err
	}
	return app.NewBackup(cfg, b, key, g.log)
}

// lockFor is withLock for the application layer.
func (g *globals) lockFor() app.Locker {
	return func(ctx context.Context, cfg *config.Config, fn func(ctx context.Context) error) error {
		return withLock(ctx, g, cfg, fn)
	}
}

// warnNoKey says, once, what a backup without a key means.
func warnNoKey(g *globals, env *app.Backup) {
	if env.Key == nil {
		fmt.Fprintln(g.stderr, "warning: no BACKUP_ENCRYPTION_KEY: sets are stored unencrypted and unauthenticated; anyone who can write to the bucket can read them, and alter or forge sets that `restore` cannot tell from yours (it then needs --allow-unauthenticated). Set the key: `openssl rand -base64 32`.")
	}
}

func newBackupCommand(g *globals) *cobra.Command {
	var noPrune bool
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Take a snapshot set of the Ziti controller, SPIRE and Keycloak databases into S3, then apply the retention policy",
		Long: `Take one snapshot set: the Ziti controller's database (through its snapshot API), SPIRE's datastore (an online
SQLite copy) and Keycloak's database (pg_dump), compressed, optionally encrypted, streamed to the S3 bucket with a
manifest written last. Then sets the retention policy does not keep are deleted (--no-prune to skip).

Run it where the controller's and SPIRE's database volumes are mounted (see --ziti-db, --spire-datastore).
Every setting is also a variable (named in each flag's help; see .env.example): a flag beats the variable.

With a schedule (--schedule or BACKUP_SCHEDULE) it runs as a long-lived job with Prometheus metrics and a health
check; --schedule= forces one run.

A backup takes the lock of apply, up, down and restore (see apply --help), so it never copies a state that one of
them is half-way through changing: it waits up to ZB_LOCK_WAIT for it, then exits with code 5 naming the holder
(a scheduled run retries).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, err := g.backupEnv(cmd)
			if err != nil {
				return err
			}
			warnNoKey(g, env)
			if env.Settings.Schedule != "" {
				return classify(runSchedule(cmd.Context(), g, env, noPrune))
			}
			return classify(runBackup(cmd.Context(), g, env, noPrune))
		},
	}
	bindVarFlags(cmd.PersistentFlags(), backupFlags)
	bindVarFlags(cmd.Flags(), jobFlags)
	cmd.Flags().BoolVar(&noPrune, "no-prune", false, "do not apply the retention policy after the backup")
	cmd.AddCommand(newBackupListCommand(g), newBackupVerifyCommand(g), newBackupPruneCommand(g), newBackupHealthcheckCommand(g))
	return cmd
}

// runSchedule runs backups on the schedule until the context ends (SIGTERM), serving metrics and health.
func runSchedule(ctx context.Context, g *globals, env *app.Backup, noPrune bool) error {
	job, err := backup.NewJob(backup.JobConfig{Schedule: env.Settings.Schedule, Log: g.log, Run: func(ctx context.Context) (*backup.Manifest, error) {
		m, _, err := env.RunOnce(ctx, g.lockFor(), version, noPrune)
		return m, err
	}, Busy: func(err error) bool { return errors.Is(err, lock.ErrHeld) }})
	if err != nil {
		return &exitError{exitcode.InvalidConfig, err}
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	return job.Serve(ctx, env.Settings.Listen)
}

// newBackupHealthcheckCommand is the scheduled job's health check for images without curl (FROM scratch).
func newBackupHealthcheckCommand(g *globals) *cobra.Command {
	return newHealthcheckCommand(g, "scheduled backup job", "BACKUP_LISTEN", config.LoadBackupListen)
}

func runBackup(ctx context.Context, g *globals, env *app.Backup, noPrune bool) error {
	m, deleted, err := env.RunOnce(ctx, g.lockFor(), version, noPrune)
	if m == nil {
		return err
	}
	if g.output == "json" {
		if perr := printJSON(g.stdout, map[string]any{"manifest": m, "deleted": deleted}); perr != nil {
			return perr
		}
		return err
	}
	fmt.Fprintf(g.stdout, "set %s complete: %d object(s), %s stored in %s\n", m.Set, len(m.Objects), bytesString(m.Size()),
		m.Finished.Sub(m.Started).Round(time.Millisecond))
	for _, obj := range m.Objects {
		fmt.Fprintf(g.stdout, "  %-9s %-26s %10s (raw %s)  %s\n", obj.Source, obj.Key, bytesString(obj.Size), bytesString(obj.RawSize), obj.ServerVersion)
	}
	if m.Encryption != nil {
		fmt.Fprintf(g.stdout, "  encrypted with key %s\n", m.Encryption.KeyID)
	}
	for _, id := range deleted {
		fmt.Fprintf(g.stdout, "deleted set %s (retention)\n", id)
	}
	return err
}

func newBackupListCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the snapshot sets with their size, age and completeness",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, err := g.backupEnv(cmd)
			if err != nil {
				return err
			}
			now := time.Now()
			sets, err := env.Lister().List(cmd.Context(), now)
			if err != nil {
				return classify(err)
			}
			return printSets(g.stdout, g.output, sets, now)
		},
	}
}

// setView is a set as `backup list -o json` prints it.
type setView struct {
	ID            string           `json:"id"`
	State         backup.SetState  `json:"state"`
	Authenticated bool             `json:"authenticated"`
	Started       time.Time        `json:"started"`
	AgeSeconds    int64            `json:"ageSeconds"`
	Bytes         int64            `json:"bytes"`
	Objects       int              `json:"objects"`
	Problem       string           `json:"problem,omitempty"`
	Manifest      *backup.Manifest `json:"manifest,omitempty"`
}

func printSets(w io.Writer, format string, sets []backup.SetInfo, now time.Time) error {
	if format == "json" {
		views := []setView{}
		for _, s := range sets {
			views = append(views, setView{ID: s.ID, State: s.State, Authenticated: s.Authenticated, Started: s.Started, AgeSeconds: int64(now.Sub(s.Started).Seconds()),
				Bytes: s.Size, Objects: len(s.Objects), Problem: s.Problem, Manifest: s.Manifest})
		}
		return printJSON(w, views)
	}
	if len(sets) == 0 {
		_, err := fmt.Fprintln(w, "no snapshot sets")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SET\tSTATE\tSIZE\tAGE\tSOURCES\tNOTE")
	for i := len(sets) - 1; i >= 0; i-- { // newest first
		s := sets[i]
		srcs := "-"
		if s.Manifest != nil {
			var names []string
			for _, o := range s.Manifest.Objects {
				names = append(names, o.Source)
			}
			srcs = strings.Join(names, ",")
			if s.Manifest.Encryption != nil {
				srcs += " (encrypted)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.State, bytesString(s.Size), age(now.Sub(s.Started)), srcs, s.Problem)
	}
	return tw.Flush()
}

func newBackupVerifyCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "verify SET|latest",
		Short: "Download a set and check every object's size and SHA-256 against its manifest (changes nothing)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := g.backupEnv(cmd)
			if err != nil {
				return err
			}
			m, authenticated, err := env.Restorer(nil, false).Verify(cmd.Context(), args[0])
			if err != nil {
				return classify(err)
			}
			if g.output == "json" {
				return printJSON(g.stdout, map[string]any{"manifest": m, "authenticated": authenticated})
			}
			fmt.Fprintf(g.stdout, "set %s verified: %d object(s), %s\n", m.Set, len(m.Objects), bytesString(m.Size()))
			if authenticated {
				fmt.Fprintf(g.stdout, "  authenticated with key %s\n", m.Encryption.KeyID)
			} else {
				fmt.Fprintln(g.stdout, "  NOT authenticated (no BACKUP_ENCRYPTION_KEY): its objects match its manifest, but anyone who can write to the bucket could have written both")
			}
			return nil
		},
	}
}

func newBackupPruneCommand(g *globals) *cobra.Command {
	var dryRun, invalid bool
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Apply the retention policy: delete the sets it does not keep (never the newest complete set, nor one being written)",
		Long: `Apply the retention policy: delete the sets it does not keep. Never deleted: the newest complete set, a set
being written, a damaged set, a set of another key. Invalid sets (not written by ziti-bootstrap with the
configured key: forged, altered, downgraded, future-dated, junk; 'backup list' says why) never count for the
policy and are kept for inspection, unless --invalid deletes them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, err := g.backupEnv(cmd)
			if err != nil {
				return err
			}
			_, err = env.Prune(cmd.Context(), dryRun, invalid, g.stdout)
			return classify(err)
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show the decisions only")
	cmd.Flags().BoolVar(&invalid, "invalid", false, "delete invalid sets too (see backup list)")
	return cmd
}

// classify gives a backup or restore error its exit code: a key that does not fit the set is a configuration
// problem, a dependency that did not answer is unreachable, a refused set or failed run is a failure.
func classify(err error) error {
	var ke *backup.KeyError
	var un *backup.UnauthenticatedError
	var ue *wait.UnreachableError
	_, coded := exitcode.Carried(err)
	switch {
	case err == nil, coded, config.IsInvalid(err):
		return err
	case errors.As(err, &ke), errors.As(err, &un):
		return &exitError{exitcode.InvalidConfig, err}
	case errors.As(err, &ue):
		return &exitError{exitcode.Unreachable, err}
	case errors.Is(err, context.Canceled):
		return err
	}
	return &exitError{exitcode.StepFailed, err}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func bytesString(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}
