package stack_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	dockerapi "github.com/docker/docker/client"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/stack"
)

// These tests deploy real stacks on the test bed's single-node Swarm, which other packages' tests use too (they
// deploy no stacks): every stack namespace starts with a random "zbt<hex>-" prefix, published ports are chosen
// away from the test bed's, and everything a test deployed is removed when it ends, pass or fail.

// images builds (or finds cached) the local images of the given targets with scripts/images.sh and returns the
// stack variables that select them.
func images(t *testing.T, targets ...string) map[string]string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "images.sh")
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(script, targets...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	t0 := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s", script, targets, err, stderr.String())
	}
	t.Logf("scripts/images.sh %s: %s\n%s", strings.Join(targets, " "), time.Since(t0).Round(time.Millisecond), strings.TrimSpace(stderr.String()))
	vars := map[string]string{}
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			vars[k] = v
		}
	}
	return vars
}

// pki makes a CA (self-signed) or a leaf signed by parent; it returns PEM certificate and PKCS#8 key.
type pkiCert struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM string
	keyPEM  string
}

func newCert(t testing.TB, cn string, parent *pkiCert) *pkiCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(30 * 24 * time.Hour)}
	signer, signerKey := tmpl, key
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	k8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &pkiCert{cert: cert, key: key,
		certPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		keyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k8}))}
}

// spireVars returns the PKI variables of the SPIRE stack: an upstream root, and the Swarm's root CA, which issued
// the node certificate the agent attests with.
func spireVars(t testing.TB, c *docker.Client) map[string]string {
	up := newCert(t, "zbt upstream root", nil)
	nodeCA, err := c.SwarmRootCA(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"SPIRE_UPSTREAM_CA_CERT": up.certPEM, "SPIRE_UPSTREAM_CA_KEY": up.keyPEM, "SPIRE_NODE_CA": nodeCA,
		"TRUST_DOMAIN": "zbt.test",
	}
}

type e2e struct {
	t       *testing.T
	host    string
	names   stacks.Names
	vars    map[string]string
	without []string
}

func newE2E(t *testing.T) *e2e {
	in := testbed.Require(t, "docker")
	prefix := "zbt" + testutil.RandHex(t, 3) + "-"
	e := &e2e{t: t, host: in.Docker.Host, names: stacks.DefaultNames(prefix), vars: map[string]string{}}
	if _, err := os.Stat("/proc/net/ip_vs"); err != nil {
		// this kernel has no IPVS, so Swarm's virtual IPs and routing mesh do not work: DNS round robin and ports
		// published on the node instead (the test bed's Firecracker VMs are such a case)
		e.vars["ZB_ENDPOINT_MODE"], e.vars["ZB_PUBLISH_MODE"] = "dnsrr", "host"
		t.Log("no IPVS in this kernel: ZB_ENDPOINT_MODE=dnsrr ZB_PUBLISH_MODE=host")
	}
	t.Logf("stack namespaces: %v", e.names)
	return e
}

// keycloakStack gives the Keycloak stack its required variables (random secrets, a certificate of a throwaway CA)
// and removes the stack when the test ends.
func (e *e2e) keycloakStack() {
	t := e.t
	e.vars["KEYCLOAK_DB_PASSWORD"], e.vars["KEYCLOAK_ADMIN_PASSWORD"] = "db-"+testutil.RandHex(t, 8), "adm-"+testutil.RandHex(t, 8)
	e.vars["KEYCLOAK_ADMIN_CLIENT_SECRET"] = "admc-" + testutil.RandHex(t, 8)
	tls := newCert(t, "keycloak", newCert(t, "zbt keycloak ca", nil))
	e.vars["KEYCLOAK_TLS_CERT"], e.vars["KEYCLOAK_TLS_KEY"] = tls.certPEM, tls.keyPEM
	t.Cleanup(func() { e.down(stacks.Keycloak) })
}

