package routerenrol_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/routerenrol"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spireagent/agenttest"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/bedziti"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
)

// bed is an enrolment server run by the test against the test bed's controller, with SVIDs from the test bed's
// SPIRE agent: one for the server, one for the router its mapping names, one for a workload it does not map.
type bed struct {
	t                 *testing.T
	admin             *ziti.Client   // uncounted, for inspection and cleanup
	counter           *calls.Counter // the server's calls
	url               *url.URL
	serverID          spiffeid.ID
	router, app       routerenrol.Identity
	routerName        string
	roles             []string
	routerID, otherID spiffeid.ID
	logs              *testutil.SyncBuffer
}

func newBed(t *testing.T) *bed {
	t.Helper()
	sfx := testutil.RandHex(t, 3)
	b := &bed{t: t, admin: bedziti.Admin(t), counter: calls.New(), routerName: "zbt-er-" + sfx, roles: []string{"public", "zbt-" + sfx},
		logs: &testutil.SyncBuffer{}}
	b.serverID = agenttest.Register(t, "zbt-re-"+sfx+"/router-enrol", 0)
	b.routerID = agenttest.Register(t, "zbt-re-"+sfx+"/ziti-router", 0)
	b.otherID = agenttest.Register(t, "zbt-re-"+sfx+"/app", 0)
	serverSrc := agenttest.Source(t, b.serverID)
	b.router, b.app = agenttest.Source(t, b.routerID), agenttest.Source(t, b.otherID)

	zc := bedziti.Client(t, b.counter)
	routers, problems := config.ParseRouterIDs(b.routerID.String() + "=" + b.routerName + ":" + strings.Join(b.roles, ","))
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	s := &routerenrol.Server{Identity: serverSrc, Admin: zc, Routers: routers, Log: slog.New(slog.NewTextHandler(b.logs, nil))}
	testutil.Must(t, s.Check())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	testutil.Must(t, err)
	hs := &http.Server{Handler: s, TLSConfig: s.TLSConfig(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(s.Log.Handler(), slog.LevelWarn)}
	go hs.ServeTLS(ln, "", "")
	t.Cleanup(func() { hs.Close() })
	b.url = &url.URL{Scheme: "https", Host: ln.Addr().String()}
	t.Cleanup(b.cleanup)
	return b
}

func (b *bed) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if r, ok, err := b.admin.FindEdgeRouter(ctx, b.routerName); err == nil && ok {
		if err := b.admin.DeleteEdgeRouter(ctx, r.ID); err != nil {
			b.t.Errorf("cleanup: %v", err)
		}
	}
}

func (b *bed) client(id routerenrol.Identity) *routerenrol.Client {
	return &routerenrol.Client{Identity: id, URL: b.url, ServerID: b.serverID, Deadline: time.Minute}
}

func (b *bed) find() (ziti.RouterEnrolment, bool) {
	b.t.Helper()
	r, ok, err := b.admin.FindEdgeRouter(testutil.Context(b.t, time.Minute), b.routerName)
	testutil.Must(b.t, err)
	return r, ok
}

func ctxT(t *testing.T) context.Context { return testutil.Context(t, 3*time.Minute) }

// enrolForReal enrols the router with jwt as its node would: the test bed's ziti binary writes a router
// configuration (`ziti create config router edge`) and runs `ziti router enroll --jwt` with the JWT written by
// WriteFile, as `router-enrol --out` writes it.
func (b *bed) enrolForReal(jwt string) error {
	b.t.Helper()
	in := testbed.Require(b.t, "ziti")
	u, err := url.Parse(in.Ziti.URL)
	testutil.Must(b.t, err)
	dir := b.t.TempDir()
	env := append(os.Environ(), "HOME="+dir, "ZITI_HOME="+dir, "ZITI_CTRL_ADVERTISED_ADDRESS="+u.Hostname(),
		"ZITI_CTRL_ADVERTISED_PORT="+u.Port(), "ZITI_ROUTER_ADVERTISED_ADDRESS=127.0.0.1", "ZITI_ROUTER_PORT=3099")
	run := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, in.Ziti.Bin, args...)
		cmd.Env, cmd.Dir = env, dir
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	cfg, jwtFile := filepath.Join(dir, "router.yml"), filepath.Join(dir, "router.jwt")
	if out, err := run("create", "config", "router", "edge", "--routerName", b.routerName, "-o", cfg); err != nil {
		b.t.Fatalf("ziti create config router edge: %v\n%s", err, out)
	}
	testutil.Must(b.t, routerenrol.WriteFile(jwtFile, []byte(jwt)))
	out, err := run("router", "enroll", cfg, "--jwt", jwtFile)
	if err != nil {
		return fmt.Errorf("ziti router enroll: %w\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, b.routerName+".cert")); err != nil {
		return fmt.Errorf("ziti router enroll wrote no certificate: %w\n%s", err, out)
	}
	return nil
}

