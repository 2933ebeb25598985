package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/ziti-bootstrap/ziti-bootstrap/app"
	"github.com/ziti-bootstrap/ziti-bootstrap/app/backups"
	"github.com/ziti-bootstrap/ziti-bootstrap/app/command"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
)

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
			return withBackup(g, func(ctx context.Context, c *command.CLI, env *app.Backup, _ []string) error {
				backups.WarnNoKey(c, env)
				if env.Settings.Schedule != "" {
					return backups.Classify(backups.Schedule(ctx, c, env, version, noPrune))
				}
				ctx, done := startBackupView(ctx, g, c, env, "backup")
				defer done()
				return backups.Classify(backups.Once(ctx, c, env, version, noPrune))
			})(cmd, nil)
		},
	}
	backups.BindFlags(cmd.PersistentFlags(), backups.Flags)
	backups.BindFlags(cmd.Flags(), backups.JobFlags)
	cmd.Flags().BoolVar(&noPrune, "no-prune", false, "do not apply the retention policy after the backup")
	cmd.AddCommand(newBackupListCommand(g), newBackupVerifyCommand(g), newBackupPruneCommand(g), newBackupHealthcheckCommand(g))
	return cmd
}

// newBackupHealthcheckCommand is the scheduled job's health check for images without curl (FROM scratch).
func newBackupHealthcheckCommand(g *globals) *cobra.Command {
	return newHealthcheckCommand(g, "scheduled backup job", "BACKUP_LISTEN", config.LoadBackupListen)
}

func newBackupListCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the snapshot sets with their size, age and completeness",
		Args:  cobra.NoArgs,
		RunE: withBackup(g, func(ctx context.Context, c *command.CLI, env *app.Backup, _ []string) error {
			return backups.List(ctx, c, env)
		}),
	}
}

func newBackupVerifyCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "verify SET|latest",
		Short: "Download a set and check every object's size and SHA-256 against its manifest (changes nothing)",
		Args:  cobra.ExactArgs(1),
		RunE: withBackup(g, func(ctx context.Context, c *command.CLI, env *app.Backup, args []string) error {
			return backups.Verify(ctx, c, env, args[0])
		}),
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
		RunE: withBackup(g, func(ctx context.Context, c *command.CLI, env *app.Backup, _ []string) error {
			_, err := env.Prune(ctx, dryRun, invalid, c.Stdout)
			return backups.Classify(err)
		}),
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show the decisions only")
	cmd.Flags().BoolVar(&invalid, "invalid", false, "delete invalid sets too (see backup list)")
	return cmd
}

// withBackup is a RunE that loads the backup configuration (the command's flags, --set, the environment,
// --env-file) and runs fn with it.
func withBackup(g *globals, fn func(ctx context.Context, c *command.CLI, env *app.Backup, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c := g.cli()
		env, err := backups.Env(c, cmd.Flags())
		if err != nil {
			return err
		}
		return fn(cmd.Context(), c, env, args)
	}
}
