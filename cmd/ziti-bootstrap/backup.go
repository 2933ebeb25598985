package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ziti-bootstrap/ziti-bootstrap/backup"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/s3store"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
)

// backupOptions are the settings of backup and restore. They are flags for now; each names the configuration
// variable it is meant to become (the defaults are those variables' defaults).
type backupOptions struct {
	prefix     string        // BACKUP_PREFIX
	keyFile    string        // BACKUP_ENCRYPTION_KEY (secret; here: a file holding it)
	keepLast   int           // BACKUP_KEEP_LAST
	keepDaily  int           // BACKUP_KEEP_DAILY
	keepWeekly int           // BACKUP_KEEP_WEEKLY
	grace      time.Duration // BACKUP_INCOMPLETE_GRACE
	sources    []string      // BACKUP_SOURCES
	tmpDir     string        // BACKUP_TMPDIR
	partMiB    int           // BACKUP_PART_SIZE_MIB
	zitiDB     string        // ZITI_DB_PATH
	spireDB    string        // SPIRE_DATASTORE_PATH
	pg         pgOptions
}

type pgOptions struct {
	host, user, database, binDir string // KEYCLOAK_DB_HOST, KEYCLOAK_DB_USER, KEYCLOAK_DB_NAME, PG_BIN_DIR
	port                         int    // KEYCLOAK_DB_PORT
	passwordFile                 string // KEYCLOAK_DB_PASSWORD (secret; here: a file holding it)
}

var allSources = []string{"ziti", "spire", "keycloak"}

func (o *backupOptions) bind(f *pflag.FlagSet) {
	f.StringVar(&o.prefix, "prefix", "ziti-bootstrap", "key prefix of the snapshot sets in the bucket (BACKUP_PREFIX)")
	f.StringVar(&o.keyFile, "encryption-key-file", "", "file holding the encryption key, 32 random bytes as base64 (BACKUP_ENCRYPTION_KEY); default: $BACKUP_ENCRYPTION_KEY_FILE, else the Docker secret backup_encryption_key if present, else no encryption")
	f.IntVar(&o.keepLast, "keep-last", 7, "retention: keep the N newest complete sets (BACKUP_KEEP_LAST)")
	f.IntVar(&o.keepDaily, "keep-daily", 7, "retention: keep the newest set of each of the N latest days with sets (BACKUP_KEEP_DAILY)")
	f.IntVar(&o.keepWeekly, "keep-weekly", 4, "retention: keep the newest set of each of the N latest weeks with sets (BACKUP_KEEP_WEEKLY)")
	f.DurationVar(&o.grace, "incomplete-grace", backup.DefaultGrace, "a set without a manifest counts as still being written for this long (BACKUP_INCOMPLETE_GRACE)")
	f.StringSliceVar(&o.sources, "sources", allSources, "servers to back up or restore: ziti, spire, keycloak (BACKUP_SOURCES)")
	f.StringVar(&o.tmpDir, "tmp-dir", "", "scratch space for SQLite copies and restore staging (BACKUP_TMPDIR); default the system's")
	f.IntVar(&o.partMiB, "part-size-mib", int(s3store.DefaultPartSize>>20), "S3 multipart part size in MiB (at least 5; objects up to 10000 parts); uploads hold 4 parts in memory (BACKUP_PART_SIZE_MIB)")
	f.StringVar(&o.zitiDB, "ziti-db", "/ziti-controller/bbolt.db", "the Ziti controller's database file, as mounted here (ZITI_DB_PATH)")
	f.StringVar(&o.spireDB, "spire-datastore", "/var/lib/spire/server/datastore.sqlite3", "SPIRE's sqlite3 datastore, as mounted here (SPIRE_DATASTORE_PATH)")
	f.StringVar(&o.pg.host, "keycloak-db-host", "keycloak-db", "Keycloak's PostgreSQL host (KEYCLOAK_DB_HOST)")
	f.IntVar(&o.pg.port, "keycloak-db-port", 5432, "Keycloak's PostgreSQL port (KEYCLOAK_DB_PORT)")
	f.StringVar(&o.pg.user, "keycloak-db-user", "keycloak", "Keycloak's PostgreSQL user (KEYCLOAK_DB_USER)")
	f.StringVar(&o.pg.database, "keycloak-db-name", "keycloak", "Keycloak's database (KEYCLOAK_DB_NAME)")
	f.StringVar(&o.pg.passwordFile, "keycloak-db-password-file", "", "file holding the PostgreSQL password (KEYCLOAK_DB_PASSWORD); default: $KEYCLOAK_DB_PASSWORD_FILE, else the Docker secret keycloak_db_password")
	f.StringVar(&o.pg.binDir, "pg-bin-dir", "", "directory of pg_dump, pg_restore and psql, of the server's major version or newer (PG_BIN_DIR); default PATH")
}