// client returns a Docker client counting into counter.
func (e *e2e) client(counter *calls.Counter) *docker.Client {
	c, err := docker.New(e.host, counter)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

func (e *e2e) config(c *docker.Client) stack.Config {
	return stack.Config{Engine: func() stack.Engine { return c }, Timeout: e2eTimeout,
		Progress: func(what, where string, attempt int, elapsed time.Duration, err error) {
			if attempt%5 == 0 {
				e.t.Logf("waiting %s for %s: %v", elapsed.Round(time.Second), what, err)
			}
		}}
}

func (e *e2e) load(names ...string) []*stacks.Stack {
	e.t.Helper()
	var out []*stacks.Stack
	for _, n := range names {
		st, err := stacks.Load(context.Background(), n, stacks.Options{Names: e.names, Vars: e.vars, Without: e.without})
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, st)
	}
	return out
}

// run runs the steps with a fresh counter and returns the report.
func (e *e2e) run(mode steps.Mode, build func(stack.Config) []steps.Step) *steps.Report {
	e.t.Helper()
	counter := calls.New()
	c := e.client(counter)
	r := &steps.Runner{Steps: build(e.config(c)), Counter: counter}
	rep, err := r.Run(context.Background(), mode)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, s := range rep.Steps {
		e.t.Logf("%s: %s in %s, %d mutating call(s)", s.Name, s.Status, s.Duration.Round(time.Millisecond), s.MutatingCalls)
		for _, c := range s.Changes {
			e.t.Logf("    %s", c)
		}
		for _, n := range s.Notes {
			e.t.Logf("    note: %s", n)
		}
		if s.Error != "" {
			e.t.Logf("    error: %s", s.Error)
		}
	}
	return rep
}

func (e *e2e) deploy(sts ...*stacks.Stack) *steps.Report {
	return e.run(steps.Apply, func(cfg stack.Config) []steps.Step { return stack.Steps(cfg, "", sts...) })
}

// down removes the stacks (and their volumes) and checks that nothing of theirs is left.
func (e *e2e) down(names ...string) *steps.Report {
	var pairs [][2]string
	for _, n := range names {
		pairs = append(pairs, [2]string{n, e.names[n]})
	}
	// as down does: the stacks' objects, then what each node holds (the SPIRE agent, a plain container on the
	// stack's overlay, and the volumes), then the networks
	rep := e.run(steps.Apply, func(cfg stack.Config) []steps.Step { return stack.RemoveStepsKeepingNetworks(cfg, "", false, pairs) })
	ctx := context.Background()
	c := e.client(nil)
	var namespaces []string
	for _, p := range pairs {
		namespaces = append(namespaces, p[1])
	}
	if _, err := c.CleanNode(ctx, namespaces, true, 2*time.Minute); err != nil {
		e.t.Error(err)
	}
	e.run(steps.Apply, func(cfg stack.Config) []steps.Step { return stack.RemoveNetworkSteps(cfg, "", pairs) })
	for _, n := range names {
		ns := e.names[n]
		svcs, err1 := c.Services(ctx, ns)
		nets, err2 := c.Networks(ctx, ns)
		cfgs, err3 := c.Configs(ctx, ns)
		secs, err4 := c.Secrets(ctx, ns)
		vols, err5 := c.Volumes(ctx, ns)
		for _, err := range []error{err1, err2, err3, err4, err5} {
			if err != nil {
				e.t.Error(err)
			}
		}
		if len(svcs)+len(nets)+len(cfgs)+len(secs)+len(vols) > 0 {
			e.t.Errorf("after down, stack %s still has %d service(s), %d network(s), %d config(s), %d secret(s), %d volume(s)",
				ns, len(svcs), len(nets), len(cfgs), len(secs), len(vols))
		}
	}
	return rep
}

func requireConverged(t *testing.T, rep *steps.Report, what string) {
	t.Helper()
	if !rep.Converged() {
		t.Fatalf("%s did not converge: %v", what, rep.Errors())
	}
}

