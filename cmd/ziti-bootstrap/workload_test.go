package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spireagent/agenttest"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/bedziti"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/workload"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
)

// `workload` as the Swarm runs it, configured by variables: it logs in with its SVID from the test bed's agent and
// prints a JSON line; `workload healthcheck` then reports it healthy; SIGTERM (a cancelled context) ends it with 0.
func TestWorkloadCommandLogsInAndIsHealthy(t *testing.T) {
	in := testbed.Require(t, "ziti")
	admin := bedziti.Admin(t)
	_, roles, id := bedziti.SpireWorkload(t, admin, "zbt-cli-"+testutil.RandHex(t, 3), 0)
	listen := testutil.FreeAddr(t)
	args := []string{"workload", "--set", "ZITI_CTRL_URL=" + in.Ziti.URL, "--set", "ZITI_CA_FILE=" + in.Ziti.CAFile,
		"--set", "SPIFFE_ENDPOINT_SOCKET=" + agenttest.Socket(t), "--set", "ZB_WORKLOAD_SPIFFE_ID=" + id.String(),
		"--set", "ZB_WORKLOAD_LISTEN=" + listen, "--set", "ZB_WAIT_TIMEOUT=2m"}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, errb := &testutil.SyncBuffer{}, &testutil.SyncBuffer{}
	done := make(chan int, 1)
	go func() { done <- execute(ctx, args, out, errb) }()
	deadline := time.Now().Add(3 * time.Minute)
	for !strings.Contains(out.String(), `"event":"authenticated"`) {
		select {
		case code := <-done:
			t.Fatalf("workload exited with %d\nstdout:\n%s\nstderr:\n%s", code, out, errb)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no login in 3 minutes\nstdout:\n%s\nstderr:\n%s", out, errb)
		}
	}
	code, hout, herr := cli(t, "workload", "healthcheck", "--set", "ZB_WORKLOAD_LISTEN="+listen)
	var st workload.Status
	if code != exitcode.OK || json.Unmarshal([]byte(hout), &st) != nil || !st.Healthy || st.SpiffeID != id.String() {
		t.Errorf("healthcheck: %d %s %s", code, hout, herr)
	}
	cancel()
	if code := <-done; code != exitcode.OK {
		t.Errorf("workload ended with %d after SIGTERM; want 0\n%s", code, errb)
	}
	var auth workload.Event
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var e workload.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("stdout line %q is not a JSON event: %v", line, err)
		}
		if e.Event == workload.EventAuthenticated {
			auth = e
		}
	}
	if auth.ExternalID != id.String() || !ziti.EqualSets(auth.RoleAttributes, roles) {
		t.Errorf("login event %+v; want externalId %s and roles %v", auth, id, roles)
	}

	// a healthcheck with nothing listening fails with exit code 3
	if code, _, _ := cli(t, "workload", "healthcheck", "--set", "ZB_WORKLOAD_LISTEN="+listen); code != exitcode.Unreachable {
		t.Errorf("healthcheck without a workload: exit %d, want %d", code, exitcode.Unreachable)
	}
}

// Without an agent, workload and router-enrol wait until ZB_WAIT_TIMEOUT, then exit with 3 naming the socket;
// the workload also prints each failed attempt as a JSON line.
func TestIdentityCommandsWithoutAnAgentExitUnreachable(t *testing.T) {
	sock := "unix://" + t.TempDir() + "/api.sock"
	code, out, errs := cli(t, "workload", "--set", "SPIFFE_ENDPOINT_SOCKET="+sock, "--set", "ZB_WAIT_TIMEOUT=2s",
		"--set", "ZITI_CTRL_URL=https://127.0.0.1:1", "--set", "ZITI_CA_TOFU=true")
	if code != exitcode.Unreachable || !strings.Contains(errs, strings.TrimPrefix(sock, "unix://")) || !strings.Contains(errs, "SPIRE agent Workload API") {
		t.Errorf("workload: exit %d, stderr %s; want %d naming the socket", code, errs, exitcode.Unreachable)
	}
	var e workload.Event
	first, _, _ := strings.Cut(out, "\n")
	if json.Unmarshal([]byte(first), &e) != nil || e.Event != workload.EventFailed || e.Stage != workload.StageWorkloadAPI || e.Error == "" {
		t.Errorf("workload stdout %q; want JSON lines of failed Workload API attempts", out)
	}

	out2 := t.TempDir() + "/router.jwt"
	code, _, errs = cli(t, "router-enrol", "--server", "https://127.0.0.1:1", "--server-id", "spiffe://zb.test/ziti-bootstrap/router-enrol",
		"--out", out2, "--set", "SPIFFE_ENDPOINT_SOCKET="+sock, "--set", "ZB_WAIT_TIMEOUT=2s")
	if code != exitcode.Unreachable || !strings.Contains(errs, "SPIRE agent Workload API") {
		t.Errorf("router-enrol: exit %d, stderr %s; want %d", code, errs, exitcode.Unreachable)
	}
	code, _, errs = cli(t, "router-enrol", "--server", "http://x", "--server-id", "nope")
	if code != exitcode.InvalidConfig || !strings.Contains(errs, "--out") || !strings.Contains(errs, "ZB_ROUTER_ENROL_SERVER_ID") || !strings.Contains(errs, "ZB_ROUTER_ENROL_URL") {
		t.Errorf("router-enrol with bad flags: exit %d, stderr %s", code, errs)
	}
}
