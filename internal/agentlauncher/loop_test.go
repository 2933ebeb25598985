package agentlauncher

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
)

// fakeEngine is an engine for fault injection: it keeps one container and fails what the test says.
type fakeEngine struct {
	mu         sync.Mutex
	imageErrs  int // ImageID fails this many times
	cur        *docker.ContainerInfo
	calls      []string
	events     chan docker.ContainerEvent
	subscribed chan struct{}
}

func newFake() *fakeEngine {
	return &fakeEngine{events: make(chan docker.ContainerEvent), subscribed: make(chan struct{}, 100)}
}

func (f *fakeEngine) record(c string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
}

func (f *fakeEngine) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeEngine) ImageID(context.Context, string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.imageErrs > 0 {
		f.imageErrs--
		return "", errors.New("engine unavailable")
	}
	return "sha256:aaa", nil
}
func (f *fakeEngine) PullImage(context.Context, string) error { f.record("pull"); return nil }
func (f *fakeEngine) InspectVolume(context.Context, string) (docker.Volume, error) {
	return docker.Volume{}, cerrdefs.ErrNotFound
}
func (f *fakeEngine) CreateVolume(_ context.Context, n string, _ map[string]string) error {
	f.record("create volume " + n)
	return nil
}
func (f *fakeEngine) InspectContainer(context.Context, string) (docker.ContainerInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cur == nil {
		return docker.ContainerInfo{}, cerrdefs.ErrNotFound
	}
	return *f.cur, nil
}
func (f *fakeEngine) CreateContainer(_ context.Context, s docker.ContainerSpec) (string, error) {
	f.record("create")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cur = &docker.ContainerInfo{ID: "c1", Name: s.Name, Status: "created", Labels: s.Labels}
	return "c1", nil
}
func (f *fakeEngine) CopyFiles(context.Context, string, string, []docker.File) error {
	f.record("copy")
	return nil
}
func (f *fakeEngine) StartContainer(context.Context, string) error {
	f.record("start")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cur.Status, f.cur.Running = "running", true
	return nil
}
func (f *fakeEngine) UnpauseContainer(context.Context, string) error { f.record("unpause"); return nil }
func (f *fakeEngine) StopContainer(context.Context, string, time.Duration) error {
	f.record("stop")
	return nil
}
func (f *fakeEngine) ForceRemoveContainer(context.Context, string) error {
	f.record("remove")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cur = nil
	return nil
}
func (f *fakeEngine) ContainerEvents(ctx context.Context, _ string, _ ...string) (<-chan docker.ContainerEvent, <-chan error) {
	errs := make(chan error, 1)
	go func() { <-ctx.Done(); errs <- ctx.Err() }()
	f.subscribed <- struct{}{}
	return f.events, errs
}

// exit simulates the agent's process ending (docker stop): the container is exited.
func (f *fakeEngine) exit() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cur.Status, f.cur.Running, f.cur.ExitCode = "exited", false, 0
}

func testLauncher(t *testing.T, e Engine) (*Launcher, *testutil.SyncBuffer) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte("agent {}"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := testSettings()
	s.FilesDir = dir
	s.ProxyDir = t.TempDir()
	s.DockerHost = "unix://" + filepath.Join(dir, "no-engine.sock") // nothing there: the proxy's calls that pass fail with 502
	logs := &testutil.SyncBuffer{}
	return New(e, s, slog.New(slog.NewTextHandler(logs, nil))), logs
}

func TestRunBacksOffAfterFailuresThenWatchesAndLeavesTheAgentOnStop(t *testing.T) {
	f := newFake()
	f.imageErrs = 3
	l, logs := testLauncher(t, f)
	var mu sync.Mutex
	var waited []time.Duration
	l.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		waited = append(waited, d)
		mu.Unlock()
		return ctx.Err()
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()

	// three failed ensures, then the fourth creates the container and the loop watches
	for range 4 {
		<-f.subscribed
	}
	deadline := time.After(time.Minute)
	for f.status() != "running" {
		select {
		case <-deadline:
			t.Fatalf("the container was not started; calls %v", f.Calls())
		case <-time.After(10 * time.Millisecond):
		}
	}
	mu.Lock()
	if want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}; !equalDurations(waited, want) {
		t.Errorf("waited %v between the failed ensures, want %v", waited, want)
	}
	mu.Unlock()
	if !strings.Contains(logs.String(), "after=\"the last ensure failed\"") {
		t.Errorf("the log does not say what the wait was for:\n%s", logs.String())
	}

	// the agent stops: its die event brings an ensure that starts it again
	f.exit()
	f.events <- docker.ContainerEvent{Action: "die", ID: "c1", Name: "spire_agent", ExitCode: "0"}
	<-f.subscribed
	for f.status() != "running" {
		select {
		case <-deadline:
			t.Fatalf("the exited container was not started again; calls %v", f.Calls())
		case <-time.After(10 * time.Millisecond):
		}
	}

	// SIGTERM: Run returns nil and neither stops nor removes the agent
	before := len(f.Calls())
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil on SIGTERM", err)
	}
	if after := f.Calls()[before:]; len(after) != 0 {
		t.Errorf("calls after SIGTERM: %v, want none", after)
	}
	if f.status() != "running" {
		t.Error("the agent is not running after the launcher stopped")
	}
	want := []string{"create volume sock", "create volume data", "create volume docker", "create", "copy", "start", "start"}
	if got := f.Calls(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("calls = %v, want %v", got, want)
	}
}