func TestSpireStackE2E(t *testing.T) {
	e := newE2E(t)
	for k, v := range images(t, "spire", "tool") {
		e.vars[k] = v
	}
	for k, v := range spireVars(t, e.client(nil)) {
		e.vars[k] = v
	}
	t.Cleanup(func() { e.down(stacks.Spire) })

	t0 := time.Now()
	rep := e.deploy(e.load(stacks.Spire)...)
	requireConverged(t, rep, "first deploy")
	t.Logf("BENCH deploy spire from empty to converged and healthy: %s, %d mutating call(s)", time.Since(t0).Round(time.Millisecond), rep.MutatingCalls)

	t0 = time.Now()
	rep = e.deploy(e.load(stacks.Spire)...)
	requireConverged(t, rep, "re-deploy")
	if rep.MutatingCalls != 0 {
		t.Fatalf("re-deploy of an unchanged stack made %d mutating call(s): %v", rep.MutatingCalls, rep.Writes)
	}
	t.Logf("BENCH no-op re-deploy: %s, 0 mutating calls", time.Since(t0).Round(time.Millisecond))

	// a new upstream root: its key (a secret) and certificate (a config) get new versions; the server (both) and
	// the agent launcher (the certificate: the agents' trust bundle) are updated; the old versions are removed
	up := newCert(t, "zbt upstream root 2", nil)
	e.vars["SPIRE_UPSTREAM_CA_CERT"], e.vars["SPIRE_UPSTREAM_CA_KEY"] = up.certPEM, up.keyPEM
	t0 = time.Now()
	rep = e.deploy(e.load(stacks.Spire)...)
	requireConverged(t, rep, "rotation")
	var updated []string
	for _, c := range rep.Steps[0].Changes {
		if c.Kind == stack.KindService {
			updated = append(updated, c.Key+":"+string(c.Action)+strings.Join(c.Fields, ","))
		}
	}
	ns := e.names[stacks.Spire]
	// the root's key goes to the server and to the CA signer (it signs OpenZiti's verifications); its certificate
	// to the server and the agents' trust bundle
	if want := []string{ns + "_spire-agent-launcher:updateconfigs", ns + "_spire-ca-signer:updatesecrets", ns + "_spire-server:updatesecrets,configs"}; strings.Join(updated, " ") != strings.Join(want, " ") {
		t.Errorf("rotation changed services %v, want %v", updated, want)
	}
	t.Logf("BENCH secret+config rotation: %s, %d mutating call(s)", time.Since(t0).Round(time.Millisecond), rep.MutatingCalls)
	c := e.client(nil)
	secs, _ := c.Secrets(context.Background(), e.names[stacks.Spire])
	if len(secs) != 1 {
		t.Errorf("after rotation the stack has %d secrets, want 1 (the old version removed): %v", len(secs), secs)
	}

	// a new image reference (same image, another tag): a rolling update of that service only
	api, err := dockerapi.NewClientWithOpts(dockerapi.WithHost(e.host), dockerapi.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	newTag := e.vars["SPIRE_SERVER_IMAGE"] + "-zbt" + testutil.RandHex(t, 2)
	if err := api.ImageTag(context.Background(), e.vars["SPIRE_SERVER_IMAGE"], newTag); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.ImageRemove(context.Background(), newTag, imageRemoveOptions) })
	e.vars["SPIRE_SERVER_IMAGE"] = newTag
	t0 = time.Now()
	rep = e.deploy(e.load(stacks.Spire)...)
	requireConverged(t, rep, "image update")
	if ch := rep.Steps[0].Changes; len(ch) != 1 || ch[0].Action != steps.Update || ch[0].Key != e.names[stacks.Spire]+"_spire-server" ||
		strings.Join(ch[0].Fields, ",") != "image,labels" {
		t.Errorf("image update: changes %v, want one update of spire-server (image, labels)", ch)
	}
	t.Logf("BENCH image rolling update: %s, %d mutating call(s)", time.Since(t0).Round(time.Millisecond), rep.MutatingCalls)

	t0 = time.Now()
	rep = e.down(stacks.Spire)
	requireConverged(t, rep, "down")
	t.Logf("BENCH down: %s, %d mutating call(s)", time.Since(t0).Round(time.Millisecond), rep.MutatingCalls)
}

var imageRemoveOptions = image.RemoveOptions{}

var e2eTimeout = 4 * time.Minute
