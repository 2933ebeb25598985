package backup

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestProcessServiceStopsAndStarts(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "started")
	s := &ProcessService{Name: "sleeper", Command: []string{"sh", "-c", "touch " + marker + "; trap 'exit 0' TERM; while :; do sleep 0.1; done"},
		LogFile: filepath.Join(dir, "log"), StopTimeout: 5 * time.Second,
		Ready: func(context.Context) error { _, err := os.Stat(marker); return err }}
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	pid := s.Current()
	if !processAlive(pid) {
		t.Fatalf("process %d not running after Start", pid)
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if processAlive(pid) {
		t.Fatalf("process %d still running after Stop", pid)
	}
	if err := s.Stop(ctx); err != nil { // stopping a stopped server is fine
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil || s.Current() == pid || !processAlive(s.Current()) {
		t.Fatalf("restart: %v (pid %d, before %d)", err, s.Current(), pid)
	}
	_ = s.Stop(ctx)
}

func TestProcessServiceKillsAfterGrace(t *testing.T) {
	s := &ProcessService{Name: "stubborn", Command: []string{"sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"}, StopTimeout: 300 * time.Millisecond}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if processAlive(s.Current()) || time.Since(start) > 5*time.Second {
		t.Fatalf("not killed (%s)", time.Since(start))
	}
}

func TestExecServiceReportsTheFailingCommand(t *testing.T) {
	s := &ExecService{Name: "spire", StopCommand: []string{"sh", "-c", "echo no such unit >&2; exit 5"}, StartCommand: []string{"true"}}
	err := s.Stop(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no such unit") || !strings.Contains(err.Error(), "stop spire") {
		t.Fatalf("stop: %v", err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
}

type fakeScaler struct {
	replicas uint64
	log      []string
	failTo0  error // scaling to 0 fails so
	labels   map[string]string
}

func (f *fakeScaler) ServiceLabels(context.Context, string) (map[string]string, error) {
	return maps.Clone(f.labels), nil
}

func (f *fakeScaler) SetServiceLabels(_ context.Context, _ string, l map[string]string) error {
	if f.labels == nil {
		f.labels = map[string]string{}
	}
	for k, v := range l {
		if v == "" {
			delete(f.labels, k)
		} else {
			f.labels[k] = v
		}
	}
	return nil
}

func (f *fakeScaler) Replicas(context.Context, string) (uint64, error) { return f.replicas, nil }
func (f *fakeScaler) Scale(_ context.Context, svc string, n uint64) error {
	f.log = append(f.log, fmt.Sprintf("%s=%d", svc, n))
	f.replicas = n
	if n == 0 {
		return f.failTo0
	}
	return nil
}

func TestSwarmServiceScalesToZeroAndBack(t *testing.T) {
	f := &fakeScaler{replicas: 2}
	s := &SwarmService{Scaler: f, Service: "openziti_ziti-controller"}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.log, " "); got != "openziti_ziti-controller=0 openziti_ziti-controller=2" {
		t.Fatalf("scaled %s", got)
	}
	f.log = nil
	f.failTo0 = errors.New("a task did not end")
	if err := s.Stop(context.Background()); err == nil || !strings.Contains(err.Error(), "openziti_ziti-controller") || !strings.Contains(err.Error(), "scaled back to 2") {
		t.Fatalf("failed scale: %v", err)
	}
	if got := strings.Join(f.log, " "); got != "openziti_ziti-controller=0 openziti_ziti-controller=2" || f.replicas != 2 {
		t.Fatalf("a failed stop left the service at %d replicas (%s); want it scaled back to 2", f.replicas, got)
	}
	if len(f.labels) != 0 {
		t.Fatalf("journal left after the service was back: %v", f.labels)
	}
}

// The replica count lives in the service's labels from before the stop until the start: a restore that dies at 0
// leaves it there, and the next one (a new SwarmService: nothing in memory) brings the service back to it, even
// after recording it again (Record keeps an interrupted restore's count).
func TestSwarmServiceJournal(t *testing.T) {
	f := &fakeScaler{replicas: 3}
	s := &SwarmService{Scaler: f, Service: "spire_spire-server"}
	if err := s.Record(context.Background(), "20261126T033700Z-1a2b"); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f.labels[LabelReplicas] != "3" || f.labels[LabelStage] != "stopped" || f.labels[LabelSet] != "20261126T033700Z-1a2b" {
		t.Fatalf("journal %v", f.labels)
	}
	// the restore dies here; the next records again (the service is at 0 now), then is itself interrupted
	next := &SwarmService{Scaler: f, Service: "spire_spire-server"}
	if err := next.Record(context.Background(), "20261127T033700Z-1a2b"); err != nil || f.labels[LabelReplicas] != "3" {
		t.Fatalf("record over an interrupted restore: %v, %v", err, f.labels)
	}
	did, err := Recover(context.Background(), []Target{&FileTarget{SourceName: "spire", Path: filepath.Join(t.TempDir(), "db"), Service: next}}, nil)
	if err != nil || len(did) != 1 || f.replicas != 3 || len(f.labels) != 0 {
		t.Fatalf("recover: %v, %v: replicas %d, labels %v; want 3 and none", did, err, f.replicas, f.labels)
	}
	// and a service recorded but never reached is forgotten
	if err := s.Record(context.Background(), "x"); err != nil {
		t.Fatal(err)
	}
	if err := s.Forget(context.Background()); err != nil || len(f.labels) != 0 {
		t.Fatalf("forget: %v, %v", err, f.labels)
	}
}

// A failing stop changes nothing; a failing start after the replacement names the kept file.
func TestFileTargetFailures(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ctrl.db")
	snap := filepath.Join(dir, "snap")
	if err := os.WriteFile(path, []byte("old"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(snap, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	stopFails := &ExecService{Name: "ziti", StopCommand: []string{"false"}, StartCommand: []string{"true"}}
	tg := &FileTarget{SourceName: "ziti", Path: path, Format: "bbolt", Service: stopFails}
	if err := tg.Restore(context.Background(), snap, "S1"); err == nil || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("restore with a failing stop: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Fatal("the file changed although the server did not stop")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("left behind: %v", entries)
	}
	startFails := &ExecService{Name: "ziti", StopCommand: []string{"true"}, StartCommand: []string{"false"}}
	tg.Service = startFails
	err := tg.Restore(context.Background(), snap, "S1")
	if err == nil || !strings.Contains(err.Error(), path+".before-restore-S1") {
		t.Fatalf("restore with a failing start: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "new" {
		t.Fatal("not replaced")
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v, want the old file's 0640", st.Mode().Perm())
	}
	if b, _ := os.ReadFile(path + ".before-restore-S1"); string(b) != "old" {
		t.Fatal("old file not kept")
	}
}
