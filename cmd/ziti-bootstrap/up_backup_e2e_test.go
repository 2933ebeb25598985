package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/backup"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/keycloak"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/s3store"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spire"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
)

// devBackup is the scheduled backup service of a devSystem: its sets go to the test bed's S3 server under a
// prefix of their own, encrypted with a key of the test's.
type devBackup struct {
	prefix string
	key    *backup.Key
	store  backup.Store
}

// backupEnv returns the .env lines that enable the backup service: a schedule, the test bed's S3 server as the
// services in the Swarm reach it (a forwarder on the Swarm's gateway to the host: the test bed's S3 listens on
// 127.0.0.1), a key, and the secrets in files.
func (d *devSystem) backupEnv(dir string) string {
	t := d.tb
	in := testbed.Require(t, "s3")
	gw := d.gateway
	ep, err := url.Parse(in.S3.Endpoint)
	testutil.Must(t, err)
	fwd := forward(t, net.JoinHostPort(gw, "0"), ep.Host)
	raw := make([]byte, 32)
	rand.Read(raw)
	keyText := base64.StdEncoding.EncodeToString(raw)
	key, err := backup.ParseKey(config.NewSecret(keyText))
	testutil.Must(t, err)
	keyFile, s3File := filepath.Join(dir, "backup.key"), filepath.Join(dir, "s3.secret")
	testutil.Must(t, os.WriteFile(keyFile, []byte(keyText+"\n"), 0o600))
	testutil.Must(t, os.WriteFile(s3File, []byte(in.S3.SecretKey+"\n"), 0o600))
	c, err := s3store.New(s3store.Options{Endpoint: ep, Region: in.S3.Region, Bucket: "ziti-bootstrap", AccessKey: in.S3.AccessKey,
		SecretKey: config.NewSecret(in.S3.SecretKey)})
	testutil.Must(t, err)
	d.backup = &devBackup{prefix: "e2e-" + strings.TrimSuffix(d.prefix, "-"), key: key, store: backup.NewS3Store(c)}
	t.Cleanup(func() {
		ctx := context.Background()
		objs, _ := d.backup.store.List(ctx, d.backup.prefix+"/")
		for _, o := range objs {
			d.backup.store.Remove(ctx, o.Key)
		}
	})
	return fmt.Sprintf("BACKUP_SCHEDULE=@every 20s\nBACKUP_PREFIX=%s\nBACKUP_ENCRYPTION_KEY_FILE=%s\nS3_ENDPOINT=http://%s\nS3_REGION=%s\n"+
		"S3_ACCESS_KEY_ID=%s\nS3_SECRET_ACCESS_KEY_FILE=%s\n", d.backup.prefix, keyFile, fwd, in.S3.Region, in.S3.AccessKey, s3File)
}

// gatewayIP is the address of this host on the Swarm's docker_gwbridge network: how a service's task reaches a
// server of the host.
func gatewayIP(t testing.TB) string {
	t.Helper()
	ifc, err := net.InterfaceByName("docker_gwbridge")
	testutil.Must(t, err)
	addrs, err := ifc.Addrs()
	testutil.Must(t, err)
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	t.Fatal("docker_gwbridge has no IPv4 address")
	return ""
}

// forward listens on listen and copies every connection to target until the test ends; it returns the address
// it listens on.
func forward(t testing.TB, listen, target string) string {
	t.Helper()
	l, err := net.Listen("tcp", listen)
	testutil.Must(t, err)
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	keep := func(c net.Conn) {
		mu.Lock()
		defer mu.Unlock()
		conns = append(conns, c)
	}
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close() // ends the copies
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			keep(c)
			go func() {
				defer c.Close()
				u, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				keep(u)
				defer u.Close()
				go io.Copy(u, c)
				io.Copy(c, u)
			}()
		}
	}()
	return l.Addr().String()
}

