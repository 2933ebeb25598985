package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
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

// execEnv, set in a child's environment, makes the test binary run ziti-bootstrap with its arguments (see
// TestMain): tests start the CLI as separate processes, e.g. under another group, which the SPIRE agent's unix
// attestor tells apart.
const execEnv = "ZB_TEST_EXEC_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(execEnv) == "1" {
		main()
	}
	os.Exit(m.Run())
}

// child is ziti-bootstrap run by the test binary as a process of group gid, with env added to the test's.
func child(gid int, env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), execEnv+"=1"), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(os.Getuid()), Gid: uint32(gid)}}
	return cmd
}

// The router enrolment server and a router's `router-enrol` as separate processes, each with the SVID the test
// bed's agent gives its group: the router gets its JWT in a private file, then the pending one again; a
// workload that is not a router is refused with exit code 4; the server's healthcheck passes; SIGTERM stops it.
func TestRouterEnrolCommands(t *testing.T) {
	in := testbed.Require(t, "ziti")
	sfx := testutil.RandHex(t, 3)
	// Groups the host's /etc/group names (daemon, bin, sys): the test bed's static spire-agent 1.13.3 looks up the
	// caller's group name and crashes (SIGSEGV in getgrgid_r, NSS "systemd" in a static glibc) for a gid that
	// /etc/group does not name.
	const serverGID, routerGID, appGID = 1, 2, 3
	serverID := agenttest.RegisterGID(t, "zbt-cli-"+sfx+"/router-enrol", 0, serverGID)
	routerID := agenttest.RegisterGID(t, "zbt-cli-"+sfx+"/ziti-router", 0, routerGID)
	agenttest.RegisterGID(t, "zbt-cli-"+sfx+"/app", 0, appGID)
	name := "zbt-cli-er-" + sfx
	admin := bedziti.Admin(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if r, ok, _ := admin.FindEdgeRouter(ctx, name); ok {
			_ = admin.DeleteEdgeRouter(ctx, r.ID)
		}
	})

	dir := t.TempDir()
	pwd := filepath.Join(dir, "ziti_pwd")
	testutil.Must(t, os.WriteFile(pwd, []byte(in.Ziti.Password), 0o600))
	listen := testutil.FreeAddr(t)
	common := []string{"SPIFFE_ENDPOINT_SOCKET=" + agenttest.Socket(t), "ZB_WAIT_TIMEOUT=2m"}
	serverEnv := append([]string{"ZITI_CTRL_URL=" + in.Ziti.URL, "ZITI_CA_FILE=" + in.Ziti.CAFile, "ZITI_USER=" + in.Ziti.User,
		"ZITI_PWD_FILE=" + pwd, "ZB_ROUTER_IDS=" + routerID.String() + "=" + name + ":public,zbt-" + sfx,
		"ZB_ROUTER_ENROL_LISTEN=" + listen}, common...)
	server := child(serverGID, serverEnv, "router-enrol-server")
	var serverLog bytes.Buffer
	server.Stdout, server.Stderr = &serverLog, &testutil.SyncBuffer{}
	logs := server.Stderr.(*testutil.SyncBuffer)
	testutil.Must(t, server.Start())
	exited := make(chan error, 1)
	go func() { exited <- server.Wait() }()
	t.Cleanup(func() { _ = server.Process.Kill() }) // an error once it has exited

	// healthy within 2 minutes (it waits for its SVID and the controller first)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, err := child(serverGID, common, "router-enrol-server", "healthcheck", "--set", "ZB_ROUTER_ENROL_LISTEN="+listen).CombinedOutput()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not healthy after 2 minutes: %v %s\nserver log:\n%s", err, out, logs)
		}
		select {
		case err := <-exited:
			t.Fatalf("server exited: %v\n%s", err, logs)
		case <-time.After(time.Second):
		}
	}

	jwtFile := filepath.Join(dir, "router.jwt")
	enrol := func(gid int, extra ...string) (int, string) {
		args := append([]string{"router-enrol", "--server", "https://" + listen, "--server-id", serverID.String(), "--out", jwtFile}, extra...)
		out, err := child(gid, common, args...).CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, string(out)
	}
	code, out := enrol(routerGID)
	if code != exitcode.OK || !strings.Contains(out, "edge router "+name) || !strings.Contains(out, ": created;") {
		t.Fatalf("router-enrol: exit %d\n%s\nserver log:\n%s", code, out, logs)
	}
	fi, err := os.Stat(jwtFile)
	testutil.Must(t, err)
	jwt, _ := os.ReadFile(jwtFile)
	r, ok, err := admin.FindEdgeRouter(testutil.Context(t, time.Minute), name)
	if err != nil || !ok || r.JWT != string(jwt) || fi.Mode().Perm() != 0o600 || !ziti.EqualSets(r.RoleAttributes, []string{"public", "zbt-" + sfx}) {
		t.Fatalf("router %+v (%v, %v); JWT file mode %v, same JWT %v", r, ok, err, fi.Mode().Perm(), r.JWT == string(jwt))
	}
	if code, out := enrol(routerGID); code != exitcode.OK || !strings.Contains(out, ": pending;") {
		t.Errorf("second router-enrol: exit %d\n%s", code, out)
	}
	if got, _ := os.ReadFile(jwtFile); string(got) != string(jwt) {
		t.Error("the second call wrote another JWT")
	}
	if code, out := enrol(appGID); code != exitcode.StepFailed || !strings.Contains(out, "HTTP 403") || !strings.Contains(out, "not mapped to a router") {
		t.Errorf("router-enrol with a workload's SVID: exit %d, want %d\n%s", code, exitcode.StepFailed, out)
	}
	if code, out := enrol(routerGID, "--server-id", "spiffe://zb.test/somebody-else"); code != exitcode.InvalidConfig || !strings.Contains(out, serverID.String()) {
		t.Errorf("router-enrol expecting another server: exit %d, want %d\n%s", code, exitcode.InvalidConfig, out)
	}

	testutil.Must(t, server.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("server after SIGTERM: %v\n%s", err, logs)
		}
	case <-time.After(time.Minute):
		t.Errorf("server still running a minute after SIGTERM")
	}
	for _, want := range []string{"router enrolment server listening", "action=created", "not mapped to a router"} {
		if !strings.Contains(logs.String(), want) && !strings.Contains(logs.String(), strings.ReplaceAll(want, "action=", `"action":"`)) {
			t.Errorf("server log does not say %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs.String()+serverLog.String(), in.Ziti.Password) {
		t.Error("the admin password appears in the server's output")
	}
}

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
