package backup_test

// Private instances of the real servers for the round-trip tests: restoring the shared test bed's servers would
// disrupt other tests, so each test run starts its own SPIRE server, PostgreSQL cluster, Keycloak (on that
// PostgreSQL) and Ziti quickstart (the binaries the test bed built) on free ports in temporary directories, and
// stops them at the end.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/backup"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/keycloak"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/redact"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/s3store"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/s3store/s3test"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spire"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
)

func hexID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// tempDir is a short directory (unix socket paths are limited to 108 bytes), removed at the end.
func tempDir(t testing.TB, name string) string {
	t.Helper()
	d, err := os.MkdirTemp("", "zb-bk-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

// s3Bucket returns a Store on a new bucket of the test bed's S3 server, emptied and removed at the end.
func s3Bucket(t testing.TB) (backup.Store, *s3store.Client) {
	t.Helper()
	c := s3test.Client(t, "zb-backup-", nil)
	if _, err := c.EnsureBucket(context.Background()); err != nil {
		t.Fatal(err)
	}
	return backup.NewS3Store(c), c
}

// privSpire is a SPIRE server with an sqlite3 datastore.
type privSpire struct {
	dir, socket, datastore string
	svc                    *backup.ProcessService
	client                 *spire.Client
}

const privSpireConf = `server {
  bind_address = "127.0.0.1"
  bind_port = "{{port}}"
  socket_path = "{{dir}}/api.sock"
  trust_domain = "zb-backup.test"
  data_dir = "{{dir}}/data"
  log_level = "WARN"
}
plugins {
  DataStore "sql" {
    plugin_data {
      database_type = "sqlite3"
      connection_string = "{{dir}}/data/datastore.sqlite3"
    }
  }
  KeyManager "disk" {
    plugin_data { keys_path = "{{dir}}/data/keys.json" }
  }
  NodeAttestor "join_token" {
    plugin_data {}
  }
}
`

func startSpire(t testing.TB, in *testbed.Info) *privSpire {
	t.Helper()
	dir := tempDir(t, "spire")
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := strings.NewReplacer("{{dir}}", dir, "{{port}}", strconv.Itoa(testutil.FreePort(t))).Replace(privSpireConf)
	if err := os.WriteFile(filepath.Join(dir, "server.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &privSpire{dir: dir, socket: filepath.Join(dir, "api.sock"), datastore: filepath.Join(dir, "data", "datastore.sqlite3")}
	s.svc = &backup.ProcessService{Name: "private SPIRE server", Command: []string{in.Spire.ServerBin, "run", "-config", filepath.Join(dir, "server.conf")},
		Dir: dir, LogFile: filepath.Join(dir, "server.log"), Ready: s.healthy}
	runServer(t, s.svc, s.svc, s.svc.LogFile)
	c, err := spire.Dial(context.Background(), s.socket, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s.client = c
	return s
}

func (s *privSpire) healthy(ctx context.Context) error {
	c, err := spire.Dial(ctx, s.socket, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Healthy(ctx)
}

// privPostgres is a PostgreSQL cluster with a keycloak database.
type privPostgres struct {
	db  backup.Postgres
	pid int
}

func startPostgres(t testing.TB, in *testbed.Info) *privPostgres {
	t.Helper()
	pgUser, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("OS user postgres: %v", err)
	}
	uid, _ := strconv.Atoi(pgUser.Uid)
	gid, _ := strconv.Atoi(pgUser.Gid)
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	root := tempDir(t, "pg")
	if err := os.Chown(root, uid, gid); err != nil {
		t.Fatal(err)
	}
	pw := "Pw-" + hexID(8)
	pwfile := filepath.Join(root, "pw")
	if err := os.WriteFile(pwfile, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = os.Chown(pwfile, uid, gid)
	bin := in.Postgres.BinDir
	if bin == "" {
		bin = testbed.PostgresBinDir
	}
	data := filepath.Join(root, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "zb", "--pwfile", pwfile, "-A", "scram-sha-256", "-E", "UTF8")
	initdb.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v: %s", err, out)
	}
	port := testutil.FreePort(t)
	pg := exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(port), "-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories="+root)
	pg.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	pg.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setsid: true}
	logf, _ := os.Create(filepath.Join(root, "pg.log"))
	pg.Stdout, pg.Stderr = logf, logf
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = pg.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = pg.Process.Signal(syscall.SIGINT) // fast shutdown
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = pg.Process.Kill()
		}
	})
	p := &privPostgres{pid: pg.Process.Pid, db: backup.Postgres{BinDir: bin, Host: "127.0.0.1", Port: port, User: "zb",
		Password: redact.NewSecret(pw), Database: "postgres"}}
	err = wait.For(context.Background(), wait.Target{What: "private PostgreSQL", Where: strconv.Itoa(port), Deadline: time.Minute}, func(ctx context.Context) error {
		_, err := p.db.Query(ctx, "SELECT 1")
		return err
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, tailFile(filepath.Join(root, "pg.log")))
	}
	if _, err := p.db.Query(context.Background(), "CREATE DATABASE keycloak"); err != nil {
		t.Fatal(err)
	}
	p.db.Database = "keycloak"
	return p
}