func (f *fakeEngine) status() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cur == nil {
		return ""
	}
	return f.cur.Status
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// copyFails makes CopyFiles fail: the created container must not be left behind.
type copyFails struct{ *fakeEngine }

func (c copyFails) CopyFiles(context.Context, string, string, []docker.File) error {
	return errors.New("disk full")
}

func TestEnsureRemovesAContainerItCouldNotComplete(t *testing.T) {
	f := newFake()
	l, _ := testLauncher(t, copyFails{f})
	_, err := l.Ensure(t.Context())
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Ensure = %v, want the copy's error", err)
	}
	if f.cur != nil {
		t.Errorf("a half-made container was left: %+v (calls %v)", f.cur, f.Calls())
	}
}

func TestEnsureRefusesAContainerItDoesNotOwn(t *testing.T) {
	f := newFake()
	f.cur = &docker.ContainerInfo{ID: "u1", Name: "spire_agent", Status: "running", Labels: map[string]string{"app": "mine"}}
	l, _ := testLauncher(t, f)
	_, err := l.Ensure(t.Context())
	if !errors.Is(err, ErrNotOwned) || !strings.Contains(err.Error(), EnvContainer) {
		t.Fatalf("Ensure = %v, want ErrNotOwned naming %s", err, EnvContainer)
	}
	if calls := f.Calls(); len(calls) != 0 {
		t.Errorf("calls on a foreign container: %v", calls)
	}
	// and the healthcheck says the same on one line
	if err := l.Check(t.Context()); err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "not created by the agent launcher") {
		t.Errorf("Check = %q", err)
	}
}

func TestCheckSaysWhyOnOneLine(t *testing.T) {
	f := newFake()
	l, _ := testLauncher(t, f)
	enginePings(t, l.Settings.ProxySocket())
	noProxy := *l
	noProxy.Settings.ProxyDir = t.TempDir()
	d, err := l.Desire(t.Context(), false)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		cur  *docker.ContainerInfo
		want string
	}{
		{"missing", nil, "agent container spire_agent does not exist on this node"},
		{"exited", &docker.ContainerInfo{Status: "exited", ExitCode: 1, FinishedAt: at, RestartCount: 2},
			"agent container spire_agent (c1) is exited (exit code 1 at 2026-12-05T12:00:00Z, restarted 2 times)"},
		{"could not start", &docker.ContainerInfo{Status: "created", Error: "network spire_spire not found"},
			"agent container spire_agent (c1) is created (never started: left by an interrupted ensure): network spire_spire not found"},
		{"starting", &docker.ContainerInfo{Status: "running", Running: true, Health: "starting"}, "is running, health starting"},
		{"unhealthy", &docker.ContainerInfo{Status: "running", Running: true, Health: "unhealthy",
			HealthOutput: "Agent is unhealthy:\nunable to determine health\n"}, "health unhealthy: Agent is unhealthy: unable to determine health"},
		{"healthy", &docker.ContainerInfo{Status: "running", Running: true, Health: "healthy"}, ""},
		{"healthy, but no Docker proxy", &docker.ContainerInfo{Status: "running", Running: true, Health: "healthy"},
			"the agent's Docker proxy does not answer, so no workload can be attested"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.cur = nil
			if tc.cur != nil {
				c := *tc.cur
				c.ID, c.Name, c.Labels = "c1", "spire_agent", d.Spec.Labels
				f.cur = &c
			}
			l := l
			if strings.Contains(tc.name, "no Docker proxy") {
				l = &noProxy
			}
			err := l.Check(t.Context())
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Check = %v, want healthy", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrUnhealthy) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("Check = %q\nwant one line with %q", err, tc.want)
			}
		})
	}
}
