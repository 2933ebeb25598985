package backup

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // pure-Go SQLite: online copies of SPIRE's datastore without cgo

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/invalid"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/progress"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/redact"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
)

// Source is one server whose state goes into a set.
type Source interface {
	// Name is the source's name in the manifest and its object's key: ziti, spire, keycloak.
	Name() string
	// Snapshot takes a consistent copy of the server's state while it runs. tmpDir is scratch space the
	// snapshot may use until it is closed.
	Snapshot(ctx context.Context, tmpDir string) (*Snapshot, error)
}

// Snapshot is a consistent copy being read.
type Snapshot struct {
	Format  string    // bbolt, sqlite3, pg_dump-custom
	Version string    // the server's version, "" when unknown
	R       io.Reader // the copy
	close   func() error
	once    sync.Once
	err     error
}

// NewSnapshot wraps r; close (may be nil) is called once by Close.
func NewSnapshot(format, version string, r io.Reader, close func() error) *Snapshot {
	return &Snapshot{Format: format, Version: version, R: r, close: close}
}

// Close releases the copy (temporary files, the dump process) and returns the producer's verdict: a dump tool
// that failed after writing part of its output fails here. Closing before R is drained abandons the copy.
func (s *Snapshot) Close() error {
	s.once.Do(func() {
		if s.close != nil {
			s.err = s.close()
		}
	})
	return s.err
}

// fileSnapshot reads the file at path and removes it on Close.
func fileSnapshot(format, version, path string) (*Snapshot, error) {
	f, err := os.Open(path)
	if err != nil {
		_ = os.Remove(path)
		return nil, err
	}
	return NewSnapshot(format, version, f, func() error {
		err := f.Close()
		if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = errors.Join(err, fmt.Errorf("remove the temporary copy: %w", rerr))
		}
		return err
	}), nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ZitiController is the part of the Ziti client a backup uses (*ziti.Client).
type ZitiController interface {
	SnapshotDB(ctx context.Context, path string) (string, error)
	Ping(ctx context.Context) (string, error)
}

var _ ZitiController = (*ziti.Client)(nil)

// ZitiSource snapshots the OpenZiti controller's database (bbolt) through the controller's own snapshot API,
// which copies it in a read transaction while the controller runs. The controller writes the copy next to its
// database, so the backup must run where that volume is visible: on the controller's host, or in a container
// that mounts the controller's volume (read-write: the copy is removed after upload). Only a controller with a
// single bbolt database (not an HA/raft cluster) is supported.
type ZitiSource struct {
	Controller ZitiController
	// DBPath is ctrl.db's path as this process sees it (ZITI_DB_PATH); the copy is read from its directory.
	DBPath string
	// RateLimitWait is how long to keep asking when the controller refuses because it took a snapshot less than
	// a minute ago (default 90 s).
	RateLimitWait time.Duration
}

// Name is "ziti".
func (z *ZitiSource) Name() string { return "ziti" }

// Snapshot asks the controller for a copy at __DB_DIR__/zb-backup-<random>.db and reads it from DBPath's
// directory.
func (z *ZitiSource) Snapshot(ctx context.Context, _ string) (*Snapshot, error) {
	if z.DBPath == "" {
		return nil, &invalid.Error{Problems: []invalid.Problem{{Var: "ZITI_DB_PATH",
			Msg: "required to back up the Ziti controller: the path of its ctrl.db as seen by ziti-bootstrap (mount the controller's volume)"}}}
	}
	version, err := z.Controller.Ping(ctx)
	if err != nil {
		return nil, err
	}
	// Lower-case hex only: the controller also expands bare DATE, TIME, DB_DIR... anywhere in the path.
	name := "zb-backup-" + randHex(6) + ".db"
	limit := z.RateLimitWait
	if limit <= 0 {
		limit = 90 * time.Second
	}
	var written string
	err = wait.For(ctx, wait.Target{What: "a Ziti controller database snapshot (at most one a minute)", Where: "the controller",
		Deadline: limit, Initial: 5 * time.Second, Max: 15 * time.Second, Progress: func(_, _ string, attempt int, _ time.Duration, _ error) {
			progress.Report(ctx, progress.Event{Stage: progress.Snapshot, Detail: fmt.Sprintf("the controller takes one a minute: attempt %d", attempt)})
		}}, func(ctx context.Context) error {
		p, err := z.Controller.SnapshotDB(ctx, "__DB_DIR__/"+name)
		if err != nil {
			if ziti.IsRateLimited(err) {
				return err
			}
			return wait.Permanent(err)
		}
		written = p
		return nil
	})
	if err != nil {
		return nil, err
	}
	local := filepath.Join(filepath.Dir(z.DBPath), filepath.Base(written))
	if _, err := os.Stat(local); err != nil {
		return nil, &invalid.Error{Problems: []invalid.Problem{{Var: "ZITI_DB_PATH", Msg: fmt.Sprintf(
			"the controller wrote its snapshot to %s (its own path), but %s is not readable here (%v): run the backup where the controller's database volume is mounted and point ZITI_DB_PATH at ctrl.db in that mount; then remove %s on the controller's volume",
			written, local, errors.Unwrap(err), written)}}}
	}
	return fileSnapshot("bbolt", version, local)
}

