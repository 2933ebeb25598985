package backup

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/progress"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/redact"
)

// PostgresTarget restores a pg_dump custom-format archive into a database (Keycloak's). The archive never runs
// with a superuser's rights: what it may do is bounded by the privileges of the role that restores it (COPY ...
// FROM PROGRAM, COPY to files, untrusted languages, ALTER SYSTEM and the like need a superuser or a role granted
// them, and are refused), whatever the archive holds; nothing scans it.
//
//   - Connected as the database's owner (not a superuser): pg_restore --clean --if-exists --no-owner
//     --no-privileges --single-transaction between stopping and starting the service; a failure rolls back and leaves the database as it was.
//   - Connected as a superuser (the stacks' PostgreSQL, whose only user is Keycloak's): the archive is restored,
//     while Keycloak still runs, into a new database <db>_zb_restore owned by a temporary role with no privilege
//     (NOSUPERUSER NOCREATEDB NOCREATEROLE, a random password, created and dropped here), without owners or
//     grants from the archive. Then the service is stopped and, in one transaction, the database is renamed
//     <db>_before_restore_<set> (kept, like FileTarget's replaced file) and the new one takes its name and owner;
//     its objects are given to that owner, the temporary role dropped, and the service started. A restore killed
//     at any point leaves either database whole under the name; Recover drops what it left beside it.
type PostgresTarget struct {
	SourceName string
	DB         Postgres
	Service    Service
}

func (t *PostgresTarget) Source() string { return t.SourceName }

func (t *PostgresTarget) String() string {
	return fmt.Sprintf("database %s, server %s", t.DB, t.Service)
}

// Check lists the archive with pg_restore and checks that the database answers and that the configured user can
// restore it: a superuser, or the database's owner.
func (t *PostgresTarget) Check(ctx context.Context, path string) error {
	if err := checkFormat(ctx, "pg_dump-custom", path); err != nil {
		return err
	}
	if err := pgRestore(ctx, t.DB, "--list", path); err != nil {
		return err
	}
	_, err := t.superuser(ctx)
	return err
}

// superuser reports whether the configured user is a superuser; if it is not, it must own the database.
func (t *PostgresTarget) superuser(ctx context.Context) (bool, error) {
	out, err := t.DB.Query(ctx, "SELECT r.rolsuper, pg_get_userbyid(d.datdba) = current_user FROM pg_roles r, pg_database d WHERE r.rolname = current_user AND d.datname = current_database()")
	if err != nil {
		return false, err
	}
	switch out {
	case "t|t", "t|f":
		return true, nil
	case "f|t":
		return false, nil
	}
	return false, fmt.Errorf("%s: the user %s is neither a superuser nor the owner of database %s: restore as its owner (KEYCLOAK_DB_USER)", t.DB, t.DB.User, t.DB.Database)
}

// Restore restores the archive at path (see PostgresTarget).
func (t *PostgresTarget) Restore(ctx context.Context, path, set string) error {
	super, err := t.superuser(ctx)
	if err != nil {
		return err
	}
	if super {
		return t.restoreAside(ctx, path, set)
	}
	progress.Report(ctx, progress.Event{Stage: progress.Stop, Detail: t.Service.String()})
	if err := t.Service.Stop(ctx); err != nil {
		return fmt.Errorf("stop %s (nothing was changed): %w", t.Service, err)
	}
	crashPoint("after-stop")
	progress.Report(ctx, progress.Event{Stage: progress.Restore, Detail: "pg_restore into " + t.DB.Database})
	rerr := pgRestore(ctx, t.DB, "--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error", "--no-password",
		"--dbname="+t.DB.Database, path)
	if rerr != nil {
		rerr = fmt.Errorf("pg_restore into %s (rolled back: the database is as it was): %w", t.DB, rerr)
	}
	crashPoint("before-start")
	if err := startAgain(ctx, t.Service); err != nil {
		return errors.Join(rerr, fmt.Errorf("start %s: %w", t.Service, err))
	}
	return rerr
}

// restoreRolePrefix names the temporary roles that restore archives.
const restoreRolePrefix = "zb_restore_"

