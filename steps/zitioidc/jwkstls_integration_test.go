package zitioidc_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/keycloak/keycloaktest"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

// TestJWKSOverTLSTrustsKeycloaksCAOnly: the OpenZiti controller image, run with the environment and files the
// OpenZiti stack gives its controller (KEYCLOAK_CA as the config keycloak_ca), fetches a realm's signing keys over
// HTTPS and verifies Keycloak's certificate against that CA alone. In front of the test bed's Keycloak, a TLS
// endpoint with a certificate of another CA serves the keys: logins with Keycloak's tokens are refused; the same
// endpoint with a certificate of Keycloak's CA: they work.
func TestJWKSOverTLSTrustsKeycloaksCAOnly(t *testing.T) {
	t.Parallel()
	in := testbed.Require(t, "docker")
	testbed.Require(t, "keycloak")
	kcCA, otherCA := newTLSCA(t, "zbtest Keycloak CA"), newTLSCA(t, "zbtest other CA")
	z := stackController(t, in.Docker.Host, kcCA.certPEM, nil)

	kc := keycloaktest.Connect(t, nil)
	bed, err := url.Parse(kc.URL())
	testutil.Must(t, err)
	// Keycloak's keys over TLS, with a certificate of otherCA first
	// (not httptest's TLS server: a client that sends no server name, such as one dialling an IP address, gets its
	// own certificate)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	testutil.Must(t, err)
	front := &http.Server{Handler: httputil.NewSingleHostReverseProxy(bed), TLSConfig: &tls.Config{GetCertificate: otherCA.serve},
		ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go front.ServeTLS(ln, "", "")
	t.Cleanup(func() { front.Close() })
	frontURL := "https://" + ln.Addr().String()

	sfx := testutil.RandHex(t, 4)
	e := &env{t: t, sfx: sfx, realm: keycloaktest.RealmName(t, "jwkstls"), email: "alice-" + sfx + "@zb.test", zOpts: z, kc: kc}
	e.set.SignerName, e.set.AuthPolicyName = "zbtest-jwkstls", "zbtest-jwkstls"
	e.admin, err = ziti.New(ctx(t), z)
	testutil.Must(t, err)
	e.set.JWKSEndpoint = frontURL + "/realms/" + e.realm + "/protocol/openid-connect/certs"
	idn := e.identity()
	e.set.AttachIdentities = []string{idn.Name}
	e.run(e.decl(), steps.Apply)

	// the controller loads the signer asynchronously and fetches the keys again at most once a second: no token is
	// accepted for 5 s
	api := e.admin.ClientAPI()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		refused(t, api, "keys served with a certificate of another CA", e.token(e.realm, "openziti"))
	}

	otherCA.current.Store(kcCA) // the same endpoint, now with a certificate of Keycloak's CA
	sess, _ := login(t, api, func() string { return e.token(e.realm, "openziti") })
	if sess.IdentityID != idn.ID {
		t.Errorf("logged in as %s, want %s", sess.IdentityName, idn.Name)
	}
}

// tlsCA is a CA that issues the test's TLS server certificates for 127.0.0.1. serve hands out a certificate of
// current (itself unless changed), so one endpoint can switch CAs between connections.
type tlsCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM string
	current atomic.Pointer[tlsCA]
}

func newTLSCA(t *testing.T, cn string) *tlsCA {
	t.Helper()
	ca := &tlsCA{}
	var err error
	ca.cert, ca.key, err = issue(cn, nil, nil)
	testutil.Must(t, err)
	ca.certPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}))
	ca.current.Store(ca)
	return ca
}

func (ca *tlsCA) serve(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c, k, err := issue("127.0.0.1", ca.current.Load(), []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{c.Raw}, PrivateKey: k}, nil
}