// SQLiteSource copies an SQLite database while its server runs, with VACUUM INTO: one read transaction, so the
// copy is consistent (write-ahead log included) and compact. Used for SPIRE's sqlite3 datastore.
type SQLiteSource struct {
	SourceName string // e.g. spire
	Path       string // the database file, as this process sees it (SPIRE_DATASTORE_PATH)
	// VersionQuery, when set, reads the server's version from the copy (one text column).
	VersionQuery string
	// VersionPrefix is put in front of what VersionQuery returns (e.g. "spire ").
	VersionPrefix string
}

// SpireVersionQuery reads the SPIRE version that last migrated the datastore.
const SpireVersionQuery = "SELECT code_version FROM migrations ORDER BY id DESC LIMIT 1"

// Name is SourceName.
func (s *SQLiteSource) Name() string { return s.SourceName }

// Snapshot writes the copy to tmpDir, checks it (PRAGMA quick_check) and reads it.
func (s *SQLiteSource) Snapshot(ctx context.Context, tmpDir string) (*Snapshot, error) {
	if _, err := os.Stat(s.Path); err != nil {
		return nil, fmt.Errorf("%s datastore: %w", s.SourceName, err)
	}
	tmp := filepath.Join(tmpDir, "zb-"+s.SourceName+"-"+randHex(6)+".sqlite3")
	src, err := sql.Open("sqlite", sqliteDSN(s.Path, true))
	if err != nil {
		return nil, err
	}
	defer src.Close()
	if _, err := src.ExecContext(ctx, "VACUUM INTO ?", tmp); err != nil {
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("copy the %s datastore %s: %w", s.SourceName, s.Path, err)
	}
	version, err := checkSQLite(ctx, tmp, s.VersionQuery)
	if err != nil {
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("check the copy of %s: %w", s.Path, err)
	}
	if version != "" {
		version = s.VersionPrefix + version
	}
	return fileSnapshot("sqlite3", version, tmp)
}

// sqliteDSN opens path (read-only when ro) and waits for locks instead of failing at once.
func sqliteDSN(path string, ro bool) string {
	q := url.Values{}
	if ro {
		q.Set("mode", "ro")
	}
	q.Add("_pragma", "busy_timeout(30000)")
	return (&url.URL{Scheme: "file", OmitHost: true, Path: path, RawQuery: q.Encode()}).String()
}

// checkSQLite runs PRAGMA quick_check on the database at path and returns what versionQuery reads ("" if none).
func checkSQLite(ctx context.Context, path, versionQuery string) (string, error) {
	db, err := sql.Open("sqlite", sqliteDSN(path, true))
	if err != nil {
		return "", err
	}
	defer db.Close()
	var res string
	if err := db.QueryRowContext(ctx, "PRAGMA quick_check").Scan(&res); err != nil {
		return "", fmt.Errorf("not an SQLite database: %w", err)
	}
	if res != "ok" {
		return "", fmt.Errorf("PRAGMA quick_check: %s", res)
	}
	if versionQuery == "" {
		return "", nil
	}
	var v sql.NullString
	if err := db.QueryRowContext(ctx, versionQuery).Scan(&v); err != nil {
		return "", fmt.Errorf("read the version (%s): %w", versionQuery, err)
	}
	return v.String, nil
}

