package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/ziti-bootstrap/ziti-bootstrap/app"
	"github.com/ziti-bootstrap/ziti-bootstrap/app/backups"
)

func newRestoreCommand(g *globals) *cobra.Command {
	r := &app.RestoreOptions{Services: map[string]*string{}}
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
			c := g.cli()
			view := func(ctx context.Context, env *app.Backup) (context.Context, func()) {
				return startBackupView(ctx, g, c, env, "restore")
			}
			return backups.Classify(backups.Restore(cmd.Context(), c, cmd.Flags(), r, args[0], view))
		},
	}
	backups.BindFlags(cmd.Flags(), backups.Flags)
	backups.BindRestoreFlags(cmd.Flags(), r)
	return cmd
}
