package backup_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/backup"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/redact"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
)

// dumpTo writes a pg_dump custom-format archive of db to a file and returns its path.
func dumpTo(t *testing.T, db backup.Postgres, dir string) string {
	t.Helper()
	snap, err := (&backup.PostgresSource{SourceName: "keycloak", DB: db}).Snapshot(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, db.Database+".pgdump")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, snap.R); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(snap.Close(), f.Close()); err != nil {
		t.Fatal(err)
	}
	return path
}

// A restore through a superuser's connection (the stacks' PostgreSQL) runs the archive as a role without
// privileges: a planted archive whose index runs COPY ... FROM PROGRAM is refused by PostgreSQL itself (no
// program runs, the database is as it was, nothing is left beside it), while an ordinary archive restores, the
// replaced database kept.
func TestPostgresRestoreRunsUnprivileged(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster")
	}
	pg := startPostgres(t, &testbed.Info{})
	pg.exec(t, "CREATE TABLE realm (name text); INSERT INTO realm VALUES ('at backup time')")
	dir := tempDir(t, "dump")
	good := dumpTo(t, pg.db, dir)
	pg.exec(t, "INSERT INTO realm VALUES ('after the backup')")

	// The planted archive: restoring its rows evaluates their CHECK, f, which runs a program (as the server's OS user).
	marker := filepath.Join(tempDir(t, "marker"), "pwned")
	_ = os.Chmod(filepath.Dir(marker), 0o777)
	evil := pg.db
	evil.Database = "evil"
	pg.exec(t, "CREATE DATABASE evil")
	if _, err := evil.Query(context.Background(), `CREATE TABLE sink (line text);
CREATE FUNCTION f(int) RETURNS bool LANGUAGE plpgsql VOLATILE AS $$ BEGIN EXECUTE 'COPY public.sink FROM PROGRAM ''touch `+marker+`'''; RETURN true; END $$;
CREATE TABLE victim (x int CHECK (public.f(x))); INSERT INTO victim VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("the planted function does not run its program even as a superuser (%v): the test proves nothing", err)
	}
	_ = os.Remove(marker)
	planted := dumpTo(t, evil, dir)

	tg := &backup.PostgresTarget{SourceName: "keycloak", DB: pg.db, Service: backup.Stopped{Name: "Keycloak"}}
	ctx := context.Background()
	if err := tg.Check(ctx, planted); err != nil {
		t.Fatal(err)
	}
	err := tg.Restore(ctx, planted, "20261126T033700Z-1a2b")
	if err == nil || !strings.Contains(err.Error(), "must be superuser or have privileges of the pg_execute_server_program role") {
		t.Fatalf("restore of the planted archive: %v; want PostgreSQL's refusal of the program", err)
	}
	t.Logf("the planted archive, refused: %v", err)
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the planted program ran: %s exists", marker)
	}
	if got := pg.exec(t, "SELECT string_agg(name, ',' ORDER BY name) FROM realm"); got != "after the backup,at backup time" {
		t.Fatalf("the database after the refused restore: %q", got)
	}
	checkNothingLeft(t, pg)

	// Connected as the database's owner (no superuser): the same archive is refused by the same privilege check.
	pg.exec(t, "CREATE ROLE kcowner LOGIN PASSWORD 'owner-pw'")
	pg.exec(t, "CREATE DATABASE kcown OWNER kcowner")
	owned := backup.Postgres{BinDir: pg.db.BinDir, Host: pg.db.Host, Port: pg.db.Port, User: "kcowner", Password: redact.NewSecret("owner-pw"), Database: "kcown"}
	if _, err := owned.Query(ctx, "CREATE TABLE realm (name text); INSERT INTO realm VALUES ('owned')"); err != nil {
		t.Fatal(err)
	}
	ot := &backup.PostgresTarget{SourceName: "keycloak", DB: owned, Service: backup.Stopped{Name: "Keycloak"}}
	if err := ot.Restore(ctx, planted, "20261126T033700Z-1a2b"); err == nil || !strings.Contains(err.Error(), "pg_execute_server_program") {
		t.Fatalf("restore of the planted archive as the owner: %v; want PostgreSQL's refusal of the program", err)
	}
	if got, err := owned.Query(ctx, "SELECT string_agg(name, ',') FROM realm"); err != nil || got != "owned" {
		t.Fatalf("the owner's database after the refused restore: %q, %v", got, err)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the planted program ran: %s exists", marker)
	}

	if err := tg.Restore(ctx, good, "20261126T033700Z-1a2b"); err != nil {
		t.Fatal(err)
	}
	if got := pg.exec(t, "SELECT string_agg(name, ',') FROM realm"); got != "at backup time" {
		t.Fatalf("restored: %q", got)
	}
	if got := pg.exec(t, "SELECT tableowner FROM pg_tables WHERE tablename = 'realm'"); got != pg.db.User {
		t.Fatalf("restored table owned by %q, want %s (the database's owner)", got, pg.db.User)
	}
	if got := pg.exec(t, "SELECT datname FROM pg_database WHERE datname LIKE 'keycloak_before_restore_%'"); got != "keycloak_before_restore_20261126t033700z_1a2b" {
		t.Fatalf("kept database: %q", got)
	}
	checkNothingLeft(t, pg)
}

func checkNothingLeft(t *testing.T, pg *privPostgres) {
	t.Helper()
	if got := pg.exec(t, "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'zb_restore_%'"); got != "0" {
		t.Errorf("%s temporary roles left", got)
	}
	if got := pg.exec(t, "SELECT count(*) FROM pg_database WHERE datname = 'keycloak_zb_restore'"); got != "0" {
		t.Errorf("the half-restored database was left")
	}
}

// A Postgres restore killed (SIGKILL, in a child process) at each step leaves Keycloak's database whole, and
// Recover removes what it left: the old data before the swap, the restored data after it.
func TestPostgresRestoreKilledAtEachStep(t *testing.T) {
	if env := os.Getenv("ZB_TEST_PG"); env != "" { // the child
		var c pgChild
		if err := json.Unmarshal([]byte(env), &c); err != nil {
			panic(err)
		}
		db := backup.Postgres{BinDir: c.BinDir, Host: c.Host, Port: c.Port, User: c.User, Password: redact.NewSecret(c.PW), Database: c.Database}
		tg := &backup.PostgresTarget{SourceName: "keycloak", DB: db, Service: backup.Stopped{Name: "Keycloak"}}
		_ = tg.Restore(context.Background(), c.Dump, "20261126T033700Z-1a2b")
		os.Exit(0)
	}
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster")
	}
	pg := startPostgres(t, &testbed.Info{})
	pg.exec(t, "CREATE TABLE realm (name text); INSERT INTO realm VALUES ('old')")
	dump := dumpTo(t, pg.db, tempDir(t, "dump"))
	for _, step := range []string{"mid-restore", "after-stop", "before-start"} {
		t.Run(step, func(t *testing.T) {
			pg.exec(t, "TRUNCATE realm; INSERT INTO realm VALUES ('current')")
			env, _ := json.Marshal(pgChild{BinDir: pg.db.BinDir, Host: pg.db.Host, Port: pg.db.Port, User: pg.db.User, PW: pg.db.Password.Value(),
				Database: pg.db.Database, Dump: dump})
			cmd := exec.Command(os.Args[0], "-test.run=^TestPostgresRestoreKilledAtEachStep$")
			cmd.Env = append(os.Environ(), "ZB_TEST_PG="+string(env), backup.CrashEnv+"="+step)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child: %v; want it killed at %s\n%s", err, step, out)
			}
			tg := &backup.PostgresTarget{SourceName: "keycloak", DB: pg.db, Service: backup.Stopped{Name: "Keycloak"}}
			if _, err := tg.Recover(context.Background()); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"mid-restore": "current", "after-stop": "current", "before-start": "old"}[step]
			if got := pg.exec(t, "SELECT string_agg(name, ',') FROM realm"); got != want {
				t.Fatalf("after the kill and recovery: %q, want %q", got, want)
			}
			checkNothingLeft(t, pg)
		})
	}
}

// pgChild is what the child of TestPostgresRestoreKilledAtEachStep restores, and into what.
type pgChild struct {
	BinDir, Host, User, PW, Database, Dump string
	Port                                   int
}
