package testbed

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
)

// CacheDir is where scripts/build-servers.sh keeps the server builds, keyed by version.
func CacheDir() string {
	return cmp.Or(os.Getenv("ZB_CACHE"), "/var/cache/ziti-bootstrap")
}

// Versions reads scripts/versions.env (found by walking up from the working directory).
func Versions() (map[string]string, error) {
	dir, _ := os.Getwd()
	for {
		p := filepath.Join(dir, "scripts", "versions.env")
		if f, err := os.Open(p); err == nil {
			defer f.Close()
			return config.ParseDotenv(f, p)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil, fmt.Errorf("scripts/versions.env not found above the working directory")
		}
		dir = parent
	}
}

// built returns the path of a cached binary, or an error telling how to build it.
func built(tool, versionKey, bin string) (string, error) {
	v, err := Versions()
	if err != nil {
		return "", err
	}
	p := filepath.Join(CacheDir(), tool+"-"+v[versionKey], "bin", bin)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s %s is not built (%s missing): run scripts/build-servers.sh %s", tool, v[versionKey], p, tool)
	}
	return p, nil
}

// proc is a server process started detached (own session), logging to log.
type proc struct {
	name string
	log  string
	pid  int
}

// start launches bin detached; env is added to the environment (secrets go here, never in args).
func start(name, dir, bin string, env []string, args ...string) (*proc, error) {
	return startAs(name, dir, bin, env, nil, args...)
}

func startAs(name, dir, bin string, env []string, cred *syscall.Credential, args ...string) (*proc, error) {
	logPath := filepath.Join(dir, name+".log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Credential: cred}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go cmd.Wait() //nolint:errcheck // reaped; liveness is checked by health probes
	return &proc{name: name, log: logPath, pid: cmd.Process.Pid}, nil
}

// healthy waits for probe, and on failure adds the tail of the process log to the error.
func (p *proc) healthy(ctx context.Context, where string, deadline time.Duration, probe func(context.Context) error) error {
	err := wait.For(ctx, wait.Target{What: p.name, Where: where, Deadline: deadline, Initial: 300 * time.Millisecond, Max: 2 * time.Second}, probe)
	if err != nil {
		return fmt.Errorf("%w\n--- last lines of %s ---\n%s", err, p.log, tail(p.log, 15))
	}
	return nil
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// alive reports whether pid is a running process.
func alive(pid int) bool {
	return pid > 0 && syscall.Kill(pid, 0) == nil
}

// stop sends SIGTERM to the process group of pid, then SIGKILL after grace.
func stop(pid int, grace time.Duration) {
	if pid <= 0 {
		return
	}
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for end := time.Now().Add(grace); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if !alive(pid) {
			return
		}
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// run runs a short command and returns its combined output.
func run(ctx context.Context, env []string, bin string, args ...string) (string, error) {
	return runIn(ctx, "", env, bin, args...)
}

// runIn is run in the directory dir ("": the current one).
func runIn(ctx context.Context, dir string, env []string, bin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", filepath.Base(bin), strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// password returns a random credential for a test server.
func password() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "Zb-" + hex.EncodeToString(b)
}

// prepare returns the paths of a tool's cached binaries bins (see built) and the fresh directory dir/sub the server
// starts in (see fresh): what every Start function does first.
func prepare(dir, sub, tool, versionKey string, bins ...string) (paths []string, home string, err error) {
	for _, b := range bins {
		p, err := built(tool, versionKey, b)
		if err != nil {
			return nil, "", err
		}
		paths = append(paths, p)
	}
	home = filepath.Join(dir, sub)
	if err := fresh(home); err != nil {
		return nil, "", err
	}
	return paths, home, nil
}

// fresh empties dir: a server the test bed (re)starts begins from a clean state, so its credentials always match.
func fresh(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.MkdirAll(dir, 0o700)
}
