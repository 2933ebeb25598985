package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/docker/docker/api/types/swarm"

	"github.com/ziti-bootstrap/ziti-bootstrap/app/deploy"
	"github.com/ziti-bootstrap/ziti-bootstrap/backup"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
)

// restore --swarm: the server is a Swarm service (here a stand-in of the test's own in the test bed's Swarm),
// scaled to 0 around the swap and back to its replica count; a service that does not exist is refused before
// anything is touched, naming the flag.
func TestRestoreSwarm(t *testing.T) {
	b := newBedBackup(t)
	b.spireSet(t)
	c, service := b.standIn(t, "zb-restore-test-")
	target := restoreTarget(t)
	restoreArgs := b.spireOnly(target)
	restore := []string{"restore", "latest", "--yes", "--swarm"}

	t.Run("a service that does not exist changes nothing", func(t *testing.T) {
		before, tasks := fileState(t, target), runningTasks(t, c, service)
		for _, tc := range []struct {
			flags       []string
			stack, want string // $ZB_STACK_SPIRE (as the backup service has it), the service named
		}{
			{[]string{"--spire-service", "zb-no-such-service"}, "", "zb-no-such-service"},
			{[]string{"--stack-prefix", "zb-no-such-"}, "", "zb-no-such-spire_spire-server"},
			{nil, "zb-no-such-stack", "zb-no-such-stack_spire-server"},
		} {
			t.Setenv("ZB_STACK_SPIRE", tc.stack)
			code, out, errs := backupCLI(t, append(append(restore, restoreArgs...), tc.flags...)...)
			if code != exitcode.InvalidConfig || !strings.Contains(errs, "--spire-service") || !strings.Contains(errs, "no service "+tc.want+":") {
				t.Errorf("restore --swarm %v, ZB_STACK_SPIRE=%q: exit %d, want %d naming --spire-service and %s\n%s%s", tc.flags, tc.stack, code,
					exitcode.InvalidConfig, tc.want, out, errs)
			}
		}
		if after := fileState(t, target); after != before {
			t.Errorf("the target was changed: %s, before %s", after, before)
		}
		if after := runningTasks(t, c, service); after != tasks {
			t.Errorf("the running service was disturbed: tasks %s, before %s", after, tasks)
		}
	})

	t.Run("scaled to 0 and back", func(t *testing.T) {
		before, tasks := fileState(t, target), runningTasks(t, c, service)
		out := b.run(t, exitcode.OK, restore, append(restoreArgs, "--spire-service", service)...)
		t.Log(out)
		if !strings.Contains(out, "restored spire") || !strings.Contains(out, "Swarm service "+service) {
			t.Errorf("restore output:\n%s", out)
		}
		if after := fileState(t, target); after == before {
			t.Errorf("the target was not replaced: %s", after)
		}
		if n, err := c.Replicas(context.Background(), service); err != nil || n != 2 {
			t.Errorf("replicas after the restore: %d, %v; want 2", n, err)
		}
		// the service was stopped: its tasks now are new ones
		after := runningTasks(t, c, service)
		if len(strings.Split(after, ",")) != 2 {
			t.Errorf("running tasks after the restore: %s; want two", after)
		}
		for _, old := range strings.Split(tasks, ",") {
			if strings.Contains(after, old) {
				t.Errorf("task %s still runs after the restore (%s): the service was not stopped", old, after)
			}
		}
	})
}

// standIn starts a Swarm service of two replicas in the test bed's Swarm, named prefix + random hex, that stands
// in for the SPIRE server: restore --swarm stops and starts it. It and the client are removed when the test ends.
func (b *bedBackup) standIn(t *testing.T, prefix string) (*docker.Client, string) {
	t.Helper()
	c, err := docker.New(b.in.Docker.Host, nil)
	mustNoErr(t, err)
	t.Cleanup(func() { c.Close() })
	service := prefix + randomHex(3)
	testbed.SleepService(t, c, service, 2)
	return c, service
}

// runningTasks lists the IDs of the service's running tasks, comma-separated.
func runningTasks(t *testing.T, c *docker.Client, service string) string {
	t.Helper()
	tasks, err := c.Tasks(context.Background(), service)
	mustNoErr(t, err)
	var ids []string
	for _, k := range tasks {
		if k.Status.State == swarm.TaskStateRunning {
			ids = append(ids, k.ID)
		}
	}
	return strings.Join(ids, ",")
}

// restoreChildEnv carries a child's arguments (TestRestoreChild).
const restoreChildEnv = "ZB_TEST_RESTORE_CHILD"