// issue makes a CA (parent nil) or a server certificate for ips signed by parent.
func issue(cn string, parent *tlsCA, ips []net.IP) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), BasicConstraintsValid: true, IPAddresses: ips}
	signer, signerKey := tmpl, key
	if parent == nil {
		tmpl.IsCA, tmpl.KeyUsage = true, x509.KeyUsageCertSign|x509.KeyUsageDigitalSignature
	} else {
		tmpl.KeyUsage, tmpl.ExtKeyUsage = x509.KeyUsageDigitalSignature, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		return nil, nil, err
	}
	c, err := x509.ParseCertificate(der)
	return c, key, err
}

// stackController runs the controller image as a plain container on the host's network, as the OpenZiti stack's
// ziti-controller service runs it: its entrypoint and command, its environment, and the files of its configs and
// secrets (KEYCLOAK_CA = keycloakCA, the admin password a new random one). It returns how to reach it as its
// administrator (its CA trusted on first use: the test's own throwaway controller). watch, unless nil, is called
// just before the container starts, and the function it returns once the controller answers.
func stackController(t *testing.T, dockerHost, keycloakCA string, watch func(pwd string) (stop func())) ziti.Options {
	t.Helper()
	c := ctx(t)
	image := controllerImage(t)
	pwd := "Zb-" + testutil.RandHex(t, 12)
	st, err := stacks.Load(c, stacks.OpenZiti, stacks.Options{Names: stacks.DefaultNames("zbtest-"), Vars: map[string]string{
		"ZITI_PWD": pwd, "SPIRE_NODE_CA": "-", "KEYCLOAK_ADMIN_PASSWORD": "-", "KEYCLOAK_ADMIN_CLIENT_SECRET": "-", "SPIRE_UPSTREAM_CA_KEY": "-", "KEYCLOAK_CA": keycloakCA,
		"KEYCLOAK_DB_PASSWORD": "-", "S3_SECRET_ACCESS_KEY": "-", "BACKUP_ENCRYPTION_KEY": "-"}})
	testutil.Must(t, err)
	var spec *swarm.ContainerSpec
	for i := range st.Services {
		if st.Services[i].Key == "ziti-controller" {
			spec = st.Services[i].Spec.TaskTemplate.ContainerSpec
		}
	}
	if spec == nil {
		t.Fatal("the OpenZiti stack has no ziti-controller service")
	}
	port := strconv.Itoa(testutil.FreePort(t))
	env := map[string]string{}
	for _, kv := range spec.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	env["ZITI_CTRL_ADVERTISED_ADDRESS"], env["ZITI_CTRL_ADVERTISED_PORT"], env["ZITI_BOOTSTRAP_CONSOLE"] = "localhost", port, "false"
	var script strings.Builder
	for k, v := range env {
		fmt.Fprintf(&script, "export %s='%s'\n", k, v)
	}
	files := map[string][]docker.File{}
	add := func(target string, data []byte) {
		dir, name := path.Split(target)
		files[dir] = append(files[dir], docker.File{Name: name, Data: data, Mode: 0o644})
	}
	add("/zbtest/env", []byte(script.String()))
	for _, ref := range spec.Configs {
		for _, o := range st.Configs {
			if o.Name == ref.ConfigName && ref.File != nil {
				add(ref.File.Name, o.Data)
			}
		}
	}
	for _, ref := range spec.Secrets {
		for _, o := range st.Secrets {
			if o.Name == ref.SecretName && ref.File != nil {
				add(path.Join("/run/secrets", ref.File.Name), o.Data)
			}
		}
	}
	n := 0
	for _, fs := range files {
		n += len(fs)
	}
	if n != 1+len(spec.Configs)+len(spec.Secrets) {
		t.Fatalf("the data of a config or secret of the controller is missing: %v", files)
	}
	dc, err := docker.New(dockerHost, nil)
	testutil.Must(t, err)
	id, err := dc.CreateContainer(c, docker.ContainerSpec{Name: "zbtest-controller-" + testutil.RandHex(t, 4), Image: image, Network: "host",
		Entrypoint: append([]string{"/bin/bash", "-c", `. /zbtest/env && exec "$@"`, "bash"}, spec.Command...), Cmd: spec.Args,
		Labels: map[string]string{"zbtest": "controller"}})
	testutil.Must(t, err)
	t.Cleanup(func() {
		if t.Failed() { // the controller's side of the story
			out, _ := exec.Command("docker", "-H", dockerHost, "logs", "--tail", "200", id).CombinedOutput()
			t.Logf("controller container %s, last lines:\n%s", docker.ShortID(id), out)
		}
		if err := dc.ForceRemoveContainer(context.Background(), id); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	for dir, fs := range files {
		testutil.Must(t, dc.CopyFiles(c, id, dir, fs))
	}
	stop := func() {}
	if watch != nil {
		stop = watch(pwd)
	}
	testutil.Must(t, dc.StartContainer(c, id))
	u, _ := url.Parse("https://localhost:" + port)
	opts := ziti.Options{URL: u, User: "admin", Password: config.NewSecret(pwd), TOFU: true}
	err = wait.For(c, wait.Target{What: "the controller container", Where: u.String(), Deadline: 3 * time.Minute, Initial: time.Second, Max: 3 * time.Second},
		func(ctx context.Context) error { _, err := ziti.New(ctx, opts); return err })
	stop()
	testutil.Must(t, err)
	return opts
}

// controllerImage is the controller image of scripts/images.sh (built when missing).
func controllerImage(t *testing.T) string {
	t.Helper()
	var out, errs bytes.Buffer
	cmd := exec.Command("../../scripts/images.sh", "ziti")
	cmd.Stdout, cmd.Stderr = &out, &errs
	if err := cmd.Run(); err != nil {
		t.Fatalf("scripts/images.sh ziti: %v\n%s", err, errs.String())
	}
	for _, l := range strings.Split(out.String(), "\n") {
		if v, ok := strings.CutPrefix(l, "ZITI_CONTROLLER_IMAGE="); ok {
			return v
		}
	}
	t.Fatalf("scripts/images.sh ziti printed no ZITI_CONTROLLER_IMAGE:\n%s", out.String())
	return ""
}

// TestControllerFirstStartKeepsThePasswordOffTheProcessList: the controller, run as the OpenZiti stack runs it,
// creates its default admin on its first start without the password in any process's arguments (the image's
// bootstrap runs `ziti controller edge init … --password …`; the stack's entrypoint types it on edge init's
// terminal instead). Every process's command line on the host is read while the controller starts (the test
// requires having seen edge init run, so the scan is not vacuous); afterwards the admin logs in with the password.
func TestControllerFirstStartKeepsThePasswordOffTheProcessList(t *testing.T) {
	t.Parallel()
	in := testbed.Require(t, "docker")
	var samples, initSeen int
	var leaks []string
	stackController(t, in.Docker.Host, newTLSCA(t, "zbtest Keycloak CA").certPEM, func(pwd string) func() {
		done, stopped := make(chan struct{}), sync.WaitGroup{}
		stopped.Add(1)
		go func() {
			defer stopped.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				samples++
				paths, _ := filepath.Glob("/proc/[0-9]*/cmdline")
				for _, p := range paths {
					b, err := os.ReadFile(p)
					if err != nil {
						continue
					}
					if bytes.Contains(b, []byte("controller\x00edge\x00init")) {
						initSeen++
					}
					if bytes.Contains(b, []byte(pwd)) {
						leaks = append(leaks, string(bytes.ReplaceAll(bytes.ReplaceAll(b, []byte(pwd), []byte("<password>")), []byte{0}, []byte{' '})))
					}
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
		return func() { close(done); stopped.Wait() }
	})
	t.Logf("%d scans of the process list while the controller started; edge init seen in %d", samples, initSeen)
	if initSeen == 0 {
		t.Error("no scan saw edge init run: the scan proves nothing")
	}
	if len(leaks) > 0 {
		t.Errorf("the admin password was in %d process command line(s), e.g. %q", len(leaks), leaks[0])
	}
}