// backupRoundTrip: the scheduled backup service takes complete sets on its own; after changes to OpenZiti, SPIRE
// and Keycloak, `restore SET --yes --swarm`, run inside the backup service's container (where the volumes are),
// scales Keycloak, the controller and the SPIRE server to 0, puts their databases back and scales them up again;
// they answer with exactly the state of the set (the changes are gone), and the bootstrap job run again finds
// nothing to do.
func (d *devSystem) backupRoundTrip() {
	t := d.tb
	t.Helper()
	ctx := testutil.Context(t, 8*time.Minute)
	lister := &backup.Lister{Store: d.backup.store, Prefix: d.backup.prefix, Key: d.backup.key}
	var set backup.SetInfo
	// The workload that enrolled (workloadIdentity) matches the policy file's identity rule: its attributes are
	// the converge service's to add, at a time of its own. Converge now, so that the set is of a converged state
	// and the bootstrap after the restore has nothing to write.
	d.run("up --dev --rerun-bootstrap before the backup", d.up("--rerun-bootstrap")...)
	t0 := time.Now()
	err := wait.For(ctx, wait.Target{What: "a complete snapshot set from the scheduled backup service", Where: d.backup.prefix,
		Deadline: 3 * time.Minute, Initial: 2 * time.Second, Max: 5 * time.Second}, func(ctx context.Context) error {
		sets, err := lister.List(ctx, time.Now())
		if err != nil {
			return err
		}
		// a set started after up returned (the bootstrap job done): one taken during up may predate its writes
		for _, s := range sets {
			if s.State == backup.Complete && s.Started.After(t0) {
				set = s
				return nil
			}
		}
		return fmt.Errorf("%d set(s), none complete and started after up", len(sets))
	})
	testutil.Must(t, err)
	var objs []string
	for _, o := range set.Manifest.Objects {
		objs = append(objs, o.Source)
	}
	slices.Sort(objs)
	if strings.Join(objs, " ") != "keycloak spire ziti" {
		t.Fatalf("set %s holds %v, want keycloak, spire and ziti", set.ID, objs)
	}
	t.Logf("scheduled backup: set %s complete (%d bytes, encrypted) %s after up", set.ID, set.Size, time.Since(t0).Round(time.Second))
	if !set.Authenticated {
		t.Errorf("set %s is not authenticated with the service's key", set.ID)
	}

	// changes after the backup: an OpenZiti identity, a SPIRE entry
	z := d.zitiAdmin(ctx)
	extra := "after-backup-" + testutil.RandHex(t, 3)
	_, err = z.CreateIdentity(ctx, ziti.Identity{Name: extra})
	testutil.Must(t, err)
	sp := d.spireAdmin(ctx)
	defer sp.Close()
	entry := spire.Entry{ID: "zb-e2e-" + testutil.RandHex(t, 4), SpiffeID: "spiffe://openziti.local/e2e/after-backup",
		ParentID: "spiffe://openziti.local/e2e", Selectors: []spire.Selector{{Type: "unix", Value: "uid:4242"}}}
	for _, err := range sp.BatchCreate(ctx, []spire.Entry{entry}) {
		testutil.Must(t, err)
	}
	kc := d.keycloakAdmin(ctx)
	kcUser := "after-backup-" + testutil.RandHex(t, 3)
	_, err = kc.CreateUser(ctx, "master", keycloak.User{Username: kcUser, Enabled: true}, config.Secret{})
	testutil.Must(t, err)

	// restore, inside the backup service's container
	ns := d.names[stacks.OpenZiti]
	svcs, err := d.c.Services(ctx, ns)
	testutil.Must(t, err)
	var backupID string
	for _, s := range svcs {
		if s.Spec.Name == ns+"_"+stacks.BackupService {
			backupID = s.ID
		}
	}
	cs, err := d.c.Containers(ctx, ns)
	testutil.Must(t, err)
	i := slices.IndexFunc(cs, func(c docker.Container) bool { return c.ServiceID == backupID && c.State == "running" })
	if i < 0 {
		t.Fatalf("no running container of the backup service (service %q)", backupID)
	}
	t0 = time.Now()
	res, err := d.c.Exec(ctx, cs[i].ID, []string{"ziti-bootstrap", "restore", set.ID, "--yes", "--swarm"})
	testutil.Must(t, err)
	t.Logf("restore --swarm (exit %d, %s):\n%s\n%s", res.ExitCode, time.Since(t0).Round(100*time.Millisecond), res.Stdout, lastLines(res.Stderr, 15))
	if res.ExitCode != 0 || !strings.Contains(res.Stdout, "restored ziti") || !strings.Contains(res.Stdout, "restored spire") ||
		!strings.Contains(res.Stdout, "restored keycloak") {
		t.Fatalf("restore --swarm failed (exit %d)", res.ExitCode)
	}

	// the servers answer with the state of the set
	z = d.zitiAdmin(ctx)
	ids, err := z.ListIdentities(ctx, ziti.FilterEq("name", extra))
	testutil.Must(t, err)
	if len(ids) != 0 {
		t.Errorf("identity %s, created after the backup, is still there after the restore", extra)
	}
	sp2 := d.spireAdmin(ctx)
	defer sp2.Close()
	es, err := sp2.ListEntries(ctx)
	testutil.Must(t, err)
	if slices.ContainsFunc(es, func(e spire.Entry) bool { return e.ID == entry.ID }) {
		t.Errorf("SPIRE entry %s, created after the backup, is still there after the restore", entry.ID)
	}
	if !slices.ContainsFunc(es, func(e spire.Entry) bool { return strings.HasPrefix(e.ID, "zb-") }) {
		t.Errorf("the restored SPIRE server lacks the bootstrap's entries: %v", es)
	}
	// Keycloak, restored through an unprivileged role into a new database swapped in, has the state of the set
	kc = d.keycloakAdmin(ctx)
	if u, err := kc.GetUser(ctx, "master", kcUser); !keycloak.IsNotFound(err) {
		t.Errorf("Keycloak user %s, created after the backup, after the restore: %+v, %v; want not found", kcUser, u, err)
	}
	if u, err := kc.GetUser(ctx, "master", "admin"); err != nil {
		t.Errorf("the restored Keycloak lacks its admin user: %+v, %v", u, err)
	}
	rep := d.run("up --dev --rerun-bootstrap after the restore", d.up("--rerun-bootstrap")...)
	if w := d.jobWrites(rep); w != "0" {
		t.Errorf("the bootstrap run on the restored systems made %s mutating call(s): the restore lost converged state", w)
	}
}