// TestRestoreChild is the child process of TestRestoreSwarmKilledAtEachStep: ziti-bootstrap with the arguments in
// $ZB_TEST_RESTORE_CHILD (JSON), which kills itself at $ZB_RESTORE_CRASH_AT. It does nothing in a normal run.
func TestRestoreChild(t *testing.T) {
	env := os.Getenv(restoreChildEnv)
	if env == "" {
		t.Skip("helper of TestRestoreSwarmKilledAtEachStep")
	}
	var args []string
	mustNoErr(t, json.Unmarshal([]byte(env), &args))
	code, out, errs := backupCLI(t, args...)
	fmt.Print(out, errs)
	os.Exit(code)
}

// restore --swarm killed (SIGKILL) at each step — before the stop, after it, in the middle of the swap, before
// the start — on the test bed's Swarm: the service's replica count is in its labels from before the stop, the
// database is whole at every moment, and the next restore (or, for the service, backup.ResumeSwarm, up's hook)
// brings the service back to its count and completes the restore.
func TestRestoreSwarmKilledAtEachStep(t *testing.T) {
	b := newBedBackup(t)
	// a killed run's lock expires after ZB_LOCK_TTL; the next one waits for it
	t.Setenv("ZB_LOCK_TTL", "6s")
	t.Setenv("ZB_LOCK_WAIT", "2m")
	b.spireSet(t)
	c, service := b.standIn(t, "zb-restore-kill-")
	ctx := context.Background()
	for _, step := range []string{"before-stop", "after-stop", "mid-swap", "before-start"} {
		t.Run(step, func(t *testing.T) {
			target := restoreTarget(t)
			mustNoErr(t, os.WriteFile(target+"-wal", []byte("the old database's log"), 0o600))
			args := append(append([]string{"restore", "latest", "--yes", "--swarm", "--spire-service", service}, b.args(target)...),
				"--prefix", b.prefix, "--sources", "spire")
			j, _ := json.Marshal(args)
			tasks := runningTasks(t, c, service)
			cmd := exec.Command(os.Args[0], "-test.run=^TestRestoreChild$")
			cmd.Env = append(os.Environ(), restoreChildEnv+"="+string(j), backup.CrashEnv+"="+step)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("restore killed at %s: %v\n%s", step, err, out)
			}
			labels, err := c.ServiceLabels(ctx, service)
			mustNoErr(t, err)
			if labels[backup.LabelReplicas] != "2" {
				t.Errorf("killed at %s: the service's labels %v do not hold its replica count 2", step, labels)
			}
			if after := runningTasks(t, c, service); step == "before-stop" && after != tasks {
				t.Errorf("recording the journal restarted the service's tasks: %s, before %s", after, tasks)
			}
			head := make([]byte, 16)
			f, err := os.Open(target)
			mustNoErr(t, err)
			_, _ = f.Read(head)
			f.Close()
			restored := string(head) == "SQLite format 3\x00"
			if want := step == "before-start"; restored != want {
				t.Errorf("killed at %s: the database is %q; want the restored one: %v", step, head, want)
			}
			if step == "mid-swap" { // up's hook brings the service back; the next restore then tidies the files
				var out bytes.Buffer
				g := &globals{stdout: &out, stderr: &out, log: slog.New(slog.DiscardHandler)}
				if err := deploy.FinishInterruptedRestores(ctx, g.cli(), c); err != nil || !strings.Contains(out.String(), "Swarm service "+service+" brought back") {
					t.Fatalf("up's hook: %v\n%s; want %s brought back", err, out.String(), service)
				}
				if n, err := c.Replicas(ctx, service); err != nil || n != 2 || runningTasks(t, c, service) == "" {
					t.Fatalf("after ResumeSwarm: %d replicas, %v", n, err)
				}
			}
			next := b.run(t, exitcode.OK, args)
			t.Log(next)
			if step != "mid-swap" && !strings.Contains(next, "interrupted restore: spire: Swarm service "+service) {
				t.Errorf("the next restore does not say it finished the interrupted one:\n%s", next)
			}
			if !strings.Contains(next, "restored spire") {
				t.Errorf("the next restore:\n%s", next)
			}
			if n, err := c.Replicas(ctx, service); err != nil || n != 2 {
				t.Errorf("replicas after the next restore: %d, %v; want 2", n, err)
			}
			if tasks := strings.Split(runningTasks(t, c, service), ","); len(tasks) != 2 {
				t.Errorf("running tasks: %v; want 2", tasks)
			}
			if labels, _ := c.ServiceLabels(ctx, service); labels[backup.LabelReplicas] != "" || labels[backup.LabelStage] != "" {
				t.Errorf("journal left on the service: %v", labels)
			}
			if _, err := os.Stat(target + ".zb-restore"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the snapshot's copy is still beside the database")
			}
			if _, err := os.Stat(target + "-wal"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the old database's log is beside the restored database")
			}
		})
	}
}