func (p *privPostgres) exec(t testing.TB, sql string) string {
	t.Helper()
	out, err := p.db.Query(context.Background(), sql)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// privZiti is a Ziti quickstart (controller + router in one process). It is the backup.Service of its restore
// target: Start waits until the quickstart says its router is up, not only until the controller answers (a
// snapshot taken while the quickstart still enrols its router restores to a router it cannot start).
type privZiti struct {
	home, dbPath, log string
	opts              ziti.Options
	svc               *backup.ProcessService
	mu                sync.Mutex
	client            *ziti.Client
}

const zitiUp = "controller and router started."

func startZiti(t testing.TB, in *testbed.Info) *privZiti {
	t.Helper()
	root := tempDir(t, "ziti")
	home := filepath.Join(root, "home")
	ctrlPort, routerPort := testutil.FreePort(t), testutil.FreePort(t)
	pw := "Pw-" + hexID(8)
	u, _ := url.Parse(fmt.Sprintf("https://127.0.0.1:%d", ctrlPort))
	z := &privZiti{home: home, dbPath: filepath.Join(home, "db", "ctrl.db"), log: filepath.Join(root, "ziti.log"),
		opts: ziti.Options{URL: u, User: "admin", Password: redact.NewSecret(pw), CAFile: filepath.Join(home, "pki", "root-ca", "certs", "root-ca.cert")}}
	z.svc = &backup.ProcessService{Name: "private Ziti quickstart", Dir: root, LogFile: z.log,
		Command: []string{in.Ziti.Bin, "edge", "quickstart", "--home", home, "--ctrl-address", "127.0.0.1", "--router-address", "127.0.0.1",
			"--ctrl-port", strconv.Itoa(ctrlPort), "--router-port", strconv.Itoa(routerPort), "-p", pw},
		Ready: z.login, ReadyTimeout: 3 * time.Minute}
	runServer(t, z, z.svc, z.log)
	return z
}

func (z *privZiti) String() string                 { return z.svc.String() }
func (z *privZiti) Stop(ctx context.Context) error { return z.svc.Stop(ctx) }

// Start starts the quickstart and waits for its router.
func (z *privZiti) Start(ctx context.Context) error {
	before := z.upCount()
	if err := z.svc.Start(ctx); err != nil {
		return err
	}
	return wait.For(ctx, wait.Target{What: "the quickstart's router", Where: z.log, Deadline: 3 * time.Minute}, func(context.Context) error {
		if z.upCount() > before {
			return nil
		}
		if !processAlive(z.svc.Current()) {
			return wait.Permanent(fmt.Errorf("the quickstart exited"))
		}
		return fmt.Errorf("no %q in the log yet", zitiUp)
	})
}

func (z *privZiti) upCount() int {
	b, _ := os.ReadFile(z.log)
	return strings.Count(string(b), zitiUp)
}

func processAlive(pid int) bool { return pid > 0 && syscall.Kill(pid, 0) == nil }

// login makes a new admin session (after a restore the old one may be gone).
func (z *privZiti) login(ctx context.Context) error {
	if _, err := os.Stat(z.opts.CAFile); err != nil {
		return err
	}
	c, err := ziti.New(ctx, z.opts)
	if err != nil {
		return err
	}
	z.mu.Lock()
	z.client = c
	z.mu.Unlock()
	return nil
}

func (z *privZiti) c() *ziti.Client {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.client
}

// runServer starts a private server through svc and stops its process at the end of the test; the tail of its
// log is shown when it does not start, or when the test failed.
func runServer(t testing.TB, svc backup.Service, proc *backup.ProcessService, log string) {
	t.Helper()
	if err := svc.Start(context.Background()); err != nil {
		t.Fatalf("%v\n%s", err, tailFile(log))
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(tailFile(log))
		}
		_ = proc.Stop(context.Background())
	})
}

