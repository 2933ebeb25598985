package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/backup"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/progress"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/s3store"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
)

// Backup is what the backup and restore commands share: the configuration, the S3 store and the key. Make it
// with NewBackup.
type Backup struct {
	Config   *config.Config
	Settings *config.Backup
	S3       *s3store.Client
	Store    backup.Store
	Key      *backup.Key // nil: sets are neither encrypted nor authenticated
	Counter  *calls.Counter
	Log      *slog.Logger
}

// NewBackup checks that backups are configured and builds the S3 client (no call is made).
func NewBackup(cfg *config.Config, b *config.Backup, key *backup.Key, log *slog.Logger) (*Backup, error) {
	if cfg.S3.Endpoint == nil {
		return nil, &config.Error{Problems: []config.Problem{{Var: "S3_ENDPOINT", Msg: "backups are not configured: set S3_ENDPOINT (and S3_BUCKET, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY)"}}}
	}
	counter := calls.New()
	c, err := s3store.New(s3store.Options{Endpoint: cfg.S3.Endpoint, Region: cfg.S3.Region, Bucket: cfg.S3.Bucket,
		AccessKey: cfg.S3.AccessKey, SecretKey: cfg.S3.SecretKey, Counter: counter, PartSize: b.PartSize})
	if err != nil {
		return nil, &config.Error{Problems: []config.Problem{{Var: "S3_ENDPOINT", Msg: err.Error()}}}
	}
	return &Backup{Config: cfg, Settings: b, S3: c, Store: backup.NewS3Store(c), Key: key, Counter: counter, Log: log}, nil
}

// Sources builds the configured sources.
func (e *Backup) Sources(ctx context.Context) ([]backup.Source, error) {
	var out []backup.Source
	for _, s := range e.Settings.Sources { // in the order of config.BackupSources
		switch s {
		case "ziti":
			zc, err := ziti.New(ctx, ziti.Options{URL: e.Config.Ziti.URL, User: e.Config.Ziti.User, Password: e.Config.Ziti.Password,
				CAFile: e.Config.Ziti.CAFile, TOFU: e.Config.Ziti.CATOFU, Counter: e.Counter})
			if err != nil {
				return nil, err
			}
			out = append(out, &backup.ZitiSource{Controller: zc, DBPath: e.Settings.ZitiDBPath})
		case "spire":
			out = append(out, &backup.SQLiteSource{SourceName: "spire", Path: e.Settings.SpireDatastorePath, VersionQuery: backup.SpireVersionQuery, VersionPrefix: "spire "})
		case "keycloak":
			pg, err := postgres(e.Settings)
			if err != nil {
				return nil, err
			}
			out = append(out, &backup.PostgresSource{SourceName: "keycloak", DB: pg, VersionQuery: backup.KeycloakVersionQuery, VersionPrefix: "keycloak "})
		}
	}
	return out, nil
}

// postgres is how to reach Keycloak's database; its password is required.
func postgres(b *config.Backup) (backup.Postgres, error) {
	if !b.DB.Password.IsSet() {
		return backup.Postgres{}, &config.Error{Problems: []config.Problem{{Var: "KEYCLOAK_DB_PASSWORD",
			Msg: "required to back up or restore Keycloak's database; give --keycloak-db-password-file, KEYCLOAK_DB_PASSWORD, KEYCLOAK_DB_PASSWORD_FILE or the Docker secret keycloak_db_password, or leave keycloak out of --sources (BACKUP_SOURCES)"}}}
	}
	return backup.Postgres{BinDir: b.DB.BinDir, Host: b.DB.Host, Port: b.DB.Port, User: b.DB.User, Password: b.DB.Password, Database: b.DB.Name}, nil
}

// Lister lists the sets under the configured prefix.
func (e *Backup) Lister() *backup.Lister {
	return &backup.Lister{Store: e.Store, Prefix: e.Settings.Prefix, Key: e.Key, Grace: e.Settings.IncompleteGrace}
}

// Restorer restores sets of the configured prefix into targets.
func (e *Backup) Restorer(targets []backup.Target, allowUnauthenticated bool) *backup.Restore {
	return &backup.Restore{Store: e.Store, Prefix: e.Settings.Prefix, Key: e.Key, TempDir: e.Settings.TempDir, Targets: targets, Log: e.Log,
		AllowUnauthenticated: allowUnauthenticated}
}

// Locker runs fn under the tool's lock (WithLock with the command's lock settings).
type Locker func(ctx context.Context, cfg *config.Config, fn func(ctx context.Context) error) error

// RunOnce takes one set and prunes (unless noPrune), under the tool's lock; it returns the manifest and the sets
// deleted. tool is the version recorded in the manifest.
func (e *Backup) RunOnce(ctx context.Context, lock Locker, tool string, noPrune bool) (m *backup.Manifest, deleted []string, err error) {
	err = lock(ctx, e.Config, func(ctx context.Context) error {
		if _, err := e.S3.EnsureBucket(ctx); err != nil {
			return err
		}
		sources, err := e.Sources(ctx)
		if err != nil {
			return err
		}
		b := &backup.Backup{Store: e.Store, Prefix: e.Settings.Prefix, Sources: sources, Key: e.Key, TempDir: e.Settings.TempDir, Tool: tool, Log: e.Log}
		if m, err = b.Run(ctx); err != nil || noPrune {
			return err
		}
		progress.Report(ctx, progress.Event{Stage: progress.Prune})
		deleted, err = e.Prune(ctx, false, false, io.Discard)
		progress.Report(ctx, progress.Event{Stage: progress.Done, Detail: fmt.Sprintf("%s; %d set(s) deleted by retention", m.Set, len(deleted)), Err: err})
		return err
	})
	return m, deleted, err
}

// Prune applies the retention policy (deleting invalid sets too with invalid), writing each decision to w; with
// dryRun it deletes nothing.
func (e *Backup) Prune(ctx context.Context, dryRun, invalid bool, w io.Writer) ([]string, error) {
	sets, err := e.Lister().List(ctx, time.Now())
	if err != nil {
		return nil, err
	}
	ds := backup.Policy{KeepLast: e.Settings.KeepLast, KeepDaily: e.Settings.KeepDaily, KeepWeekly: e.Settings.KeepWeekly, DeleteInvalid: invalid}.Plan(sets)
	for _, d := range ds {
		fmt.Fprintln(w, d)
	}
	if dryRun {
		return nil, nil
	}
	return backup.Prune(ctx, e.Store, e.Settings.Prefix, ds, e.Log)
}