func (o *backupOptions) validate() error {
	var ps []config.Problem
	for _, s := range o.sources {
		if !slices.Contains(allSources, s) {
			ps = append(ps, config.Problem{Var: "--sources", Msg: fmt.Sprintf("unknown source %q; use %s", s, strings.Join(allSources, ", "))})
		}
	}
	if o.keepLast < 0 || o.keepDaily < 0 || o.keepWeekly < 0 {
		ps = append(ps, config.Problem{Var: "--keep-*", Msg: "must not be negative"})
	}
	if len(ps) > 0 {
		return &config.Error{Problems: ps}
	}
	return nil
}

func (o *backupOptions) has(source string) bool { return slices.Contains(o.sources, source) }

func (o *backupOptions) policy() backup.Policy {
	return backup.Policy{KeepLast: o.keepLast, KeepDaily: o.keepDaily, KeepWeekly: o.keepWeekly}
}

// readSecret reads a secret from path, else from the file named by $envName_FILE, else from the Docker secret;
// ok is false when none of them exists (and path was not given).
func readSecret(path, envName, dockerSecret string) (config.Secret, bool, error) {
	where := path
	if where == "" {
		where = os.Getenv(envName + "_FILE")
	}
	if where == "" {
		p := filepath.Join("/run/secrets", dockerSecret)
		if _, err := os.Stat(p); err != nil {
			return config.Secret{}, false, nil
		}
		where = p
	}
	b, err := os.ReadFile(where)
	if err != nil {
		return config.Secret{}, false, &config.Error{Problems: []config.Problem{{Var: envName, Msg: fmt.Sprintf("cannot read %s: %v", where, errors.Unwrap(err))}}}
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return config.Secret{}, false, &config.Error{Problems: []config.Problem{{Var: envName, Msg: where + " is empty"}}}
	}
	return config.NewSecret(s), true, nil
}

func (o *backupOptions) key() (*backup.Key, error) {
	s, ok, err := readSecret(o.keyFile, "BACKUP_ENCRYPTION_KEY", "backup_encryption_key")
	if err != nil || !ok {
		return nil, err
	}
	return backup.ParseKey(s)
}

func (o *backupOptions) postgres() (backup.Postgres, error) {
	pw, ok, err := readSecret(o.pg.passwordFile, "KEYCLOAK_DB_PASSWORD", "keycloak_db_password")
	if err != nil {
		return backup.Postgres{}, err
	}
	if !ok {
		return backup.Postgres{}, &config.Error{Problems: []config.Problem{{Var: "KEYCLOAK_DB_PASSWORD",
			Msg: "required to back up or restore Keycloak's database; give --keycloak-db-password-file, KEYCLOAK_DB_PASSWORD_FILE or the Docker secret keycloak_db_password, or leave keycloak out of --sources"}}}
	}
	return backup.Postgres{BinDir: o.pg.binDir, Host: o.pg.host, Port: o.pg.port, User: o.pg.user, Password: pw, Database: o.pg.database}, nil
}

// backupEnv is what every backup command needs: the configuration, the store and the key.
type backupEnv struct {
	cfg     *config.Config
	s3      *s3store.Client
	store   backup.Store
	key     *backup.Key
	counter *calls.Counter
}

func (g *globals) backupEnv(ctx context.Context, o *backupOptions) (*backupEnv, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, err
	}
	if cfg.S3.Endpoint == nil {
		return nil, &config.Error{Problems: []config.Problem{{Var: "S3_ENDPOINT", Msg: "backups are not configured: set S3_ENDPOINT (and S3_BUCKET, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY)"}}}
	}
	key, err := o.key()
	if err != nil {
		return nil, err
	}
	counter := calls.New()
	c, err := s3store.New(s3store.Options{Endpoint: cfg.S3.Endpoint, Region: cfg.S3.Region, Bucket: cfg.S3.Bucket,
		AccessKey: cfg.S3.AccessKey, SecretKey: cfg.S3.SecretKey, Counter: counter, PartSize: int64(o.partMiB) << 20})
	if err != nil {
		return nil, &config.Error{Problems: []config.Problem{{Var: "S3_ENDPOINT", Msg: err.Error()}}}
	}
	return &backupEnv{cfg: cfg, s3: c, store: backup.NewS3Store(c), key: key, counter: counter}, nil
}

