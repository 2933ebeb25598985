package crashtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/lock"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
)

// secretsOf returns the test bed's secrets, each with a name for messages: the passwords, the S3 secret key and
// the body of SPIRE's upstream CA private key.
func secretsOf(t *testing.T, b *bed) map[string]string {
	key, err := os.ReadFile(b.in.Spire.UpstreamKey)
	testutil.Must(t, err)
	var body []string
	for _, l := range strings.Split(string(key), "\n") {
		if l != "" && !strings.HasPrefix(l, "-----") {
			body = append(body, l)
		}
	}
	out := map[string]string{
		"ZITI_PWD": b.in.Ziti.Password, "KEYCLOAK_ADMIN_PASSWORD": b.in.Keycloak.AdminPassword,
		"S3_SECRET_ACCESS_KEY": b.in.S3.SecretKey, "postgres password": b.in.Postgres.Password,
	}
	if len(body) > 0 {
		out["SPIRE_UPSTREAM_CA_KEY (first line of its PEM body)"] = body[0]
		out["SPIRE_UPSTREAM_CA_KEY (last line of its PEM body)"] = body[len(body)-1]
	}
	for k, v := range out {
		if len(v) < 8 {
			t.Fatalf("secret %s is too short to scan for", k)
		}
	}
	return out
}

// TestSecretsAppearNowhere runs apply in the ways that print the most (debug logs, text and JSON, failing,
// crashing, refused by the lock) and scans everything every subprocess of this test process printed, its
// arguments and environment, and the layers of the image built from the same binary, for the test bed's
// secrets. Run with the whole package, it also scans what the other tests produced.
func TestSecretsAppearNowhere(t *testing.T) {
	b := newBed(t)
	secrets := secretsOf(t, b)
	dead := filepath.Join(t.TempDir(), "none.sock")
	for _, o := range []struct {
		what string
		o    runOpts
		args []string
	}{
		{"apply, text, debug", runOpts{}, []string{"-o", "text"}},
		{"apply, json, debug", runOpts{}, []string{"-o", "json"}},
		{"apply, SPIRE unreachable", runOpts{}, []string{"-o", "json", "--set", "SPIRE_SERVER_ADDRESS=unix://" + dead, "--set", "ZB_WAIT_TIMEOUT=1s"}},
		{"apply, crashed", runOpts{env: []string{calls.CrashAfterWritesEnv + "=3"}}, []string{"-o", "json"}},
	} {
		if o.what == "apply, crashed" {
			b.reset()
		}
		r := run(t, o.o, append(append([]string{"apply", "--log-level", "debug"}, b.settings()...), o.args...)...)
		t.Logf("%s: exit %d signal %v, %d bytes of output", o.what, r.code, r.signal, len(r.stdout)+len(r.stderr))
	}
	for _, cmd := range [][]string{{"plan", "--log-level", "debug", "-o", "json"}, {"status", "--log-level", "debug"}} {
		run(t, runOpts{}, append(cmd, b.settings()...)...)
	}
	// Refused by the lock: the message names the holder, nothing else.
	c, err := docker.New(b.in.Docker.Host, nil)
	testutil.Must(t, err)
	defer c.Close()
	lease, err := lock.Acquire(testutil.Context(t, time.Minute), lock.NewSwarm(c, lock.Name, b.in.Docker.Host), lock.Options{TTL: 30 * time.Second, Wait: time.Minute})
	testutil.Must(t, err)
	r := b.apply(runOpts{env: []string{"ZB_LOCK_WAIT=0"}}, "--log-level", "debug")
	lease.Release(context.Background())
	if r.code != exitcode.Locked {
		t.Errorf("apply while the test holds the lock: exit %d, want %d\n%s", r.code, exitcode.Locked, r)
	}
	b.mustConverge("apply after the scan's runs", runOpts{})

	transcript.mu.Lock()
	text, runs := transcript.text.String(), transcript.runs
	transcript.mu.Unlock()
	for _, seen := range []string{b.envFile, `"mutatingCalls"`, "step done", "ZB_LOCK_WAIT=0"} { // the scan sees arguments, output, environment
		if !strings.Contains(text, seen) {
			t.Fatalf("the transcript lacks %q: the scan would miss things", seen)
		}
	}
	for name, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("%s appears in the output, arguments or environment of a subprocess", name)
		}
	}
	t.Logf("scanned %d bytes of output, arguments and environment of %d runs: no secret", len(text), runs)

	// The image built from the binary these tests ran.
	testutil.Must(t, exec.Command("docker", "version").Run())
	ctxDir := t.TempDir()
	testutil.Must(t, os.MkdirAll(filepath.Join(ctxDir, "dist"), 0o755))
	copyFile(t, binary, filepath.Join(ctxDir, "dist", "ziti-bootstrap"), 0o755)
	copyFile(t, "/etc/ssl/certs/ca-certificates.crt", filepath.Join(ctxDir, "dist", "ca-certificates.crt"), 0o644)
	copyFile(t, "../../Dockerfile", filepath.Join(ctxDir, "Dockerfile"), 0o644)
	copyFile(t, "../../.dockerignore", filepath.Join(ctxDir, ".dockerignore"), 0o644)
	tag := "ziti-bootstrap:crashtest-" + b.id
	if out, err := exec.Command("docker", "build", "--pull=false", "-q", "-t", tag, ctxDir).CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "image", "rm", "-f", tag).Run() })
	saved := filepath.Join(t.TempDir(), "image.tar")
	if out, err := exec.Command("docker", "save", "-o", saved, tag).CombinedOutput(); err != nil {
		t.Fatalf("docker save: %v\n%s", err, out)
	}
	n, files := scanTar(t, saved, secrets)
	t.Logf("scanned the image %s: %d files, %d bytes in its layers and metadata: no secret", tag, files, n)
}

// scanTar scans every file of the tar at path, and of the tars (plain or gzipped) inside it, for secrets.
func scanTar(t *testing.T, path string, secrets map[string]string) (bytesScanned int64, files int) {
	f, err := os.Open(path)
	testutil.Must(t, err)
	defer f.Close()
	var walk func(r io.Reader, where string)
	walk = func(r io.Reader, where string) {
		tr := tar.NewReader(r)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				return
			}
			testutil.Must(t, err)
			data, err := io.ReadAll(tr)
			testutil.Must(t, err)
			files++
			bytesScanned += int64(len(data))
			name := where + "/" + h.Name
			for k, s := range secrets {
				if bytes.Contains(data, []byte(s)) {
					t.Errorf("%s appears in the image, in %s", k, name)
				}
			}
			switch {
			case bytes.HasPrefix(data, []byte{0x1f, 0x8b}):
				if zr, err := gzip.NewReader(bytes.NewReader(data)); err == nil {
					walk(zr, name)
				}
			case strings.HasSuffix(h.Name, ".tar") || (len(data) > 262 && string(data[257:262]) == "ustar"):
				walk(bytes.NewReader(data), name)
			}
		}
	}
	walk(f, filepath.Base(path))
	if files < 3 {
		t.Fatalf("the saved image has %d files: nothing was scanned", files)
	}
	return bytesScanned, files
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	b, err := os.ReadFile(from)
	testutil.Must(t, err)
	testutil.Must(t, os.WriteFile(to, b, mode))
}