// Postgres is how to reach one PostgreSQL database with its client tools (pg_dump, pg_restore, psql).
type Postgres struct {
	BinDir   string // directory of pg_dump, pg_restore and psql; "" searches PATH
	Host     string
	Port     int
	User     string
	Password redact.Secret
	Database string
}

func (p Postgres) bin(name string) string {
	if p.BinDir == "" {
		return name
	}
	return filepath.Join(p.BinDir, name)
}

// String names the database for messages (no password).
func (p Postgres) String() string {
	return fmt.Sprintf("postgresql://%s@%s:%d/%s", p.User, p.Host, p.Port, p.Database)
}

// command runs a client tool against the database; the connection comes from the environment, never argv.
func (p Postgres) command(ctx context.Context, tool string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, p.bin(tool), args...)
	// the operator's other secrets (ZITI_PWD, S3_SECRET_ACCESS_KEY, …) stay out of the tool's environment
	cmd.Env = append(redact.ChildEnv(os.Environ()), "PGHOST="+p.Host, "PGPORT="+strconv.Itoa(p.Port), "PGUSER="+p.User,
		"PGDATABASE="+p.Database, "PGPASSWORD="+p.Password.Value(), "PGCONNECT_TIMEOUT=15", "PGAPPNAME=ziti-bootstrap-backup")
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// Query runs one SQL statement with psql and returns its unaligned output.
func (p Postgres) Query(ctx context.Context, query string) (string, error) {
	cmd := p.command(ctx, "psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c", query)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("psql on %s: %w: %s", p, err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// PostgresSource dumps a database with pg_dump in its custom format (one consistent transaction snapshot; no
// compression: the stream is compressed afterwards), streamed without a temporary file. Used for Keycloak.
type PostgresSource struct {
	SourceName string // e.g. keycloak
	DB         Postgres
	// VersionQuery, when set, reads the application's version (one text value), e.g. KeycloakVersionQuery.
	VersionQuery  string
	VersionPrefix string
}

// KeycloakVersionQuery reads the Keycloak version that last migrated its database.
const KeycloakVersionQuery = "SELECT version FROM migration_model ORDER BY update_time DESC LIMIT 1"

// Name is SourceName.
func (s *PostgresSource) Name() string { return s.SourceName }

// Snapshot starts pg_dump; its output is the snapshot, and its exit status is checked by Close.
func (s *PostgresSource) Snapshot(ctx context.Context, _ string) (*Snapshot, error) {
	version, err := s.DB.Query(ctx, "SHOW server_version")
	if err != nil {
		return nil, err
	}
	version = "PostgreSQL " + version
	if s.VersionQuery != "" {
		if v, err := s.DB.Query(ctx, s.VersionQuery); err == nil && v != "" {
			version = s.VersionPrefix + v + " (" + version + ")"
		}
	}
	cmd := s.DB.command(ctx, "pg_dump", "--format=custom", "--compress=0", "--no-password")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr := &tailBuffer{max: 4 << 10}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start pg_dump: %w", err)
	}
	r := &eofReader{r: stdout}
	return NewSnapshot("pg_dump-custom", version, r, func() error {
		if !r.eof {
			_ = cmd.Process.Kill() // abandoned: do not wait for a dump nobody reads
		}
		if err := cmd.Wait(); err != nil {
			if !r.eof {
				return nil // killed by us; the reason is the caller's error
			}
			return fmt.Errorf("pg_dump of %s failed: %w: %s", s.DB, err, strings.TrimSpace(stderr.String()))
		}
		return nil
	}), nil
}

// eofReader remembers whether its reader reached EOF.
type eofReader struct {
	r   io.Reader
	eof bool
}

func (e *eofReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		e.eof = true
	}
	return n, err
}

// tailBuffer keeps the last max bytes written to it (a tool's stderr).
type tailBuffer struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append([]byte(nil), t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