func (e *backupEnv) zitiClient(ctx context.Context) (*ziti.Client, error) {
	return ziti.New(ctx, ziti.Options{URL: e.cfg.Ziti.URL, User: e.cfg.Ziti.User, Password: e.cfg.Ziti.Password,
		CAFile: e.cfg.Ziti.CAFile, TOFU: e.cfg.Ziti.CATOFU, Counter: e.counter})
}

// sources builds the configured sources.
func (e *backupEnv) sources(ctx context.Context, o *backupOptions) ([]backup.Source, error) {
	var out []backup.Source
	for _, s := range allSources { // always in this order
		if !o.has(s) {
			continue
		}
		switch s {
		case "ziti":
			zc, err := e.zitiClient(ctx)
			if err != nil {
				return nil, err
			}
			out = append(out, &backup.ZitiSource{Controller: zc, DBPath: o.zitiDB})
		case "spire":
			out = append(out, &backup.SQLiteSource{SourceName: "spire", Path: o.spireDB, VersionQuery: backup.SpireVersionQuery, VersionPrefix: "spire "})
		case "keycloak":
			pg, err := o.postgres()
			if err != nil {
				return nil, err
			}
			out = append(out, &backup.PostgresSource{SourceName: "keycloak", DB: pg, VersionQuery: backup.KeycloakVersionQuery, VersionPrefix: "keycloak "})
		}
	}
	return out, nil
}

