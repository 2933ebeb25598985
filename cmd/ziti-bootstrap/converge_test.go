package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/casigner"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/keycloak"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/lock"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spire"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/bedziti"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/spireca"
)

// convergeBed is a system of its own on the test bed's servers: a private SPIRE server (its root can rotate
// without touching other tests), and OpenZiti objects and a Keycloak realm under names of this test.
type convergeBed struct {
	t      testing.TB
	dir    string
	env    string // the .env file
	keys   string // SPIRE_UPSTREAM_CA_KEY_FILE
	spire  testbed.SpireInfo
	admin  *ziti.Client
	caName string
	policy string // the auth policy the tool makes
	listen string
}

func newConvergeBed(t testing.TB) *convergeBed {
	in := testbed.Require(t, "ziti")
	testbed.Require(t, "keycloak")
	ctx := testutil.Context(t, 3*time.Minute)
	dir, err := os.MkdirTemp("", "zbc") // short: the SPIRE socket's path must fit a unix address
	testutil.Must(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	id := testutil.RandHex(t, 3)
	b := &convergeBed{t: t, dir: dir, admin: bedziti.Admin(t), caName: "zbconv-" + id, policy: "zbconv-" + id,
		spire: testbed.StartPrivateSpireServer(t, ctx, dir, "conv.test"), keys: filepath.Join(dir, "keys.pem")}
	key, err := os.ReadFile(b.spire.UpstreamKey)
	testutil.Must(t, err)
	testutil.Must(t, os.WriteFile(b.keys, key, 0o600))
	bedEnv, err := testbed.WriteEnv(in)
	testutil.Must(t, err)
	raw, err := os.ReadFile(bedEnv)
	testutil.Must(t, err)
	var lines []string
	for _, l := range strings.Split(string(raw), "\n") { // the test bed's Ziti and Keycloak; SPIRE, lock, names of our own
		if strings.HasPrefix(l, "ZITI_") || strings.HasPrefix(l, "KEYCLOAK_") || strings.HasPrefix(l, "ZB_SECRETS_DIR=") {
			lines = append(lines, l)
		}
	}
	lines = append(lines, "SPIRE_SERVER_ADDRESS=unix://"+b.spire.Socket, "TRUST_DOMAIN=conv.test", "SPIRE_UPSTREAM_CA_KEY_FILE="+b.keys,
		"KEYCLOAK_REALM=zbconv-"+id, "ZITI_JWT_SIGNER_NAME=zbconv-"+id, "ZITI_AUTH_POLICY_NAME="+b.policy, "ZITI_SPIRE_CA_NAME="+b.caName,
		"ZB_DOCKER=false", "ZB_LOCK_FILE="+filepath.Join(dir, "lock"), "ZB_WAIT_TIMEOUT=1m",
		"ZB_CONVERGE_BUNDLE_POLL=250ms", "ZB_CONVERGE_BACKOFF=1s")
	b.env = filepath.Join(dir, "converge.env")
	testutil.Must(t, os.WriteFile(b.env, []byte(strings.Join(lines, "\n")+"\n"), 0o600))
	t.Cleanup(b.cleanup)
	return b
}

// cleanup removes what the tool made for this test: the CAs (and the identities enrolled through them), the
// JWT signer, the auth policy and the realm.
func (b *convergeBed) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	in := testbed.Load(b.t)
	if cas, err := b.admin.ListCAs(ctx, ""); err == nil {
		for _, ca := range cas {
			if spireca.Owned(b.caName, ca) {
				_ = b.admin.DeleteCA(ctx, ca.ID)
			}
		}
	}
	if ids, err := b.admin.ListIdentities(ctx, `externalId contains "spiffe://conv.test/"`); err == nil {
		for _, id := range ids {
			_ = b.admin.DeleteIdentity(ctx, id.ID)
		}
	}
	if aps, err := b.admin.ListAuthPolicies(ctx, ziti.FilterEq("name", b.policy)); err == nil {
		for _, ap := range aps {
			_ = b.admin.DeleteAuthPolicy(ctx, ap.ID)
		}
	}
	if ss, err := b.admin.ListExtJWTSigners(ctx, ziti.FilterEq("name", b.policy)); err == nil {
		for _, s := range ss {
			_ = b.admin.DeleteExtJWTSigner(ctx, s.ID)
		}
	}
	u, _ := url.Parse(in.Keycloak.URL)
	if kc, err := keycloak.Dial(keycloak.Options{URL: u, AdminUser: in.Keycloak.AdminUser, AdminPassword: config.NewSecret(in.Keycloak.AdminPassword)}); err == nil {
		_ = kc.DeleteRealm(ctx, b.policy)
	}
}