// An allowed router gets a JWT and its router is created with enrolment pending; asking again returns the same
// JWT and writes nothing; once enrolled, it is refused unless it asks to re-enrol; re-enrolled, it gets a new
// JWT that enrols it again while the old one no longer does.
func TestAllowedRouterEnrolsAndReenrols(t *testing.T) {
	b := newBed(t)
	c := b.client(b.router)

	w0 := b.counter.Writes()
	first, err := c.Enrol(ctxT(t), false)
	if err != nil {
		t.Fatalf("Enrol: %v\nserver log:\n%s", err, b.logs)
	}
	_, writes := b.counter.Snapshot()
	if first.Action != routerenrol.ActionCreated || first.Router != b.routerName || b.counter.Writes()-w0 != 1 {
		t.Fatalf("first call: %+v, %d write(s) %v; want created with 1 write", first, b.counter.Writes()-w0, writes)
	}
	r, ok := b.find()
	if !ok || r.ID != first.RouterID || r.IsVerified || r.JWT != first.JWT || !r.Pending(time.Now()) || !r.IsTunnelerEnabled ||
		!ziti.EqualSets(r.RoleAttributes, b.roles) || r.Tags[routerenrol.TagSpiffeID] != b.routerID.String() || r.Tags[routerenrol.TagOwner] != routerenrol.OwnerValue {
		t.Fatalf("router after the first call: %+v (found %v)", r, ok)
	}
	claims, err := ziti.JWTClaims(first.JWT)
	if err != nil || claims.Method != "erott" || claims.Subject != r.ID || claims.ID == "" || !claims.ExpiresAt.After(time.Now()) {
		t.Errorf("JWT claims %+v, %v; want an erott token for router %s", claims, err, r.ID)
	}

	w0 = b.counter.Writes()
	again, err := c.Enrol(ctxT(t), false)
	if err != nil || again.Action != routerenrol.ActionPending || again.JWT != first.JWT || again.RouterID != first.RouterID || b.counter.Writes() != w0 {
		t.Fatalf("second call: %+v, %v, %d write(s); want the same JWT and no write", again, err, b.counter.Writes()-w0)
	}

	// the router enrols with the JWT (`ziti router enroll`)
	if err := b.enrolForReal(first.JWT); err != nil {
		t.Fatalf("enrol the router with its JWT: %v", err)
	}
	if r, _ := b.find(); !r.IsVerified || r.JWT != "" {
		t.Fatalf("router after its enrolment: %+v; want verified, no pending JWT", r)
	}

	w0 = b.counter.Writes()
	_, err = c.Enrol(ctxT(t), false)
	var refused *routerenrol.RefusedError
	if !errors.As(err, &refused) || refused.Status != http.StatusConflict || !strings.Contains(refused.Reason, "enrolled already") || b.counter.Writes() != w0 {
		t.Fatalf("call of an enrolled router without reenrol: %v, %d write(s); want 409 and no write", err, b.counter.Writes()-w0)
	}

	re, err := c.Enrol(ctxT(t), true)
	if err != nil || re.Action != routerenrol.ActionReenrolled || re.JWT == first.JWT || re.RouterID != first.RouterID || b.counter.Writes()-w0 != 1 {
		t.Fatalf("re-enrol: %+v, %v, %d write(s); want a new JWT with 1 write", re, err, b.counter.Writes()-w0)
	}
	if r, _ := b.find(); r.IsVerified || r.JWT != re.JWT {
		t.Errorf("router after re-enrol: %+v; want enrolment pending with the new JWT", r)
	}
	if err := b.enrolForReal(first.JWT); err == nil {
		t.Error("the first JWT enrolled the router again after the re-enrolment")
	}
	if err := b.enrolForReal(re.JWT); err != nil {
		t.Errorf("enrol with the new JWT: %v", err)
	}
	if r, _ := b.find(); !r.IsVerified {
		t.Errorf("router after enrolling with the new JWT: %+v", r)
	}
	t.Logf("server log:\n%s", b.logs)
}

// fixed is an Identity holding one SVID, with the test bed's real trust bundle (to verify the server).
type fixed struct {
	svid   *x509svid.SVID
	bundle x509bundle.Source
}

func (f fixed) GetX509SVID() (*x509svid.SVID, error) { return f.svid, nil }
func (f fixed) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	return f.bundle.GetX509BundleForTrustDomain(td)
}