func newBackupCommand(g *globals) *cobra.Command {
	o := &backupOptions{}
	var schedule, listen string
	var noPrune bool
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Take a snapshot set of the Ziti controller, SPIRE and Keycloak databases into S3, then apply the retention policy",
		Long: `Take one snapshot set: the Ziti controller's database (through its snapshot API), SPIRE's datastore (an online
SQLite copy) and Keycloak's database (pg_dump), compressed, optionally encrypted, streamed to the S3 bucket with a
manifest written last. Then sets the retention policy does not keep are deleted (--no-prune to skip).

Run it where the controller's and SPIRE's database volumes are mounted (see --ziti-db, --spire-datastore).
With --schedule it runs as a long-lived job with Prometheus metrics and a health check.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if schedule != "" {
				return classify(runSchedule(cmd.Context(), g, o, schedule, listen, noPrune))
			}
			return classify(runBackup(cmd.Context(), g, o, noPrune))
		},
	}
	o.bind(cmd.PersistentFlags())
	cmd.Flags().BoolVar(&noPrune, "no-prune", false, "do not apply the retention policy after the backup")
	cmd.Flags().StringVar(&schedule, "schedule", "", `run as a job: take a set on this cron schedule, e.g. "0 3 * * *" or "@every 6h" (BACKUP_SCHEDULE)`)
	cmd.Flags().StringVar(&listen, "listen", ":9108", "with --schedule: address of the /metrics and /healthz endpoints (BACKUP_LISTEN)")
	cmd.AddCommand(newBackupListCommand(g, o), newBackupVerifyCommand(g, o), newBackupPruneCommand(g, o), newBackupHealthcheckCommand(g))
	return cmd
}

// runSchedule runs backups on schedule until the context ends (SIGTERM), serving metrics and health on listen.
func runSchedule(ctx context.Context, g *globals, o *backupOptions, schedule, listen string, noPrune bool) error {
	if err := o.validate(); err != nil {
		return err
	}
	if _, err := g.loadConfig(); err != nil { // fail at start, not at the first run
		return err
	}
	job, err := backup.NewJob(backup.JobConfig{Schedule: schedule, Log: g.log, Run: func(ctx context.Context) (*backup.Manifest, error) {
		m, _, err := runOnce(ctx, g, o, noPrune)
		return m, err
	}})
	if err != nil {
		return &exitError{exitcode.InvalidConfig, err}
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	return job.Serve(ctx, listen)
}

// newBackupHealthcheckCommand is the scheduled job's health check for images without curl (FROM scratch).
func newBackupHealthcheckCommand(g *globals) *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 if the scheduled backup job on this host is healthy (for a container HEALTHCHECK)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return &exitError{exitcode.Unreachable, err}
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			fmt.Fprint(g.stdout, string(body))
			if resp.StatusCode != http.StatusOK {
				return &exitError{exitcode.StepFailed, fmt.Errorf("backup job unhealthy (%s)", resp.Status)}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:9108", "address of the job's health endpoint")
	return cmd
}

// runOnce takes one set and prunes; it returns the manifest and the sets deleted.
func runOnce(ctx context.Context, g *globals, o *backupOptions, noPrune bool) (*backup.Manifest, []string, error) {
	env, err := g.backupEnv(ctx, o)
	if err != nil {
		return nil, nil, err
	}
	if _, err := env.s3.EnsureBucket(ctx); err != nil {
		return nil, nil, err
	}
	sources, err := env.sources(ctx, o)
	if err != nil {
		return nil, nil, err
	}
	b := &backup.Backup{Store: env.store, Prefix: o.prefix, Sources: sources, Key: env.key, TempDir: o.tmpDir, Tool: version, Log: g.log}
	m, err := b.Run(ctx)
	if err != nil || noPrune {
		return m, nil, err
	}
	deleted, err := prune(ctx, g, env, o, false, io.Discard)
	return m, deleted, err
}

func runBackup(ctx context.Context, g *globals, o *backupOptions, noPrune bool) error {
	m, deleted, err := runOnce(ctx, g, o, noPrune)
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

// prune applies the retention policy; with dryRun it only prints the decisions.
func prune(ctx context.Context, g *globals, env *backupEnv, o *backupOptions, dryRun bool, w io.Writer) ([]string, error) {
	sets, err := (&backup.Lister{Store: env.store, Prefix: o.prefix, Key: env.key, Grace: o.grace}).List(ctx, time.Now())
	if err != nil {
		return nil, err
	}
	ds := o.policy().Plan(sets)
	for _, d := range ds {
		fmt.Fprintln(w, d)
	}
	if dryRun {
		return nil, nil
	}
	return backup.Prune(ctx, env.store, o.prefix, ds, g.log)
}

func newBackupListCommand(g *globals, o *backupOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the snapshot sets with their size, age and completeness",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, err := g.backupEnv(cmd.Context(), o)
			if err != nil {
				return err
			}
			now := time.Now()
			sets, err := (&backup.Lister{Store: env.store, Prefix: o.prefix, Key: env.key, Grace: o.grace}).List(cmd.Context(), now)
			if err != nil {
				return classify(err)
			}
			return printSets(g.stdout, g.output, sets, now)
		},
	}
}

// setView is a set as `backup list -o json` prints it.
type setView struct {
	ID         string           `json:"id"`
	State      backup.SetState  `json:"state"`
	Started    time.Time        `json:"started"`
	AgeSeconds int64            `json:"ageSeconds"`
	Bytes      int64            `json:"bytes"`
	Objects    int              `json:"objects"`
	Problem    string           `json:"problem,omitempty"`
	Manifest   *backup.Manifest `json:"manifest,omitempty"`
}

func printSets(w io.Writer, format string, sets []backup.SetInfo, now time.Time) error {
	if format == "json" {
		views := []setView{}
		for _, s := range sets {
			views = append(views, setView{ID: s.ID, State: s.State, Started: s.Started, AgeSeconds: int64(now.Sub(s.Started).Seconds()),
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

func newBackupVerifyCommand(g *globals, o *backupOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "verify SET|latest",
		Short: "Download a set and check every object's size and SHA-256 against its manifest (changes nothing)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := g.backupEnv(cmd.Context(), o)
			if err != nil {
				return err
			}
			r := &backup.Restore{Store: env.store, Prefix: o.prefix, Key: env.key, TempDir: o.tmpDir, Log: g.log}
			m, err := r.Verify(cmd.Context(), args[0])
			if err != nil {
				return classify(err)
			}
			if g.output == "json" {
				return printJSON(g.stdout, m)
			}
			fmt.Fprintf(g.stdout, "set %s verified: %d object(s), %s\n", m.Set, len(m.Objects), bytesString(m.Size()))
			return nil
		},
	}
}

func newBackupPruneCommand(g *globals, o *backupOptions) *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Apply the retention policy: delete the sets it does not keep (never the newest complete set, nor one being written)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, err := g.backupEnv(cmd.Context(), o)
			if err != nil {
				return err
			}
			_, err = prune(cmd.Context(), g, env, o, dryRun, g.stdout)
			return classify(err)
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show the decisions only")
	return cmd
}

// classify gives a backup or restore error its exit code: a key that does not fit the set is a configuration
// problem, a dependency that did not answer is unreachable, a refused set or failed run is a failure.
func classify(err error) error {
	var ke *backup.KeyError
	var ue *wait.UnreachableError
	var ee *exitError
	switch {
	case err == nil, errors.As(err, &ee), config.IsInvalid(err):
		return err
	case errors.As(err, &ke):
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
