package main

import (
	"context"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/swarm"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
)

// restore --swarm: the server is a Swarm service (here a stand-in of the test's own in the test bed's Swarm),
// scaled to 0 around the swap and back to its replica count; a service that does not exist is refused before
// anything is touched, naming the flag.
func TestRestoreSwarm(t *testing.T) {
	b := newBedBackup(t)
	backupArgs := append(b.args(b.spireDatastore), "--prefix", b.prefix, "--sources", "spire")
	b.run(t, exitcode.OK, []string{"backup"}, backupArgs...)
	c, err := docker.New(b.in.Docker.Host, nil)
	mustNoErr(t, err)
	defer c.Close()
	service := "zb-restore-test-" + randomHex(3)
	testbed.SleepService(t, c, service, 2)
	target := restoreTarget(t)
	restoreArgs := append(b.args(target), "--prefix", b.prefix, "--sources", "spire")
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
