package backup_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/swarm"

	"github.com/ziti-bootstrap/ziti-bootstrap/backup"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
)

// TestSwarmServiceRestore restores a file whose server is a Swarm service of the test bed's Swarm, stopped and
// started through the Docker client (SwarmService): while the file is swapped the service has no task left
// running, and afterwards it is back at its replica count. A service that does not exist changes nothing.
func TestSwarmServiceRestore(t *testing.T) {
	in := testbed.Require(t, "docker")
	testbed.LockSwarmApply(t)
	c, err := docker.New(in.Docker.Host, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	name := "zb-bk-swarm-" + hexID(3)
	testbed.SleepService(t, c, name, 2)

	dir := t.TempDir()
	db, snap := filepath.Join(dir, "ctrl.db"), filepath.Join(dir, "snapshot")
	mustWrite(t, db, "state before the restore")
	mustWrite(t, snap, "state of the snapshot")

	t.Run("scaled to 0 while the file is swapped, then back", func(t *testing.T) {
		var atSwap string
		svc := &counted{Service: &backup.SwarmService{Scaler: c, Service: name}, beforeStart: func(ctx context.Context) error {
			b, _ := os.ReadFile(db)
			atSwap = fmt.Sprintf("file %q, %s", b, taskSummary(t, c, name))
			return nil
		}}
		target := &backup.FileTarget{SourceName: "ziti", Path: db, Format: "bbolt", Service: svc}
		if err := target.Restore(ctx, snap, "set-1"); err != nil {
			t.Fatal(err)
		}
		t.Logf("at the swap: %s", atSwap)
		if want := `file "state of the snapshot", 0 task(s) running`; !strings.HasPrefix(atSwap, want) {
			t.Errorf("at the swap: %s; want %s", atSwap, want)
		}
		if svc.stops != 1 || svc.starts != 1 {
			t.Errorf("stopped %d, started %d times; want once each", svc.stops, svc.starts)
		}
		if n, err := c.Replicas(ctx, name); err != nil || n != 2 {
			t.Errorf("replicas after the restore: %d, %v; want 2", n, err)
		}
		if got := taskSummary(t, c, name); !strings.HasPrefix(got, "2 task(s) running") {
			t.Errorf("after the restore: %s; want 2 running", got)
		}
		if b, _ := os.ReadFile(db + ".before-restore-set-1"); string(b) != "state before the restore" {
			t.Errorf("the replaced file is not kept: %q", b)
		}
	})

	t.Run("a service that does not exist changes nothing", func(t *testing.T) {
		before := fileID(t, db)
		missing := "zb-bk-no-such-service-" + hexID(3)
		target := &backup.FileTarget{SourceName: "ziti", Path: db, Format: "bbolt", Service: &backup.SwarmService{Scaler: c, Service: missing}}
		err := target.Restore(ctx, snap, "set-2")
		if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "nothing was changed") {
			t.Fatalf("restore with a missing Swarm service: %v; want an error naming it and saying nothing was changed", err)
		}
		t.Logf("refused: %v", err)
		if after := fileID(t, db); after != before {
			t.Errorf("the file was touched: %s, before %s", after, before)
		}
		if left, _ := filepath.Glob(db + ".zb-restore*"); len(left) > 0 {
			t.Errorf("left behind: %v", left)
		}
		if got := taskSummary(t, c, name); !strings.HasPrefix(got, "2 task(s) running") {
			t.Errorf("the other service was disturbed: %s", got)
		}
	})
}

// taskSummary says how many of the service's tasks run, and the states of all of them.
func taskSummary(t *testing.T, c *docker.Client, service string) string {
	t.Helper()
	tasks, err := c.Tasks(context.Background(), service)
	if err != nil {
		t.Fatal(err)
	}
	running := 0
	states := map[swarm.TaskState]int{}
	for _, k := range tasks {
		states[k.Status.State]++
		if k.Status.State == swarm.TaskStateRunning {
			running++
		}
	}
	return fmt.Sprintf("%d task(s) running (states %v)", running, states)
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