func forged(t *testing.T, id string, bundle x509bundle.Source) fixed {
	k, lk := testutil.NewKey(t), testutil.NewKey(t)
	ca := testutil.Issue(t, nil, nil, k, "forger "+id, "", true)
	leaf := testutil.Issue(t, ca, k, lk, "", id, false)
	return fixed{svid: &x509svid.SVID{ID: spiffeid.RequireFromString(id), Certificates: []*x509.Certificate{leaf, ca}, PrivateKey: lk}, bundle: bundle}
}

// Callers without a router's SVID are refused with 403 and a reason, and nothing is created.
func TestRefusedCallersCreateNothing(t *testing.T) {
	b := newBed(t)
	w0 := b.counter.Writes()
	for _, tc := range []struct {
		name   string
		id     routerenrol.Identity
		reason string
	}{
		{"SVID of a workload not mapped to a router", b.app, "is not mapped to a router"},
		{"SVID of another trust domain", forged(t, "spiffe://other.test/ziti-router", b.router), "not a valid X509-SVID"},
		{"the router's SPIFFE ID from another CA", forged(t, b.routerID.String(), b.router), "not a valid X509-SVID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := b.client(tc.id).Enrol(ctxT(t), true)
			var refused *routerenrol.RefusedError
			if !errors.As(err, &refused) || refused.Status != http.StatusForbidden || !strings.Contains(refused.Reason, tc.reason) {
				t.Fatalf("Enrol = %v; want 403 with %q", err, tc.reason)
			}
			t.Logf("refused: %v", err)
		})
	}

	// no client certificate: a plain TLS client that verifies the server against the bundle
	svid, err := (b.router).GetX509SVID()
	testutil.Must(t, err)
	bundle, err := (b.router).GetX509BundleForTrustDomain(svid.ID.TrustDomain())
	testutil.Must(t, err)
	pool := x509.NewCertPool()
	for _, a := range bundle.X509Authorities() {
		pool.AddCert(a)
	}
	// the server's SVID carries no DNS name: the client verifies it as an SVID (chain to the bundle) instead of
	// by host name, and offers no certificate
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			id, _, err := x509svid.Verify(cs.PeerCertificates, b.router)
			if err == nil && id != b.serverID {
				err = errors.New("unexpected server " + id.String())
			}
			return err
		}}}}
	resp, err := hc.Post(b.url.JoinPath(routerenrol.Path).String(), "application/json", strings.NewReader(`{"reenrol":true}`))
	testutil.Must(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "no client certificate") {
		t.Errorf("without a client certificate: %s %s", resp.Status, body)
	}

	if _, ok := b.find(); ok || b.counter.Writes() != w0 {
		t.Errorf("after refusals: router exists %v, %d write(s); want none", ok, b.counter.Writes()-w0)
	}
	for _, want := range []string{"is not mapped to a router", "no client certificate", "router enrolment refused"} {
		if !strings.Contains(b.logs.String(), want) {
			t.Errorf("server log does not say %q:\n%s", want, b.logs)
		}
	}
}

// The client checks the server's SPIFFE ID, and gives up on a server that is not there after its deadline.
func TestClientChecksTheServerAndWaitsWithADeadline(t *testing.T) {
	b := newBed(t)
	c := b.client(b.router)
	c.ServerID = b.otherID
	_, err := c.Enrol(ctxT(t), false)
	if !config.IsInvalid(err) || !strings.Contains(err.Error(), "ZB_ROUTER_ENROL_SERVER_ID") || !strings.Contains(err.Error(), b.serverID.String()) {
		t.Errorf("Enrol with another server ID = %v; want a configuration error naming the ID the server presents", err)
	}
	if _, ok := b.find(); ok {
		t.Error("a router was created although the client refused the server")
	}

	addr := testutil.FreeAddr(t) // nothing listens there now
	c = b.client(b.router)
	c.URL, c.Deadline = &url.URL{Scheme: "https", Host: addr}, 2*time.Second
	_, err = c.Enrol(ctxT(t), false)
	var ue *wait.UnreachableError
	if !errors.As(err, &ue) || ue.Where != addr || ue.Attempts < 2 {
		t.Errorf("Enrol against a closed port = %v; want an unreachable error after several attempts", err)
	}
}

func TestWriteFileIsAtomicAndPrivate(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "router.jwt")
	testutil.Must(t, os.WriteFile(p, []byte("old"), 0o644))
	testutil.Must(t, routerenrol.WriteFile(p, []byte("new")))
	fi, err := os.Stat(p)
	testutil.Must(t, err)
	got, _ := os.ReadFile(p)
	if string(got) != "new" || fi.Mode().Perm() != 0o600 {
		t.Errorf("file %q mode %v; want \"new\" with 0600", got, fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("%d files left in the directory; want only the JWT", len(entries))
	}
	if err := routerenrol.WriteFile(filepath.Join(dir, "missing", "x.jwt"), []byte("x")); err == nil {
		t.Error("WriteFile into a missing directory succeeded")
	}
}