// start runs `converge` in-process with the extra --set values until the test (or stop) ends.
func (b *convergeBed) start(set ...string) (stop func()) {
	b.listen = testutil.FreeAddr(b.t)
	args := []string{"converge", "--env-file", b.env, "--set", "ZB_CONVERGE_LISTEN=" + b.listen}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var logs testutil.SyncBuffer
	done := make(chan int, 1)
	go func() { done <- execute(ctx, args, io.Discard, &logs) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if code := <-done; code != exitcode.OK {
			b.t.Errorf("converge ended with exit %d\n%s", code, logs.String())
		}
	}
	b.t.Cleanup(func() {
		stop()
		if b.t.Failed() {
			b.t.Logf("converge logs:\n%s", logs.String())
		}
	})
	return stop
}

// metric returns the value of the sample named name (with its labels, as exposed), 0 when absent.
func (b *convergeBed) metric(name string) float64 {
	resp, err := http.Get("http://" + b.listen + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// until waits (generously: the machine is loaded) for cond, naming what it waited for.
func (b *convergeBed) until(what string, bound time.Duration, cond func() bool) time.Duration {
	b.t.Helper()
	t0 := time.Now()
	for !cond() {
		if time.Since(t0) > bound {
			b.t.Fatalf("%s: not within %s", what, bound)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(t0)
}

// ca returns the CA the tool registered for root.
func (b *convergeBed) ca(root *x509.Certificate) (ziti.CA, bool) {
	cas, err := b.admin.ListCAs(context.Background(), ziti.FilterEq("name", spireca.CAName(b.caName, root)))
	if err != nil || len(cas) != 1 {
		return ziti.CA{}, false
	}
	return cas[0], true
}

func (b *convergeBed) authPolicy() (string, bool) {
	aps, err := b.admin.ListAuthPolicies(context.Background(), ziti.FilterEq("name", b.policy))
	if err != nil || len(aps) != 1 {
		return "", false
	}
	return aps[0].ID, true
}

func readRoot(t testing.TB, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	testutil.Must(t, err)
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	testutil.Must(t, err)
	return c
}

// The converge service, with nobody running apply: (1) a new SPIRE root is bound in OpenZiti, verified, seconds
// after SPIRE publishes it (the interval is an hour: the bundle watch started the pass), and a workload with an
// SVID of the new root enrols and logs in; (2) an object the tool made and an operator deleted comes back, but
// not while an operator's run holds the lock; the metrics show both.
func TestConvergeServiceRotationAndDrift(t *testing.T) {
	b := newConvergeBed(t)
	rootA := readRoot(t, b.spire.UpstreamCert)
	stop := b.start("ZB_CONVERGE_INTERVAL=1h")
	b.until("first converge", 3*time.Minute, func() bool { return b.metric(`ziti_bootstrap_converge_runs_total{result="converged"}`) >= 1 })
	if ca, ok := b.ca(rootA); !ok || !ca.IsVerified {
		t.Fatalf("after the first pass: CA of root A %+v, %v; want it verified", ca, ok)
	}

	// Rotate SPIRE's upstream root: the disk UpstreamAuthority reads its files at each new X.509 CA; the key
	// file of ziti-bootstrap holds both keys (read again at each pass), as an operator gives them during a rotation.
	oldKey, err := os.ReadFile(b.spire.UpstreamKey)
	testutil.Must(t, err)
	testutil.Must(t, testbed.WriteRootCA(b.spire.UpstreamCert, b.spire.UpstreamKey, "zb private SPIRE root B"))
	newKey, err := os.ReadFile(b.spire.UpstreamKey)
	testutil.Must(t, err)
	testutil.Must(t, os.WriteFile(b.keys, append(oldKey, newKey...), 0o600))
	rootB := readRoot(t, b.spire.UpstreamCert)
	testbed.X509Authority(t, b.spire, "prepare")
	took := b.until("the new root bound and verified", 2*time.Minute, func() bool { ca, ok := b.ca(rootB); return ok && ca.IsVerified })
	t.Logf("new SPIRE root bound in OpenZiti and verified %s after SPIRE published it", took.Round(100*time.Millisecond))
	if got := b.metric(`ziti_bootstrap_converge_triggers_total{reason="trust-bundle-changed"}`); got < 1 {
		t.Errorf("triggers_total{reason=trust-bundle-changed} = %v; want the bundle watch to have started the pass", got)
	}
	if got := b.metric(`ziti_bootstrap_converge_bundle_changes_total`); got < 1 {
		t.Errorf("bundle_changes_total = %v", got)
	}
	if ca, ok := b.ca(rootA); !ok || !ca.IsVerified {
		t.Errorf("the old root's CA went while SPIRE still trusts that root: %+v, %v", ca, ok)
	}
	testbed.X509Authority(t, b.spire, "activate", "-authorityID", testbed.X509Authority(t, b.spire, "show")["prepared"]["authority_id"])
	b.workloadLogsIn("spiffe://conv.test/workload/after-rotation")
	stop()

	// Drift: a short interval; an operator deletes the auth policy while holding the lock, then releases it.
	b.start("ZB_CONVERGE_INTERVAL=2s")
	b.until("first converge", 3*time.Minute, func() bool { return b.metric(`ziti_bootstrap_converge_runs_total{result="converged"}`) >= 1 })
	ctx := testutil.Context(t, 3*time.Minute)
	lease, err := lock.Acquire(ctx, lock.NewFile(filepath.Join(b.dir, "lock")), lock.Options{TTL: time.Minute, What: "test"})
	testutil.Must(t, err)
	id, ok := b.authPolicy()
	if !ok {
		t.Fatal("no auth policy after the first pass")
	}
	testutil.Must(t, b.admin.DeleteAuthPolicy(ctx, id))
	writes := b.metric(`ziti_bootstrap_converge_writes_total`)
	busy := b.metric(`ziti_bootstrap_converge_runs_total{result="busy"}`)
	b.until("a pass skipped while the operator holds the lock", 2*time.Minute, func() bool {
		return b.metric(`ziti_bootstrap_converge_runs_total{result="busy"}`) > busy
	})
	if _, ok := b.authPolicy(); ok {
		t.Fatal("the auth policy came back while an operator's run held the lock")
	}
	testutil.Must(t, lease.Release(ctx))
	took = b.until("the deleted auth policy back", 2*time.Minute, func() bool { _, ok := b.authPolicy(); return ok })
	t.Logf("auth policy deleted by hand: back %s after the lock was released", took.Round(100*time.Millisecond))
	b.until("the metrics to count the repair", time.Minute, func() bool {
		return b.metric(`ziti_bootstrap_converge_writes_total`) > writes && b.metric(`ziti_bootstrap_converge_drift_changes_total`) >= 1
	})
	var st struct {
		LastConverged time.Time `json:"lastConverged"`
		LastResult    string    `json:"lastResult"`
	}
	resp, err := http.Get("http://" + b.listen + "/status")
	testutil.Must(t, err)
	defer resp.Body.Close()
	testutil.Must(t, json.NewDecoder(resp.Body).Decode(&st))
	if st.LastConverged.IsZero() {
		t.Errorf("/status has no last convergence: %+v", st)
	}
	if code, out, errs := cli(t, "converge", "healthcheck", "--addr", b.listen); code != exitcode.OK || !strings.HasPrefix(out, "ok: last converged") {
		t.Errorf("converge healthcheck: exit %d %q %s", code, out, errs)
	}
}

// workloadLogsIn has the private SPIRE server sign an SVID for id, which then enrols in OpenZiti through the
// SPIRE CA and logs in; it returns the SVID.
func (b *convergeBed) workloadLogsIn(id string) tls.Certificate {
	b.t.Helper()
	ctx := testutil.Context(b.t, 2*time.Minute)
	sc, err := spire.Dial(ctx, b.spire.Socket, nil)
	testutil.Must(b.t, err)
	defer sc.Close()
	cert := mintSVID(b.t, ctx, sc, id)
	api := b.admin.ClientAPI()
	if err := api.EnrollWithCA(ctx, cert, "conv-"+testutil.RandHex(b.t, 2)); err != nil {
		b.t.Fatalf("a workload with an SVID of %s enrols: %v", cert.Leaf.Issuer, err)
	}
	if err := b.logsIn(cert); err != nil {
		b.t.Fatalf("a workload with an SVID of %s logs in: %v", cert.Leaf.Issuer, err)
	}
	return cert
}

// mintSVID has the SPIRE server of sc sign an X509-SVID for id: the leaf and SPIRE's intermediate, with its key.
func mintSVID(t testing.TB, ctx context.Context, sc *spire.Client, id string) tls.Certificate {
	t.Helper()
	key := testutil.NewKey(t)
	chain, err := sc.MintX509SVID(ctx, id, key)
	testutil.Must(t, err)
	cert := tls.Certificate{PrivateKey: key, Leaf: chain[0]}
	for _, c := range chain {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	return cert
}

// logsIn logs in to OpenZiti with cert.
func (b *convergeBed) logsIn(cert tls.Certificate) error {
	_, err := b.admin.ClientAPI().AuthenticateCert(testutil.Context(b.t, time.Minute), cert)
	return err
}

// addEnv appends lines to the bed's .env file.
func (b *convergeBed) addEnv(lines ...string) {
	f, err := os.OpenFile(b.env, os.O_APPEND|os.O_WRONLY, 0)
	testutil.Must(b.t, err)
	defer f.Close()
	_, err = f.WriteString(strings.Join(lines, "\n") + "\n")
	testutil.Must(b.t, err)
}

// useSigner has the converge service verify roots through a SPIRE CA signer (as in the Swarm, where the OpenZiti
// side holds no root key): the bed's key file leaves the configuration, SPIRE_CA_SIGNER takes its place, and a
// signer holding the current root key serves on a socket of the bed. It returns the function that restarts the
// signer with other keys, as up does when a rotation updates the SPIRE stack.
func (b *convergeBed) useSigner() (restart func()) {
	b.t.Helper()
	raw, err := os.ReadFile(b.env)
	testutil.Must(b.t, err)
	sock := filepath.Join(b.dir, "signer.sock")
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		if !strings.HasPrefix(l, "SPIRE_UPSTREAM_CA_KEY_FILE=") {
			lines = append(lines, l)
		}
	}
	lines = append(lines, "SPIRE_CA_SIGNER=unix://"+sock)
	testutil.Must(b.t, os.WriteFile(b.env, []byte(strings.Join(lines, "\n")+"\n"), 0o600))
	var stop func()
	restart = func() {
		if stop != nil {
			stop()
		}
		key, err := os.ReadFile(b.spire.UpstreamKey) // the disk UpstreamAuthority's current key only
		testutil.Must(b.t, err)
		keys, err := spireca.ParseKeys(string(key))
		testutil.Must(b.t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- casigner.Serve(ctx, sock, (&casigner.Server{Keys: keys}).Handler()) }()
		stop = func() {
			cancel()
			if err := <-done; err != nil {
				b.t.Errorf("signer: %v", err)
			}
		}
	}
	restart()
	b.t.Cleanup(func() { stop() })
	return restart
}

// upstreamAuthority runs `spire-server upstreamauthority ARGS` on the bed's private SPIRE server.
func (b *convergeBed) upstreamAuthority(args ...string) {
	b.t.Helper()
	out, err := exec.Command(b.spire.ServerBin, append(append([]string{"upstreamauthority"}, args...), "-socketPath", b.spire.Socket)...).CombinedOutput()
	if err != nil {
		b.t.Fatalf("spire-server upstreamauthority %v: %v\n%s", args, err, out)
	}
}

// The old root's CA goes only once nothing needs it. The converge service verifies through a SPIRE CA signer
// (no root key of its own). After a rotation both CAs stay in OpenZiti while SPIRE's bundle holds both roots: a
// workload with an SVID of the old root still logs in, one of the new root too. Once the old root leaves SPIRE's
// bundle (its upstream authority tainted, then revoked: SPIRE v1.15's way to drop a root before it expires), the
// converge service removes its CA, seconds later, with nobody running apply; the old SVID no longer logs in.
func TestConvergeServiceRetiresTheOldRoot(t *testing.T) {
	b := newConvergeBed(t)
	restartSigner := b.useSigner()
	rootA := readRoot(t, b.spire.UpstreamCert)
	b.start("ZB_CONVERGE_INTERVAL=1h")
	b.until("first converge", 3*time.Minute, func() bool { return b.metric(`ziti_bootstrap_converge_runs_total{result="converged"}`) >= 1 })
	if ca, ok := b.ca(rootA); !ok || !ca.IsVerified {
		t.Fatalf("after the first pass: CA of root A %+v, %v; want it verified (through the signer)", ca, ok)
	}
	oldSVID := b.workloadLogsIn("spiffe://conv.test/workload/old-root")

	// rotation: a new root; the signer now holds the new key only, as the SPIRE stack's signer after up
	testutil.Must(t, testbed.WriteRootCA(b.spire.UpstreamCert, b.spire.UpstreamKey, "zb private SPIRE root B"))
	restartSigner()
	rootB := readRoot(t, b.spire.UpstreamCert)
	testbed.X509Authority(t, b.spire, "prepare")
	took := b.until("the new root bound and verified", 2*time.Minute, func() bool { ca, ok := b.ca(rootB); return ok && ca.IsVerified })
	t.Logf("new SPIRE root published → bound and verified in OpenZiti through the signer: %s", took.Round(10*time.Millisecond))
	// the pass that bound the new root has ended, with both roots in SPIRE's bundle: the old root's CA stays
	b.until("the rotation's pass to end", time.Minute, func() bool { return b.metric(`ziti_bootstrap_converge_runs_total{result="converged"}`) >= 2 })
	testbed.X509Authority(t, b.spire, "activate", "-authorityID", testbed.X509Authority(t, b.spire, "show")["prepared"]["authority_id"])
	newSVID := b.workloadLogsIn("spiffe://conv.test/workload/new-root")
	changes := b.metric(`ziti_bootstrap_converge_bundle_changes_total`)
	if ca, ok := b.ca(rootA); !ok || !ca.IsVerified {
		t.Fatalf("the old root's CA went while SPIRE's bundle holds the old root: %+v, %v", ca, ok)
	}
	if err := b.logsIn(oldSVID); err != nil {
		t.Errorf("an SVID of the old root, still in SPIRE's bundle: %v", err)
	}

	// the old root leaves SPIRE's bundle
	skid := hex.EncodeToString(rootA.SubjectKeyId)
	b.upstreamAuthority("taint", "-subjectKeyID", skid)
	b.upstreamAuthority("revoke", "-subjectKeyID", skid)
	took = b.until("the old root's CA removed from OpenZiti", 2*time.Minute, func() bool { _, ok := b.ca(rootA); return !ok })
	t.Logf("old root revoked in SPIRE → its CA removed from OpenZiti: %s", took.Round(10*time.Millisecond))
	if got := b.metric(`ziti_bootstrap_converge_bundle_changes_total`); got <= changes {
		t.Errorf("bundle_changes_total %v, %v before the revocation: the watch did not see it", got, changes)
	}
	if err := b.logsIn(oldSVID); err == nil {
		t.Error("an SVID of the revoked root still logs in")
	}
	if err := b.logsIn(newSVID); err != nil {
		t.Errorf("an SVID of the new root: %v", err)
	}
	if ca, ok := b.ca(rootB); !ok || !ca.IsVerified {
		t.Errorf("the new root's CA: %+v, %v", ca, ok)
	}
}

// BenchmarkConvergeRotation measures, on the test bed (a private SPIRE server, the test bed's controller), what
// the converge service takes with nobody running apply, through a SPIRE CA signer, each iteration a full root
// rotation: s-root-bound, from SPIRE publishing a new root (localauthority x509 prepare returned) to its CA
// verified in OpenZiti; s-old-root-removed, from SPIRE dropping the old root (upstreamauthority revoke returned)
// to its CA gone from OpenZiti. The bundle watch polls every 250 ms (ZB_CONVERGE_BUNDLE_POLL; 5 s in the stack),
// and s-bundle-poll reports it as the baseline: the rest is one converge pass.
//
//	go test -run '^$' -bench ConvergeRotation -benchtime 3x ./cmd/ziti-bootstrap
func BenchmarkConvergeRotation(b *testing.B) {
	bed := newConvergeBed(b)
	restartSigner := bed.useSigner()
	bed.start("ZB_CONVERGE_INTERVAL=1h")
	bed.until("first converge", 3*time.Minute, func() bool { return bed.metric(`ziti_bootstrap_converge_runs_total{result="converged"}`) >= 1 })
	var bound, removed time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		old := readRoot(b, bed.spire.UpstreamCert)
		testutil.Must(b, testbed.WriteRootCA(bed.spire.UpstreamCert, bed.spire.UpstreamKey, "zb bench root "+testutil.RandHex(b, 3)))
		restartSigner()
		root := readRoot(b, bed.spire.UpstreamCert)
		passes := bed.metric(`ziti_bootstrap_converge_runs_total{result="converged"}`)
		testbed.X509Authority(b, bed.spire, "prepare")
		bound += bed.until("the new root bound and verified", 2*time.Minute, func() bool { ca, ok := bed.ca(root); return ok && ca.IsVerified })
		bed.until("the pass to end", time.Minute, func() bool {
			return bed.metric(`ziti_bootstrap_converge_runs_total{result="converged"}`) > passes
		})
		testbed.X509Authority(b, bed.spire, "activate", "-authorityID", testbed.X509Authority(b, bed.spire, "show")["prepared"]["authority_id"])
		skid := hex.EncodeToString(old.SubjectKeyId)
		bed.upstreamAuthority("taint", "-subjectKeyID", skid)
		bed.upstreamAuthority("revoke", "-subjectKeyID", skid)
		removed += bed.until("the old root's CA removed", 2*time.Minute, func() bool { _, ok := bed.ca(old); return !ok })
	}
	b.StopTimer()
	b.ReportMetric(bound.Seconds()/float64(b.N), "s-root-bound")
	b.ReportMetric(removed.Seconds()/float64(b.N), "s-old-root-removed")
	b.ReportMetric(0.25, "s-bundle-poll")
}