// keycloakAdmin logs in to the deployed Keycloak at its published port (on the state node's address) as its
// administrator.
func (d *devSystem) keycloakAdmin(ctx context.Context) *keycloak.Client {
	u, _ := url.Parse("http://" + d.addr + ":" + d.keycloakPort)
	kc, err := keycloak.New(ctx, keycloak.Options{URL: u, AdminUser: "admin", AdminPassword: d.devSecret("keycloak_admin_password")})
	testutil.Must(d.tb, err)
	return kc
}

// zitiAdmin logs in to the deployed controller at its published port as the dev admin.
func (d *devSystem) zitiAdmin(ctx context.Context) *ziti.Client {
	t := d.tb
	t.Helper()
	u, _ := url.Parse("https://" + d.addr + ":" + d.zitiPort)
	var z *ziti.Client
	err := wait.For(ctx, wait.Target{What: "the OpenZiti admin login", Where: u.String(), Deadline: 2 * time.Minute, Initial: time.Second, Max: 3 * time.Second},
		func(ctx context.Context) error {
			var err error
			z, err = ziti.New(ctx, ziti.Options{URL: u, User: "admin", Password: d.devSecret("ziti_admin_password"), TOFU: true})
			return err
		})
	testutil.Must(t, err)
	return z
}

// spireAdmin dials the deployed SPIRE server's admin socket, in its volume on this node.
func (d *devSystem) spireAdmin(ctx context.Context) *spire.Client {
	t := d.tb
	t.Helper()
	vols, err := d.c.Volumes(ctx, d.names[stacks.Spire])
	testutil.Must(t, err)
	i := slices.IndexFunc(vols, func(v docker.Volume) bool { return strings.HasSuffix(v.Name, "_spire-server-socket") })
	if i < 0 || vols[i].Mountpoint == "" {
		t.Fatalf("no SPIRE server socket volume: %v", vols)
	}
	sock := filepath.Join(vols[i].Mountpoint, "api.sock")
	var c *spire.Client
	err = wait.For(ctx, wait.Target{What: "the SPIRE server", Where: sock, Deadline: 2 * time.Minute, Initial: time.Second, Max: 3 * time.Second},
		func(ctx context.Context) error {
			var err error
			if c, err = spire.Dial(ctx, "unix://"+sock, nil); err != nil {
				return err
			}
			if err = c.Healthy(ctx); err != nil {
				c.Close()
				return err
			}
			return nil
		})
	testutil.Must(t, err)
	return c
}

// devSecret reads a secret of the dev state directory.
func (d *devSystem) devSecret(name string) config.Secret {
	b, err := os.ReadFile(filepath.Join(d.state, name))
	if err != nil {
		d.tb.Fatal(err)
	}
	return config.NewSecret(strings.TrimSpace(string(b)))
}
