// Package backups is what the commands backup (list, verify, prune) and restore do around app.Backup and
// app.Restore: the backup configuration with its flags, the scheduled job, and the sets and manifests printed.
package backups

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/ziti-bootstrap/ziti-bootstrap/app"
	"github.com/ziti-bootstrap/ziti-bootstrap/app/command"
	"github.com/ziti-bootstrap/ziti-bootstrap/backup"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
)

// Flags are the command-line forms of the backup variables (config.BackupVars, and the stack variables
// KEYCLOAK_DB_USER and KEYCLOAK_DB_PASSWORD): a flag given beats the variable, which beats the .env file and the
// default. A secret's flag names a file holding it (NAME_FILE).
var Flags = []VarFlag{
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

// JobFlags are the scheduled job's (backup only).
var JobFlags = []VarFlag{
	{"schedule", "BACKUP_SCHEDULE", ""},
	{"listen", "BACKUP_LISTEN", ""},
}

// VarFlag is a flag that sets a configuration variable; only the flags of secret files (NAME_FILE) have their
// own help, the others have their variable's.
type VarFlag struct{ Flag, Variable, Help string }

// BindFlags defines flags as strings whose default and help are their variable's (see internal/config).
func BindFlags(f *pflag.FlagSet, flags []VarFlag) {
	for _, vf := range flags {
		base, isFile := strings.CutSuffix(vf.Variable, "_FILE")
		meta, _ := config.Lookup(base)
		if isFile {
			f.String(vf.Flag, "", fmt.Sprintf("%s (%s); default: %s, else the Docker secret %s", vf.Help, vf.Variable, base, meta.SecretName))
			continue
		}
		f.String(vf.Flag, meta.Default, fmt.Sprintf("%s (%s)", meta.Help, vf.Variable))
	}
}

// loadBackup loads the backup configuration: the flags of fs (nil: none) given on the command line, then --set, the
// environment, the --env-file and the defaults. A problem with a value given as a flag names the flag.
func loadBackup(c *command.CLI, fs *pflag.FlagSet) (*config.Backup, *backup.Key, error) {
	vars := c.SetFlags()
	named := map[string]string{} // variable → the flag that set it
	if fs != nil {               // nil: no flags
		fs.VisitAll(func(f *pflag.Flag) {
			for _, vf := range append(slices.Clone(Flags), JobFlags...) {
				if vf.Flag == f.Name && f.Changed {
					vars[vf.Variable] = f.Value.String()
					named[vf.Variable] = "--" + f.Name
				}
			}
		})
	}
	src := c.Sources()
	src.Flags = vars
	b, err := config.LoadBackup(src)
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
var unusedByBackup = []string{"KEYCLOAK_ADMIN_PASSWORD", "SPIRE_UPSTREAM_CA_KEY"}

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

// Env loads the backup configuration (the flags of fs, --set, the environment, --env-file) and returns
// what every backup command needs (app.NewBackup).
func Env(c *command.CLI, fs *pflag.FlagSet) (*app.Backup, error) {
	cfg, cerr := c.LoadConfigWithout(unusedByBackup...)
	b, key, berr := loadBackup(c, fs)
	if err := joinInvalid(cerr, berr); err != nil {
		return nil, err
	}
	return app.NewBackup(cfg, b, key, c.Log)
}

// WarnNoKey says, once, what a backup without a key means.
func WarnNoKey(c *command.CLI, env *app.Backup) {
	if env.Key == nil {
		fmt.Fprintln(c.Stderr, "warning: no BACKUP_ENCRYPTION_KEY: sets are stored unencrypted and unauthenticated; anyone who can write to the bucket can read them, and alter or forge sets that `restore` cannot tell from yours (it then needs --allow-unauthenticated). Set the key: `openssl rand -base64 32`.")
	}
}

// Restore checks the confirmation, loads the backup configuration (the flags of fs, …) and restores the set
// (app.Restore), under the live view view starts (nil: none).
func Restore(ctx context.Context, c *command.CLI, fs *pflag.FlagSet, r *app.RestoreOptions, set string, view View) error {
	if !r.DryRun && !r.Yes {
		return exitcode.With(exitcode.InvalidConfig, errors.New("restore replaces the servers' databases: pass --yes (or --dry-run to only verify and show the plan)"))
	}
	env, err := Env(c, fs)
	if err != nil {
		return err
	}
	if view != nil {
		var done func()
		ctx, done = view(ctx, env)
		defer done()
	}
	return app.Restore(ctx, env, r, set, c.Locker(), c.Stdout)
}

// View starts a live view of a backup or restore of env (on a terminal): the context carries its progress
// receiver; the func stops it.
type View func(ctx context.Context, env *app.Backup) (context.Context, func())
