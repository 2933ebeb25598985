package config

import (
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// BackupSources are the servers a snapshot set holds, in the order they are backed up.
var BackupSources = []string{"ziti", "spire", "keycloak"}

// BackupVars are the variables of `backup` and `restore` (see backup/doc.go). init appends them to Vars, so
// Lookup, --set and the .env.example check know them. KEYCLOAK_DB_USER and KEYCLOAK_DB_PASSWORD are stack
// variables (StackVars): the backup reads the same ones.
var BackupVars = []Var{
	{Name: "BACKUP_PREFIX", Default: "ziti-bootstrap", Help: "key prefix of the snapshot sets in the S3 bucket"},
	{Name: "BACKUP_ENCRYPTION_KEY", Secret: true, SecretName: "backup_encryption_key", Help: "32 random bytes as base64 (openssl rand -base64 32): encrypts every object; unset: no encryption"},
	{Name: "BACKUP_KEEP_LAST", Default: "7", Help: "retention: keep the N newest complete sets"},
	{Name: "BACKUP_KEEP_DAILY", Default: "7", Help: "retention: keep the newest set of each of the N latest days with sets"},
	{Name: "BACKUP_KEEP_WEEKLY", Default: "4", Help: "retention: keep the newest set of each of the N latest weeks with sets"},
	{Name: "BACKUP_INCOMPLETE_GRACE", Default: "6h", Help: "a set without a manifest counts as still being written for this long (Go duration)"},
	{Name: "BACKUP_SOURCES", Default: "ziti,spire,keycloak", Help: "comma-separated servers to back up or restore: ziti, spire, keycloak"},
	{Name: "BACKUP_TMPDIR", Help: "scratch space for SQLite copies and restore staging; empty: the system's"},
	{Name: "BACKUP_PART_SIZE_MIB", Default: "6", Help: "S3 multipart part size in MiB (5-5120); an upload holds 4 parts in memory"},
	{Name: "ZITI_DB_PATH", Default: "/ziti-controller/bbolt.db", Help: "the OpenZiti controller's database file, where the backup runs (its volume mounted)"},
	{Name: "SPIRE_DATASTORE_PATH", Default: "/var/lib/spire/server/datastore.sqlite3", Help: "SPIRE's sqlite3 datastore, where the backup runs (its volume mounted)"},
	{Name: "KEYCLOAK_DB_HOST", Default: "keycloak-db", Help: "Keycloak's PostgreSQL host"},
	{Name: "KEYCLOAK_DB_PORT", Default: "5432", Help: "Keycloak's PostgreSQL port"},
	{Name: "KEYCLOAK_DB_NAME", Default: "keycloak", Help: "Keycloak's database"},
	{Name: "PG_BIN_DIR", Help: "directory of pg_dump, pg_restore and psql (the server's major version or newer); empty: PATH"},
	{Name: "BACKUP_SCHEDULE", Help: `backup runs as a long-lived job taking a set on this cron schedule ("0 3 * * *", "@every 6h"); empty: one run`},
	{Name: "BACKUP_LISTEN", Default: "127.0.0.1:9108", Help: "address of the scheduled job's /metrics and /healthz (in the stack: ZB_METRICS_ADDRESS:9108)"},
}

// Backup is the configuration of backup and restore.
type Backup struct {
	Prefix string
	// EncryptionKey is unset when backups are not encrypted; backup.ParseKey checks its form.
	EncryptionKey                   Secret
	KeepLast, KeepDaily, KeepWeekly int
	IncompleteGrace                 time.Duration
	Sources                         []string // a subset of BackupSources, in their order
	TempDir                         string   // "" for the system's
	PartSize                        int64    // bytes
	ZitiDBPath, SpireDatastorePath  string
	DB                              BackupDB
	Schedule                        string // "" for one run
	Listen                          string
}

// BackupDB is how the backup reaches Keycloak's PostgreSQL database. Password is unset when none is configured:
// only the commands that connect require it.
type BackupDB struct {
	Host     string
	Port     int
	User     string
	Password Secret
	Name     string
	BinDir   string // "" for PATH
}

// Has reports whether source is one of the configured sources.
func (b *Backup) Has(source string) bool { return slices.Contains(b.Sources, source) }

// LoadBackup reads the backup variables from src with the precedence of Load (flags, environment, .env file,
// default) and validates them. A secret's NAME_FILE given as a flag beats NAME set elsewhere. On any problem it
// returns an *Error listing all of them, each naming its variable.
func LoadBackup(src Sources) (*Backup, error) {
	l := newLoader(src)
	c := &Backup{}
	c.Prefix = l.get("BACKUP_PREFIX")
	if strings.HasPrefix(c.Prefix, "/") {
		l.fail("BACKUP_PREFIX", "%q must not start with /; use e.g. ziti-bootstrap", c.Prefix)
	}
	c.EncryptionKey = l.flagSecret("BACKUP_ENCRYPTION_KEY")
	c.KeepLast = l.intIn("BACKUP_KEEP_LAST", 0, 1<<20)
	c.KeepDaily = l.intIn("BACKUP_KEEP_DAILY", 0, 1<<20)
	c.KeepWeekly = l.intIn("BACKUP_KEEP_WEEKLY", 0, 1<<20)
	c.IncompleteGrace = l.duration("BACKUP_INCOMPLETE_GRACE")
	c.Sources = l.sources("BACKUP_SOURCES")
	c.TempDir = l.get("BACKUP_TMPDIR")
	if c.TempDir != "" {
		if st, err := os.Stat(c.TempDir); err != nil || !st.IsDir() {
			l.fail("BACKUP_TMPDIR", "%q is not a directory; create it or leave the variable empty for the system's", c.TempDir)
		}
	}
	// S3 allows parts of 5 MiB to 5 GiB.
	c.PartSize = int64(l.intIn("BACKUP_PART_SIZE_MIB", 5, 5120)) << 20
	c.ZitiDBPath = l.nonEmpty("ZITI_DB_PATH")
	c.SpireDatastorePath = l.nonEmpty("SPIRE_DATASTORE_PATH")
	c.DB.Host = l.nonEmpty("KEYCLOAK_DB_HOST")
	c.DB.Port = l.intIn("KEYCLOAK_DB_PORT", 1, 65535)
	c.DB.User = l.nonEmpty("KEYCLOAK_DB_USER")
	c.DB.Password = l.flagSecret("KEYCLOAK_DB_PASSWORD")
	c.DB.Name = l.nonEmpty("KEYCLOAK_DB_NAME")
	c.DB.BinDir = l.get("PG_BIN_DIR")
	c.Schedule = l.get("BACKUP_SCHEDULE")
	if c.Schedule != "" {
		if _, err := cron.ParseStandard(c.Schedule); err != nil {
			l.fail("BACKUP_SCHEDULE", "%q: %v; use 5 cron fields (\"0 3 * * *\") or a descriptor (\"@daily\", \"@every 6h\"), or leave it empty for one run", c.Schedule, err)
		}
	}
	c.Listen = l.listen("BACKUP_LISTEN")
	if err := l.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// LoadBackupListen returns where a health check reaches the scheduled job: BACKUP_LISTEN, on 127.0.0.1 when it
// names no host (":9108"). Only that variable is read and checked.
func LoadBackupListen(src Sources) (string, error) { return loadLocalListen(src, "BACKUP_LISTEN") }

// loadLocalListen reads the listen address name and returns it on 127.0.0.1 when it names no host.
func loadLocalListen(src Sources, name string) (string, error) {
	l := newLoader(src)
	addr := l.listen(name)
	if err := l.err(); err != nil {
		return "", err
	}
	if host, p, _ := net.SplitHostPort(addr); host == "" || host == "0.0.0.0" || host == "::" {
		addr = net.JoinHostPort("127.0.0.1", p)
	}
	return addr, nil
}

// listen parses an address to listen on, host:port or :port.
func (l *loader) listen(name string) string {
	v := l.get(name)
	if _, p, err := net.SplitHostPort(v); err != nil || port(p) != nil {
		l.fail(name, "%q is not an address to listen on; use host:port or :port, e.g. :9108", v)
	}
	return v
}

// intIn parses an integer between lo and hi.
func (l *loader) intIn(name string, lo, hi int) int {
	v := l.get(name)
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		l.fail(name, "%q is not a whole number from %d to %d", v, lo, hi)
	}
	return n
}

// sources parses a non-empty list of distinct BackupSources and returns it in their order.
func (l *loader) sources(name string) []string {
	var out []string
	given := l.list(name)
	for _, s := range given {
		if !slices.Contains(BackupSources, s) {
			l.fail(name, "unknown source %q; use a comma-separated list of %s", s, strings.Join(BackupSources, ", "))
		}
	}
	for _, s := range BackupSources {
		if slices.Contains(given, s) {
			out = append(out, s)
		}
	}
	if len(given) == 0 {
		l.fail(name, "must name at least one of %s", strings.Join(BackupSources, ", "))
	}
	return out
}

// flagSecret is secret (not required), except that NAME_FILE given as a flag wins over NAME set in the
// environment or the .env file: the command line overrides them.
func (l *loader) flagSecret(name string) Secret {
	if _, ok := l.src.Flags[name+"_FILE"]; !ok {
		return l.secret(name, false)
	}
	fl := &loader{src: Sources{Flags: l.src.Flags, Env: func(string) (string, bool) { return "", false }, ReadFile: l.src.ReadFile},
		file: map[string]string{}}
	s := fl.secret(name, false)
	l.problems = append(l.problems, fl.problems...)
	return s
}
