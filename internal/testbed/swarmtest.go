package testbed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RequireSwarm returns the multi-node test bed name for an integration test, starting it when it does not run
// (UpSwarm: idempotent; a cold start takes minutes). With -short it skips the test; otherwise a test bed that
// cannot be built fails it, so CI never skips silently. The test holds the bed alone until it ends (a file lock
// across test processes): tests stop nodes and count containers on every node.
func RequireSwarm(t testing.TB, name string) *SwarmBed {
	t.Helper()
	if testing.Short() {
		t.Skip("multi-node integration test: skipped with -short")
	}
	lockFile(t, "swarm-"+name+".lock")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	bed, err := UpSwarm(ctx, name, testLog{t})
	if err != nil {
		t.Fatalf("multi-node test bed %s: %v", name, err)
	}
	return bed
}

// lockFile takes an exclusive lock on StateDir/locks/name until the test ends. A wait of a second or more is
// logged: it is part of the test's time in the slowest-tests report (scripts/test.sh), but not the test's cost.
func lockFile(t testing.TB, name string) {
	t.Helper()
	t0 := time.Now()
	unlock, err := flock(name)
	if err != nil {
		t.Fatal(err)
	}
	if w := time.Since(t0); w >= time.Second {
		t.Logf("waited %s for the test bed lock %s", w.Round(100*time.Millisecond), name)
	}
	t.Cleanup(unlock)
}

// flock takes an exclusive lock on StateDir/locks/name (shared by every process on this machine), waiting for
// it, and returns its release.
func flock(name string) (func(), error) {
	dir := filepath.Join(StateDir(), "locks")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

type testLog struct{ t testing.TB }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// ProbeImage builds the image of the probe command (internal/testbed/probe: a static HTTP server and fan-out
// client) and returns its tag (see StaticImage).
func ProbeImage(ctx context.Context) (string, error) {
	return StaticImage(ctx, "./internal/testbed/probe", "zb-testbed/probe")
}

// StaticImage builds the Go main package pkg (a path relative to the repository's root) as a static binary in an
// image FROM scratch whose entrypoint it is, tagged repo:<hash of the binary> on the host's engine, and returns
// the tag. An unchanged binary keeps its tag and is not built again. Copy it into the nodes with LoadImages.
func StaticImage(ctx context.Context, pkg, repo string) (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "zb-image")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	name := filepath.Base(pkg)
	bin := filepath.Join(dir, name)
	if _, err := runIn(ctx, root, []string{"CGO_ENABLED=0"}, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, pkg); err != nil {
		return "", err
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	tag := repo + ":" + hex.EncodeToString(sum[:6])
	if _, err := run(ctx, nil, "docker", "image", "inspect", tag); err == nil {
		return tag, nil
	}
	df := fmt.Sprintf("FROM scratch\nCOPY %s /%s\nENTRYPOINT [\"/%s\"]\n", name, name, name)
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		return "", err
	}
	if _, err := run(ctx, nil, "docker", "build", "-q", "-t", tag, dir); err != nil {
		return "", fmt.Errorf("build %s: %w", tag, err)
	}
	return tag, nil
}
