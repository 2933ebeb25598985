package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
)

// The Dockerfile builds here without pulling anything: a static binary on scratch that runs as a non-root user.
func TestImageBuildsFromScratchAndRunsAsNonRoot(t *testing.T) {
	testbed.Require(t, "docker")
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	ctxDir := t.TempDir()
	run := func(dir string, env []string, name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	os.MkdirAll(filepath.Join(ctxDir, "dist"), 0o755)
	run(root, []string{"CGO_ENABLED=0"}, "go", "build", "-trimpath", "-o", filepath.Join(ctxDir, "dist", "ziti-bootstrap"), "./cmd/ziti-bootstrap")
	ca, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(ctxDir, "dist", "ca-certificates.crt"), ca, 0o644)
	for _, f := range []string{"Dockerfile", ".dockerignore"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(ctxDir, f), b, 0o644)
	}
	tag := "ziti-bootstrap:test-" + filepath.Base(ctxDir)
	run(ctxDir, nil, "docker", "build", "--pull=false", "-q", "-t", tag, ".")
	t.Cleanup(func() { exec.Command("docker", "image", "rm", "-f", tag).Run() })
	if user := run(ctxDir, nil, "docker", "image", "inspect", tag, "--format", "{{.Config.User}}"); user != "65532:65532" {
		t.Errorf("image user %q, want 65532:65532", user)
	}
	if out := run(ctxDir, nil, "docker", "run", "--rm", tag, "version"); !strings.HasPrefix(out, "ziti-bootstrap ") {
		t.Errorf("docker run version: %q", out)
	}
	// Invalid configuration inside the container exits 2 and names the variables.
	cmd := exec.Command("docker", "run", "--rm", tag, "plan")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "ZITI_PWD") {
		t.Errorf("docker run plan without configuration: %v\n%s", err, out)
	}
}