func tailFile(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return "--- " + path + " ---\n" + strings.Join(lines, "\n")
}

// privKeycloak is a Keycloak whose data is in the private PostgreSQL's keycloak database, the one the round trip
// restores: the restore stops it and starts it again (svc).
type privKeycloak struct {
	proc *testbed.KeycloakProcess
	svc  *backup.ProcessService
	log  string
}

func startKeycloak(t testing.TB, pg *privPostgres) *privKeycloak {
	t.Helper()
	dir := tempDir(t, "kc")
	db := testbed.PostgresInfo{Host: pg.db.Host, Port: pg.db.Port, User: pg.db.User, Password: pg.db.Password.Value(), Database: pg.db.Database}
	proc, err := testbed.PrepareKeycloak(context.Background(), dir, db, testutil.FreePort(t), testutil.FreePort(t), "512m")
	if err != nil {
		t.Fatal(err)
	}
	k := &privKeycloak{proc: proc, log: filepath.Join(dir, "keycloak.log")}
	k.svc = &backup.ProcessService{Name: "private Keycloak", Command: proc.Command, Env: proc.Env, Dir: dir, LogFile: k.log,
		Ready: proc.Ready, ReadyTimeout: 5 * time.Minute}
	runServer(t, k.svc, k.svc, k.log)
	return k
}

// client logs in to the Keycloak running now as its administrator.
func (k *privKeycloak) client(t testing.TB) *keycloak.Client {
	t.Helper()
	u, _ := url.Parse(k.proc.URL)
	c, err := keycloak.New(context.Background(), keycloak.Options{URL: u, AdminUser: k.proc.AdminUser, AdminPassword: redact.NewSecret(k.proc.AdminPassword)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// SnapshotDB and Ping make privZiti a backup.ZitiController that follows the client across restarts.
func (z *privZiti) SnapshotDB(ctx context.Context, path string) (string, error) {
	return z.c().SnapshotDB(ctx, path)
}

func (z *privZiti) Ping(ctx context.Context) (string, error) { return z.c().Ping(ctx) }

// goT lets a start helper run in its own goroutine: Fatal ends that goroutine and records the failure.
type goT struct {
	testing.TB
	mu  sync.Mutex
	err error
}

func (g *goT) Fatal(args ...any)                 { g.fail(fmt.Sprint(args...)) }
func (g *goT) Fatalf(format string, args ...any) { g.fail(fmt.Sprintf(format, args...)) }
func (g *goT) fail(s string) {
	g.mu.Lock()
	g.err = fmt.Errorf("%s", s)
	g.mu.Unlock()
	runtime.Goexit()
}

// parallel runs the start functions at once and fails t if any failed.
func parallel(t *testing.T, fns ...func(testing.TB)) {
	t.Helper()
	var wg sync.WaitGroup
	gs := make([]*goT, len(fns))
	for i, fn := range fns {
		gs[i] = &goT{TB: t}
		wg.Go(func() { fn(gs[i]) })
	}
	wg.Wait()
	for _, g := range gs {
		if g.err != nil {
			t.Fatal(g.err)
		}
	}
}
