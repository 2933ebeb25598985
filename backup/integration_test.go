package backup_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/ziti-bootstrap/ziti-bootstrap/backup"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/keycloak"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/redact"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spire"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
)

const td = "spiffe://zb-backup.test"

// servers are one test's private SPIRE server, PostgreSQL, Keycloak (its data in that PostgreSQL's keycloak
// database) and Ziti quickstart, and a bucket on the test bed's S3 server. kcSvc is how the restore stops and
// starts Keycloak: its process, counted.
type servers struct {
	spire    *privSpire
	pg       *privPostgres
	keycloak *privKeycloak
	kcSvc    *counted
	ziti     *privZiti
	store    backup.Store
	key      *backup.Key
	log      *slog.Logger
}

func startServers(t *testing.T) *servers {
	in := testbed.Require(t, "s3")
	for _, s := range []string{"spire", "ziti", "postgres"} {
		testbed.Require(t, s) // the binaries the test bed built
	}
	s := &servers{key: newKey(t), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if testing.Verbose() {
		s.log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	s.store, _ = s3Bucket(t)
	start := time.Now()
	parallel(t,
		func(t testing.TB) { s.spire = startSpire(t, in) },
		func(t testing.TB) {
			s.pg = startPostgres(t, in)
			s.keycloak = startKeycloak(t, s.pg)
		},
		func(t testing.TB) { s.ziti = startZiti(t, in) },
	)
	s.kcSvc = &counted{Service: s.keycloak.svc}
	t.Logf("private SPIRE, PostgreSQL, Keycloak and Ziti started in %s", time.Since(start).Round(time.Second))
	return s
}

func (s *servers) backup(t *testing.T) *backup.Manifest {
	t.Helper()
	b := &backup.Backup{Store: s.store, Prefix: "zb/", Key: s.key, TempDir: t.TempDir(), Tool: "test", Log: s.log,
		Sources: []backup.Source{
			&backup.ZitiSource{Controller: s.ziti, DBPath: s.ziti.dbPath},
			&backup.SQLiteSource{SourceName: "spire", Path: s.spire.datastore, VersionQuery: backup.SpireVersionQuery, VersionPrefix: "spire "},
			&backup.PostgresSource{SourceName: "keycloak", DB: s.pg.db},
		}}
	m, err := b.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// restorer restores into the servers; Keycloak is stopped and started with kc.
func (s *servers) restorer(t *testing.T, kc backup.Service) *backup.Restore {
	return &backup.Restore{Store: s.store, Prefix: "zb", Key: s.key, TempDir: t.TempDir(), Log: s.log, Targets: []backup.Target{
		&backup.PostgresTarget{SourceName: "keycloak", DB: s.pg.db, Service: kc},
		&backup.FileTarget{SourceName: "spire", Path: s.spire.datastore, Format: "sqlite3", Sidecars: backup.SQLiteSidecars, Service: s.spire.svc},
		&backup.FileTarget{SourceName: "ziti", Path: s.ziti.dbPath, Format: "bbolt", Service: s.ziti},
	}}
}

// state is what the servers list through their APIs, in a canonical form.
type state struct{ spire, ziti, pg string }

func (s *servers) state(t *testing.T) state {
	t.Helper()
	ctx := context.Background()
	entries, err := s.spire.client.ListEntries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var es []string
	for _, e := range entries {
		spire.SortSelectors(e.Selectors)
		sort.Strings(e.DNSNames)
		es = append(es, fmt.Sprintf("%s %s parent=%s sel=%v dns=%v ttl=%d admin=%v hint=%s", e.ID, e.SpiffeID, e.ParentID, e.Selectors, e.DNSNames, e.X509SVIDTTL, e.Admin, e.Hint))
	}
	sort.Strings(es)
	ids, err := s.ziti.c().ListIdentities(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var is []string
	for _, i := range ids {
		sort.Strings(i.RoleAttributes)
		is = append(is, fmt.Sprintf("%s %s ext=%s roles=%v admin=%v policy=%s", i.ID, i.Name, i.ExternalID, i.RoleAttributes, i.IsAdmin, i.AuthPolicyID))
	}
	sort.Strings(is)
	pg := s.pg.exec(t, `SELECT coalesce(string_agg(u.id || ':' || u.name || ':' || u.email || ':' || coalesce(r.roles, ''), E'\n' ORDER BY u.id), '')
		FROM realm_user u LEFT JOIN (SELECT user_id, string_agg(role, '+' ORDER BY role) AS roles FROM user_role GROUP BY user_id) r ON r.user_id = u.id`)
	return state{spire: strings.Join(es, "\n"), ziti: strings.Join(is, "\n"), pg: pg}
}

func entry(i int) spire.Entry {
	return spire.Entry{ID: fmt.Sprintf("zb-bk-%03d", i), SpiffeID: fmt.Sprintf("%s/wl/%d", td, i), ParentID: td + "/node",
		Selectors: []spire.Selector{{Type: "unix", Value: "uid:" + strconv.Itoa(1000+i)}}, DNSNames: []string{fmt.Sprintf("wl%d.example.org", i)}}
}

func createEntries(t *testing.T, c *spire.Client, es ...spire.Entry) {
	t.Helper()
	for i, err := range c.BatchCreate(context.Background(), es) {
		if err != nil {
			t.Fatalf("create entry %s: %v", es[i].ID, err)
		}
	}
}

func createIdentity(t *testing.T, c *ziti.Client, name string, roles ...string) string {
	t.Helper()
	id, err := c.CreateIdentity(context.Background(), ziti.Identity{Name: name, ExternalID: name + "@example.org", RoleAttributes: roles})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// fileID identifies a file's content and inode, to show it was not touched.
// fileID identifies a live database file the way a restore would change it: restore puts a new file in place
// (a new inode) and keeps the old one as <file>.before-restore-<set>. The content and mtime are not part of it:
// the running server itself writes to its database at any time (e.g. when its router reconnects).
func fileID(t *testing.T, path string) string {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	kept, _ := filepath.Glob(path + ".before-restore-*")
	return fmt.Sprintf("inode=%d kept=%v", st.Sys().(*syscall.Stat_t).Ino, kept)
}

// TestRealServers runs against private SPIRE, PostgreSQL, Keycloak and Ziti servers and the test bed's S3 server:
// a round trip through backup and restore (Keycloak stopped while its database is restored, then started again:
// its users are those of backup time), refusals of damaged sets that change nothing, and a backup taken while the
// servers are being written to. Besides Keycloak's own tables, its database holds tables and rows the test writes.
func TestRealServers(t *testing.T) {
	s := startServers(t)
	ctx := context.Background()
	var set *backup.Manifest

	t.Run("RoundTrip", func(t *testing.T) {
		for i := 1; i <= 6; i++ {
			createEntries(t, s.spire.client, entry(i))
		}
		zc := s.ziti.c()
		ids := map[string]string{}
		for i := 1; i <= 4; i++ {
			n := fmt.Sprintf("bk-user-%d", i)
			ids[n] = createIdentity(t, zc, n, "staff", fmt.Sprintf("team-%d", i%2))
		}
		kc := s.keycloak.client(t)
		if err := kc.CreateRealm(ctx, keycloak.Realm{Name: kcRealm, Enabled: true}); err != nil {
			t.Fatal(err)
		}
		kcIDs := map[string]string{}
		for _, n := range []string{"kc-user-1", "kc-user-2"} {
			kcIDs[n] = createKeycloakUser(t, kc, n)
		}
		s.pg.exec(t, `CREATE TABLE realm_user (id int PRIMARY KEY, name text NOT NULL, email text UNIQUE NOT NULL);
			CREATE TABLE user_role (user_id int REFERENCES realm_user(id) ON DELETE CASCADE, role text, PRIMARY KEY (user_id, role));
			INSERT INTO realm_user SELECT i, 'user' || i, 'user' || i || '@example.org' FROM generate_series(1, 5) i;
			INSERT INTO user_role SELECT i, r FROM generate_series(1, 5) i, unnest(ARRAY['admin', 'viewer']) r WHERE i % 2 = 1 OR r = 'viewer'`)
		want := s.state(t)

		set = s.backup(t)
		t.Logf("set %s: %d bytes stored", set.Set, set.Size())
		for _, o := range set.Objects {
			t.Logf("  %-8s %-22s %-15s %8d bytes (raw %8d) %s", o.Source, o.Key, o.Format, o.Size, o.RawSize, o.ServerVersion)
			if o.ServerVersion == "" {
				t.Errorf("%s: no server version", o.Source)
			}
		}

		// change and delete things
		for i, err := range s.spire.client.BatchDelete(ctx, []string{entry(2).ID, entry(5).ID}) {
			if err != nil {
				t.Fatalf("delete entry %d: %v", i, err)
			}
		}
		e3 := entry(3)
		e3.DNSNames = []string{"changed.example.org"}
		if errs := s.spire.client.BatchUpdate(ctx, []spire.Entry{e3}); errs[0] != nil {
			t.Fatal(errs[0])
		}
		createEntries(t, s.spire.client, entry(7), entry(8))
		for _, n := range []string{"bk-user-1", "bk-user-3"} {
			if err := zc.DeleteIdentity(ctx, ids[n]); err != nil {
				t.Fatal(err)
			}
		}
		if err := zc.UpdateIdentity(ctx, ids["bk-user-2"], ziti.Identity{Name: "bk-user-2-renamed", RoleAttributes: []string{"other"}}); err != nil {
			t.Fatal(err)
		}
		createIdentity(t, zc, "bk-user-9")
		createKeycloakUser(t, kc, "kc-user-3")
		if err := kc.DeleteUser(ctx, kcRealm, kcIDs["kc-user-1"]); err != nil {
			t.Fatal(err)
		}
		s.pg.exec(t, `DELETE FROM realm_user WHERE id IN (2, 4); UPDATE realm_user SET email = 'changed@example.org' WHERE id = 1;
			INSERT INTO realm_user VALUES (9, 'user9', 'user9@example.org'); INSERT INTO user_role VALUES (9, 'admin')`)
		changed := s.state(t)
		if changed.spire == want.spire || changed.ziti == want.ziti || changed.pg == want.pg {
			t.Fatal("the changes did not change the servers' state")
		}

		kcPID := s.keycloak.svc.Current()
		p, err := s.restorer(t, s.kcSvc).Prepare(ctx, backup.Latest, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		for _, l := range p.Plan() {
			t.Log("plan: " + l)
		}
		start := time.Now()
		if done, err := p.Apply(ctx); err != nil || len(done) != 3 {
			t.Fatalf("apply: %v %v", done, err)
		}
		t.Logf("restored in %s", time.Since(start).Round(time.Millisecond))
		got := s.state(t)
		for _, c := range []struct{ name, got, want string }{{"SPIRE entries", got.spire, want.spire}, {"Ziti identities", got.ziti, want.ziti}, {"Keycloak database", got.pg, want.pg}} {
			if c.got != c.want {
				t.Errorf("%s after restore:\n%s\nwant (at backup time):\n%s", c.name, c.got, c.want)
			}
		}
		if s.kcSvc.stops != 1 || s.kcSvc.starts != 1 || s.keycloak.svc.Current() == kcPID {
			t.Errorf("Keycloak stopped %d and started %d times (PID %d, before %d); want once each, a new process", s.kcSvc.stops, s.kcSvc.starts,
				s.keycloak.svc.Current(), kcPID)
		}
		// Keycloak, started again on the restored database, has the users of backup time
		kc = s.keycloak.client(t)
		for _, n := range []string{"kc-user-1", "kc-user-2"} {
			if u, err := kc.GetUser(ctx, kcRealm, n); err != nil || u.Email != n+"@example.org" {
				t.Errorf("Keycloak user %s (there at backup time) after restore: %+v, %v", n, u, err)
			}
		}
		if u, err := kc.GetUser(ctx, kcRealm, "kc-user-3"); !keycloak.IsNotFound(err) {
			t.Errorf("Keycloak user kc-user-3 (created after the backup) after restore: %+v, %v; want not found", u, err)
		}
		for _, f := range []string{s.ziti.dbPath, s.spire.datastore} {
			if _, err := os.Stat(f + ".before-restore-" + set.Set); err != nil {
				t.Errorf("replaced file not kept: %v", err)
			}
		}
		// the servers take writes again
		createEntries(t, s.spire.client, entry(10))
		createIdentity(t, s.ziti.c(), "bk-after-restore")
		createKeycloakUser(t, kc, "kc-after-restore")
	})
	if set == nil {
		t.FailNow()
	}

	t.Run("DamagedObjectRefusedNothingChanged", func(t *testing.T) {
		obj := func(src string) string {
			o, _ := set.Object(src)
			return "zb/" + set.Set + "/" + o.Key
		}
		cases := []struct {
			name, key string
			edit      func([]byte) []byte
			want      string
		}{
			{"flipped byte", obj("spire"), func(b []byte) []byte { b[len(b)/2] ^= 0x04; return b }, "SHA-256"},
			{"truncated", obj("ziti"), func(b []byte) []byte { return b[:len(b)*2/3] }, "truncated"},
			{"missing", obj("keycloak"), nil, "missing"},
			{"no manifest", "zb/" + set.Set + "/manifest.json", nil, "incomplete"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				before := s.state(t)
				files := []string{fileID(t, s.ziti.dbPath), fileID(t, s.spire.datastore)}
				pids := []int{s.ziti.svc.Current(), s.spire.svc.Current(), s.keycloak.svc.Current()}
				stops, starts := s.kcSvc.stops, s.kcSvc.starts
				orig := get(t, s.store, c.key)
				if c.edit == nil {
					if err := s.store.Remove(ctx, c.key); err != nil {
						t.Fatal(err)
					}
				} else {
					put(t, s.store, c.key, c.edit(bytes.Clone(orig)))
				}
				defer put(t, s.store, c.key, orig)

				_, err := s.restorer(t, s.kcSvc).Prepare(ctx, set.Set, nil)
				if err == nil || !backup.IsCorrupt(err) || !strings.Contains(err.Error(), s.store.Where(c.key)) || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("restore of a set with a %s object: %v; want a refusal naming %s and %q", c.name, err, s.store.Where(c.key), c.want)
				}
				t.Logf("refused: %v", err)
				if after := s.state(t); after != before {
					t.Error("the servers' state changed")
				}
				if got := []string{fileID(t, s.ziti.dbPath), fileID(t, s.spire.datastore)}; !slices.Equal(got, files) {
					t.Error("a database file was touched")
				}
				if got := []int{s.ziti.svc.Current(), s.spire.svc.Current(), s.keycloak.svc.Current()}; !slices.Equal(got, pids) {
					t.Errorf("a server was restarted: PIDs %v, before %v", got, pids)
				}
				if s.kcSvc.stops != stops || s.kcSvc.starts != starts {
					t.Error("Keycloak was stopped or started")
				}
			})
		}
	})

	t.Run("BackupWhileWriting", func(t *testing.T) {
		s.pg.exec(t, `CREATE TABLE ledger (n int PRIMARY KEY); CREATE TABLE counter (n int NOT NULL); INSERT INTO counter VALUES (0)`)
		var stop atomic.Bool
		var wg sync.WaitGroup
		var spireN, zitiN, pgN atomic.Int64
		werr := make(chan error, 3)
		writer := func(n *atomic.Int64, write func(i int) error) {
			wg.Go(func() {
				for i := 1; !stop.Load(); i++ {
					if err := write(i); err != nil {
						werr <- err
						return
					}
					n.Store(int64(i))
				}
			})
		}
		writer(&spireN, func(i int) error {
			e := spire.Entry{ID: fmt.Sprintf("load-%05d", i), SpiffeID: fmt.Sprintf("%s/load/%d", td, i), ParentID: td + "/node",
				Selectors: []spire.Selector{{Type: "unix", Value: "uid:" + strconv.Itoa(i)}}}
			return s.spire.client.BatchCreate(ctx, []spire.Entry{e})[0]
		})
		zc := s.ziti.c()
		writer(&zitiN, func(i int) error {
			_, err := zc.CreateIdentity(ctx, ziti.Identity{Name: fmt.Sprintf("load-%05d", i)})
			return err
		})
		writer(&pgN, func(i int) error {
			_, err := s.pg.db.Query(ctx, fmt.Sprintf("BEGIN; INSERT INTO ledger VALUES (%d); UPDATE counter SET n = %d; COMMIT", i, i))
			return err
		})
		time.Sleep(2 * time.Second)
		m := s.backup(t) // waits out the controller's once-a-minute snapshot limit, writing all along
		time.Sleep(time.Second)
		stop.Store(true)
		wg.Wait()
		close(werr)
		for err := range werr {
			t.Fatalf("writer: %v", err)
		}
		t.Logf("written while backing up: %d SPIRE entries, %d Ziti identities, %d database transactions", spireN.Load(), zitiN.Load(), pgN.Load())

		// Keycloak is not needed any more: stopped here, it is not started again (one restart per run is enough).
		if err := s.keycloak.svc.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		p, err := s.restorer(t, backup.Stopped{Name: "Keycloak"}).Prepare(ctx, m.Set, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if _, err := p.Apply(ctx); err != nil {
			t.Fatal(err)
		}
		// Each server starts from a consistent copy: its writes form an unbroken prefix 1..k of the sequence.
		entries, err := s.spire.client.ListEntries(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var spireK []int
		for _, e := range entries {
			if n, ok := strings.CutPrefix(e.ID, "load-"); ok {
				i, _ := strconv.Atoi(n)
				spireK = append(spireK, i)
			}
		}
		checkPrefix(t, "SPIRE entries", spireK, spireN.Load())
		ids, err := s.ziti.c().ListIdentities(ctx, `name contains "load-"`)
		if err != nil {
			t.Fatal(err)
		}
		var zitiK []int
		for _, i := range ids {
			n, _ := strconv.Atoi(strings.TrimPrefix(i.Name, "load-"))
			zitiK = append(zitiK, n)
		}
		checkPrefix(t, "Ziti identities", zitiK, zitiN.Load())
		res := s.pg.exec(t, "SELECT count(*) || ' ' || coalesce(max(l.n), 0) || ' ' || (SELECT n FROM counter) FROM ledger l")
		var cnt, mx, ctr int
		fmt.Sscan(res, &cnt, &mx, &ctr)
		if cnt != mx || mx != ctr || int64(cnt) > pgN.Load() {
			t.Errorf("database: %d ledger rows, max %d, counter %d (of %d written): not one transaction-consistent state", cnt, mx, ctr, pgN.Load())
		}
		t.Logf("restored: %d of %d SPIRE entries, %d of %d Ziti identities, %d of %d transactions", len(spireK), spireN.Load(), len(zitiK), zitiN.Load(), cnt, pgN.Load())
		// and they accept writes
		createEntries(t, s.spire.client, entry(20))
		createIdentity(t, s.ziti.c(), "bk-after-load")
		s.pg.exec(t, "INSERT INTO ledger VALUES (1000000)")
	})
}

const kcRealm = "zb-backup"

func createKeycloakUser(t *testing.T, c *keycloak.Client, name string) string {
	t.Helper()
	id, err := c.CreateUser(context.Background(), kcRealm, keycloak.User{Username: name, Email: name + "@example.org", Enabled: true}, redact.Secret{})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// counted is a Service that counts its stops and starts; beforeStart, when set, runs before each start (when the
// target has put the snapshot in place and the server is stopped).
type counted struct {
	backup.Service
	stops, starts int
	beforeStart   func(ctx context.Context) error
}

func (c *counted) Stop(ctx context.Context) error { c.stops++; return c.Service.Stop(ctx) }

func (c *counted) Start(ctx context.Context) error {
	c.starts++
	if c.beforeStart != nil {
		if err := c.beforeStart(ctx); err != nil {
			return err
		}
	}
	return c.Service.Start(ctx)
}

// checkPrefix checks that got is exactly 1..k for some k ≤ max.
func checkPrefix(t *testing.T, what string, got []int, max int64) {
	t.Helper()
	sort.Ints(got)
	for i, n := range got {
		if n != i+1 {
			t.Errorf("%s: restored %v…: not the unbroken prefix of a consistent copy", what, got[:min(len(got), i+3)])
			return
		}
	}
	if int64(len(got)) > max {
		t.Errorf("%s: %d restored, but only %d were written", what, len(got), max)
	}
	if len(got) == 0 {
		t.Errorf("%s: none restored; the backup should have caught some writes", what)
	}
}

func get(t *testing.T, s backup.Store, key string) []byte {
	t.Helper()
	rc, _, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func put(t *testing.T, s backup.Store, key string, b []byte) {
	t.Helper()
	if _, err := s.Put(context.Background(), key, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
}

// TestSwarmServiceRestore restores a file whose server is a Swarm service of the test bed's Swarm, stopped and
// started through the Docker client (SwarmService): while the file is swapped the service has no task left
// running, and afterwards it is back at its replica count. A service that does not exist changes nothing.
func TestSwarmServiceRestore(t *testing.T) {
	in := testbed.Require(t, "docker")
	testbed.LockSwarmApply(t)
	c, err := docker.New(in.Docker.Host, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	name := "zb-bk-swarm-" + hexID(3)
	testbed.SleepService(t, c, name, 2)

	dir := t.TempDir()
	db, snap := filepath.Join(dir, "ctrl.db"), filepath.Join(dir, "snapshot")
	mustWrite(t, db, "state before the restore")
	mustWrite(t, snap, "state of the snapshot")

	t.Run("scaled to 0 while the file is swapped, then back", func(t *testing.T) {
		var atSwap string
		svc := &counted{Service: &backup.SwarmService{Scaler: c, Service: name}, beforeStart: func(ctx context.Context) error {
			b, _ := os.ReadFile(db)
			atSwap = fmt.Sprintf("file %q, %s", b, taskSummary(t, c, name))
			return nil
		}}
		target := &backup.FileTarget{SourceName: "ziti", Path: db, Format: "bbolt", Service: svc}
		if err := target.Restore(ctx, snap, "set-1"); err != nil {
			t.Fatal(err)
		}
		t.Logf("at the swap: %s", atSwap)
		if want := `file "state of the snapshot", 0 task(s) running`; !strings.HasPrefix(atSwap, want) {
			t.Errorf("at the swap: %s; want %s", atSwap, want)
		}
		if svc.stops != 1 || svc.starts != 1 {
			t.Errorf("stopped %d, started %d times; want once each", svc.stops, svc.starts)
		}
		if n, err := c.Replicas(ctx, name); err != nil || n != 2 {
			t.Errorf("replicas after the restore: %d, %v; want 2", n, err)
		}
		if got := taskSummary(t, c, name); !strings.HasPrefix(got, "2 task(s) running") {
			t.Errorf("after the restore: %s; want 2 running", got)
		}
		if b, _ := os.ReadFile(db + ".before-restore-set-1"); string(b) != "state before the restore" {
			t.Errorf("the replaced file is not kept: %q", b)
		}
	})

	t.Run("a service that does not exist changes nothing", func(t *testing.T) {
		before := fileID(t, db)
		missing := "zb-bk-no-such-service-" + hexID(3)
		target := &backup.FileTarget{SourceName: "ziti", Path: db, Format: "bbolt", Service: &backup.SwarmService{Scaler: c, Service: missing}}
		err := target.Restore(ctx, snap, "set-2")
		if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "nothing was changed") {
			t.Fatalf("restore with a missing Swarm service: %v; want an error naming it and saying nothing was changed", err)
		}
		t.Logf("refused: %v", err)
		if after := fileID(t, db); after != before {
			t.Errorf("the file was touched: %s, before %s", after, before)
		}
		if left, _ := filepath.Glob(db + ".zb-restore*"); len(left) > 0 {
			t.Errorf("left behind: %v", left)
		}
		if got := taskSummary(t, c, name); !strings.HasPrefix(got, "2 task(s) running") {
			t.Errorf("the other service was disturbed: %s", got)
		}
	})
}

// taskSummary says how many of the service's tasks run, and the states of all of them.
func taskSummary(t *testing.T, c *docker.Client, service string) string {
	t.Helper()
	tasks, err := c.Tasks(context.Background(), service)
	if err != nil {
		t.Fatal(err)
	}
	running := 0
	states := map[swarm.TaskState]int{}
	for _, k := range tasks {
		states[k.Status.State]++
		if k.Status.State == swarm.TaskStateRunning {
			running++
		}
	}
	return fmt.Sprintf("%d task(s) running (states %v)", running, states)
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