func (t *PostgresTarget) restoreAside(ctx context.Context, path, set string) error {
	if _, err := t.Recover(ctx); err != nil { // a previous restore's leftovers, if any
		return err
	}
	db := t.DB.Database
	fresh, kept := db+"_zb_restore", db+"_before_restore_"+strings.ToLower(strings.ReplaceAll(set, "-", "_"))
	admin := t.DB
	admin.Database = "postgres"
	owner, err := t.DB.Query(ctx, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()")
	if err != nil {
		return err
	}
	role, pw := restoreRolePrefix+randHex(6), randHex(24)
	cleanup := func() error {
		_, err := admin.exec(context.WithoutCancel(ctx), fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE);\nDROP ROLE IF EXISTS %s;", ident(fresh), ident(role)))
		return err
	}
	// The password goes to the server as a SCRAM verifier, on stdin: never in an argument or a server log.
	if _, err := admin.exec(ctx, fmt.Sprintf("CREATE ROLE %s LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD %s;",
		ident(role), literal(scramVerifier(pw)))); err != nil {
		return fmt.Errorf("create the role that restores the archive (nothing was changed): %w", err)
	}
	if _, err := admin.exec(ctx, fmt.Sprintf("CREATE DATABASE %s OWNER %s;", ident(fresh), ident(role))); err != nil {
		return errors.Join(fmt.Errorf("create database %s (nothing was changed): %w", fresh, err), cleanup())
	}
	restorer := t.DB
	restorer.User, restorer.Password, restorer.Database = role, redact.NewSecret(pw), fresh
	crashPoint("mid-restore")
	progress.Report(ctx, progress.Event{Stage: progress.Restore, Detail: "pg_restore into " + fresh})
	if err := pgRestore(ctx, restorer, "--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error", "--no-password",
		"--dbname="+fresh, path); err != nil {
		return errors.Join(fmt.Errorf("pg_restore as the unprivileged role %s into a new database (dropped; %s is as it was): %w", role, t.DB, err), cleanup())
	}
	progress.Report(ctx, progress.Event{Stage: progress.Stop, Detail: t.Service.String()})
	if err := t.Service.Stop(ctx); err != nil {
		return errors.Join(fmt.Errorf("stop %s (nothing was changed): %w", t.Service, err), cleanup())
	}
	crashPoint("after-stop")
	progress.Report(ctx, progress.Event{Stage: progress.Swap, Detail: db})
	swap := fmt.Sprintf(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname IN (%s, %s) AND pid <> pg_backend_pid();
DROP DATABASE IF EXISTS %s;
BEGIN;
ALTER DATABASE %s RENAME TO %s;
ALTER DATABASE %s RENAME TO %s;
ALTER DATABASE %s OWNER TO %s;
COMMIT;`, literal(db), literal(fresh), ident(kept), ident(db), ident(kept), ident(fresh), ident(db), ident(db), ident(owner))
	if _, err := admin.exec(ctx, swap); err != nil {
		err = fmt.Errorf("put the restored database in place of %s (rolled back: %s is as it was): %w", db, db, err)
		return errors.Join(err, cleanup(), startAgain(ctx, t.Service))
	}
	crashPoint("before-start")
	_, ferr := t.Recover(ctx) // the restored objects to the owner, the role dropped
	if err := startAgain(ctx, t.Service); err != nil {
		return errors.Join(fmt.Errorf("%s restored, but %s did not start: %w; the replaced database is %s", db, t.Service, err, kept), ferr)
	}
	return ferr
}

// Recover drops what an interrupted restore left beside the database (a half-restored <db>_zb_restore) and gives
// what the temporary roles own in the database to its owner, then drops them. Only a superuser can; for an owner
// there is nothing to recover (its restore is one transaction).
func (t *PostgresTarget) Recover(ctx context.Context) (string, error) {
	super, err := t.superuser(ctx)
	if err != nil || !super {
		return "", err
	}
	admin := t.DB
	admin.Database = "postgres"
	roles, err := admin.exec(ctx, "SELECT rolname FROM pg_roles WHERE rolname LIKE '"+restoreRolePrefix+"%';")
	if err != nil {
		return "", err
	}
	fresh := t.DB.Database + "_zb_restore"
	left, err := admin.exec(ctx, "SELECT datname FROM pg_database WHERE datname = "+literal(fresh)+";")
	if err != nil {
		return "", err
	}
	if roles == "" && left == "" {
		return "", nil
	}
	var sql strings.Builder
	if left != "" {
		fmt.Fprintf(&sql, "DROP DATABASE %s WITH (FORCE);\n", ident(fresh))
	}
	owner, err := t.DB.Query(ctx, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()")
	if err != nil {
		return "", err
	}
	var reassign strings.Builder
	for _, r := range strings.Fields(roles) {
		fmt.Fprintf(&reassign, "REASSIGN OWNED BY %s TO %s;\n", ident(r), ident(owner))
		fmt.Fprintf(&sql, "DROP ROLE %s;\n", ident(r))
	}
	if reassign.Len() > 0 {
		if _, err := t.DB.exec(ctx, reassign.String()); err != nil {
			return "", err
		}
	}
	if _, err := admin.exec(ctx, sql.String()); err != nil {
		return "", err
	}
	return fmt.Sprintf("removed what an interrupted restore left (%s)", strings.TrimSpace(strings.ReplaceAll(left+" "+roles, "\n", " "))), nil
}

// exec runs SQL read from stdin (never an argument: it may hold a password verifier) and returns the output.
func (p Postgres) exec(ctx context.Context, sql string) (string, error) {
	cmd := p.command(ctx, "psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-")
	cmd.Stdin = strings.NewReader(sql)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("psql on %s: %w: %s", p, err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// ident quotes a PostgreSQL identifier.
func ident(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// literal quotes a PostgreSQL string literal.
func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// scramVerifier is the SCRAM-SHA-256 verifier PostgreSQL stores for password pw (RFC 5802, RFC 7677).
func scramVerifier(pw string) string {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	const iterations = 4096
	salted, _ := pbkdf2.Key(sha256.New, pw, salt, iterations, 32)
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	stored := sha256.Sum256(mac(salted, "Client Key"))
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, b64(salt), b64(stored[:]), b64(mac(salted, "Server Key")))
}
