package agentlauncher_test

import (
	"context"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/agentlauncher"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/sockproxy"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spire"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
)

// agentConf is the agent's configuration for the test bed's SPIRE server (on the host's loopback: the agent runs
// with network host). KeyManager "disk" in the data volume: a replaced container keeps the agent's identity (a
// join token attests only once).
const agentConf = `agent {
  data_dir = "/var/lib/spire/agent"
  log_level = "{{level}}"
  server_address = "127.0.0.1"
  server_port = "8081"
  socket_path = "/run/spire/agent/public/api.sock"
  trust_domain = "{{td}}"
  trust_bundle_path = "/etc/spire/agent/trust-bundle.crt"
  join_token = "{{token}}"
}
plugins {
  NodeAttestor "join_token" {
    plugin_data {}
  }
  KeyManager "disk" {
    plugin_data { directory = "/var/lib/spire/agent" }
  }
  WorkloadAttestor "docker" {
    plugin_data { docker_socket_path = "unix://{{docker}}" }
  }
}
`

// bed is one run of the launcher against the test bed's engine and SPIRE server.
type bed struct {
	t   *testing.T
	ctx context.Context
	// docker is the Engine, for the test's own setup and checks; the launcher has only engine, its Docker proxy
	// (policy agent-launcher, as the service spire-agent-launcher-docker serves it), whose log is proxyLog
	docker   *docker.Client
	engine   *docker.Client
	proxyLog *testutil.SyncBuffer
	counter  *calls.Counter
	spire    *spire.Client
	settings agentlauncher.Settings
	prefix   string
	td       string
	agentID  string
	log      *testutil.SyncBuffer

	mu    sync.Mutex
	loops []func() // stop the running loops
}

func newBed(t *testing.T) *bed {
	in := testbed.Require(t, "docker")
	testbed.Require(t, "spire")
	ctx := testutil.Context(t, 15*time.Minute)
	v, err := testbed.Versions()
	testutil.Must(t, err)
	b := &bed{t: t, ctx: ctx, counter: calls.New(), prefix: "zbtest-launcher-" + testutil.RandHex(t, 4), td: in.Spire.TrustDomain, log: &testutil.SyncBuffer{}}
	b.docker, err = docker.New(in.Docker.Host, b.counter)
	testutil.Must(t, err)
	t.Cleanup(func() { b.docker.Close() })
	image := "zb-local/spire-agent:" + strings.TrimPrefix(v["SPIRE_VERSION"], "v")
	if _, err := b.docker.ImageID(ctx, image); err != nil {
		t.Fatalf("%v: build it with scripts/images.sh spire", err)
	}
	b.spire, err = spire.Dial(ctx, in.Spire.Socket, nil)
	testutil.Must(t, err)
	t.Cleanup(func() { b.spire.Close() })

	token, err := b.spire.CreateJoinToken(ctx, 10*time.Minute, "")
	testutil.Must(t, err)
	b.agentID = fmt.Sprintf("spiffe://%s/spire/agent/join_token/%s", b.td, token)
	_, roots, err := b.spire.X509Bundle(ctx)
	testutil.Must(t, err)
	var bundle []byte
	for _, r := range roots {
		bundle = append(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.Raw})...)
	}
	files := t.TempDir()
	testutil.Must(t, os.WriteFile(filepath.Join(files, "trust-bundle.crt"), bundle, 0o644))
	b.settings = agentlauncher.Settings{
		Image: image, Container: b.prefix + "-agent", Namespace: b.prefix, Network: "host", FilesDir: files,
		SocketVolume: b.prefix + "-socket", DataVolume: b.prefix + "-data", ProxyVolume: b.prefix + "-docker",
		DockerHost: in.Docker.Host,
	}
	t.Cleanup(b.cleanup)
	// the launcher runs here, on the node: it serves the agent's proxy in the volume's directory on the node (in
	// the Swarm, its task mounts the volume)
	testutil.Must(t, b.docker.CreateVolume(ctx, b.settings.ProxyVolume, map[string]string{docker.NamespaceLabel: b.prefix}))
	vol, err := b.docker.InspectVolume(ctx, b.settings.ProxyVolume)
	testutil.Must(t, err)
	b.settings.ProxyDir = vol.Mountpoint
	b.writeConf(token, "DEBUG")
	b.settings.DockerHost = b.serveLaunchersProxy(in.Docker.Host)
	b.engine, err = docker.New(b.settings.DockerHost, b.counter)
	testutil.Must(t, err)
	t.Cleanup(func() { b.engine.Close() })
	return b
}

// serveLaunchersProxy serves the launcher's Docker proxy (policy agent-launcher of the bed's settings) in front
// of the Engine at host until the test ends, as the service spire-agent-launcher-docker does, and returns its
// DOCKER_HOST.
func (b *bed) serveLaunchersProxy(host string) string {
	b.proxyLog = &testutil.SyncBuffer{}
	sock := filepath.Join(b.t.TempDir(), "docker.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	h := sockproxy.Handler(agentlauncher.ProxyPolicy(b.settings), strings.TrimPrefix(host, "unix://"), slog.New(slog.NewTextHandler(b.proxyLog, nil)))
	go func() { done <- sockproxy.Serve(ctx, sock, h) }()
	b.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.t.Errorf("the launcher's Docker proxy: %v", err)
		}
	})
	b.waitFor("the launcher's Docker proxy answers", func() (bool, string) {
		err := sockproxy.Ping(b.ctx, sock)
		return err == nil, fmt.Sprint(err)
	})
	return sockproxy.UnixURL(sock)
}

func (b *bed) writeConf(token, level string) {
	conf := strings.NewReplacer("{{level}}", level, "{{td}}", b.td, "{{token}}", token, "{{docker}}", agentlauncher.DockerSocket).Replace(agentConf)
	testutil.Must(b.t, os.WriteFile(filepath.Join(b.settings.FilesDir, agentlauncher.ConfigFile), []byte(conf), 0o600))
}

// cleanup stops the loops (else they would bring the agent back), then removes what the test made.
func (b *bed) cleanup() {
	b.mu.Lock()
	for _, stop := range b.loops {
		stop()
	}
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if b.t.Failed() {
		if o, e, err := b.docker.ContainerLogs(ctx, b.settings.Container); err == nil {
			b.t.Logf("agent container logs:\n%s%s", o, tailLines(e, 60))
		}
		b.t.Logf("launcher log:\n%s", b.log.String())
		b.t.Logf("the launcher's Docker proxy's log:\n%s", b.proxyLog.String())
	}
	if err := b.docker.ForceRemoveContainer(ctx, b.settings.Container); err != nil && !docker.IsNotFound(err) {
		b.t.Errorf("cleanup: %v", err)
	}
	for _, v := range []string{b.settings.SocketVolume, b.settings.DataVolume, b.settings.ProxyVolume} {
		if err := b.docker.RemoveVolume(ctx, v); err != nil && !docker.IsNotFound(err) {
			b.t.Errorf("cleanup: %v", err)
		}
	}
}

func tailLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (b *bed) launcher() *agentlauncher.Launcher {
	return agentlauncher.New(b.engine, b.settings, slog.New(slog.NewTextHandler(b.log, &slog.HandlerOptions{Level: slog.LevelDebug})))
}

// start runs a launcher (its loop and the agent's proxy), as the launcher service's task does; the returned
// function is its SIGTERM and returns Serve's error.
func (b *bed) start() func() error {
	ctx, cancel := context.WithCancel(b.ctx)
	done := make(chan error, 1)
	go func() { done <- b.launcher().Serve(ctx) }()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	b.mu.Lock()
	b.loops = append(b.loops, func() { stop() })
	b.mu.Unlock()
	return stop
}

// waitFor polls cond until it holds (generous bound: the machine is loaded); it fails with cond's last word.
func (b *bed) waitFor(what string, cond func() (bool, string)) {
	b.t.Helper()
	deadline := time.Now().Add(4 * time.Minute)
	last := ""
	for time.Now().Before(deadline) {
		var ok bool
		if ok, last = cond(); ok {
			return
		}
		select {
		case <-b.ctx.Done():
			b.t.Fatalf("%s: %v (last: %s)", what, b.ctx.Err(), last)
		case <-time.After(500 * time.Millisecond):
		}
	}
	b.t.Fatalf("%s: not within 4m (last: %s)", what, last)
}

// healthy waits until the launcher's healthcheck passes and returns the agent container.
func (b *bed) healthy(what string, also func(docker.ContainerInfo) bool) docker.ContainerInfo {
	b.t.Helper()
	l := b.launcher()
	var cur docker.ContainerInfo
	b.waitFor(what, func() (bool, string) {
		if err := l.Check(b.ctx); err != nil {
			return false, err.Error()
		}
		var err error
		if cur, err = b.docker.InspectContainer(b.ctx, b.settings.Container); err != nil {
			return false, err.Error()
		}
		return also == nil || also(cur), fmt.Sprintf("healthy, id %s, restarts %d, started %s", docker.ShortID(cur.ID), cur.RestartCount, cur.StartedAt)
	})
	return cur
}

// fetch runs a workload container (the agent image, its entrypoint `spire-agent api fetch x509`) mounting the
// socket volume, with labels, and returns its exit code and output.
func (b *bed) fetch(name string, labels map[string]string) (int, string) {
	b.t.Helper()
	ctx := b.ctx
	id, err := b.docker.CreateContainer(ctx, docker.ContainerSpec{
		Name: b.prefix + "-" + name, Image: b.settings.Image, Labels: labels, Network: "none",
		Entrypoint: []string{agentlauncher.AgentBinary, "api", "fetch", "x509", "-socketPath", agentlauncher.SocketPath, "-timeout", "10s"},
		Mounts:     []docker.Mount{{Volume: true, Source: b.settings.SocketVolume, Target: agentlauncher.SocketDir, ReadOnly: true}},
	})
	testutil.Must(b.t, err)
	defer func() {
		if err := b.docker.ForceRemoveContainer(context.WithoutCancel(ctx), id); err != nil {
			b.t.Errorf("remove workload container: %v", err)
		}
	}()
	testutil.Must(b.t, b.docker.StartContainer(ctx, id))
	code, err := b.docker.WaitContainer(ctx, id)
	testutil.Must(b.t, err)
	o, e, err := b.docker.ContainerLogs(ctx, id)
	testutil.Must(b.t, err)
	return code, o + e
}

func TestLauncherRunsAnAgentThatAttestsContainers(t *testing.T) {
	b := newBed(t)
	l := b.launcher()
	if err := l.Check(b.ctx); err == nil || !strings.Contains(err.Error(), "does not exist on this node") {
		t.Fatalf("healthcheck before the launcher ran = %v, want \"does not exist on this node\"", err)
	}

	stop1 := b.start()
	agent := b.healthy("the launcher's agent becomes healthy", nil)

	t.Run("the agent shares the host's PID namespace", func(t *testing.T) {
		if !agent.HostPID || agent.Pid == 0 {
			t.Fatalf("agent container: HostPID %v, pid %d", agent.HostPID, agent.Pid)
		}
		hostNS, err1 := os.Readlink("/proc/self/ns/pid")
		agentNS, err2 := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", agent.Pid))
		if err1 != nil || err2 != nil || hostNS != agentNS {
			t.Fatalf("PID namespace: host %q (%v), agent %q (%v)", hostNS, err1, agentNS, err2)
		}
		vols, err := b.docker.Volumes(b.ctx, b.prefix)
		testutil.Must(t, err)
		if len(vols) != 3 {
			t.Errorf("volumes labelled %s=%s: %v, want the socket, data and Docker proxy volumes", docker.NamespaceLabel, b.prefix, vols)
		}
	})

	t.Run("the agent has no Engine socket, only its proxy, which refuses what attestation does not need", func(t *testing.T) {
		var proxy bool
		for _, m := range agent.Mounts {
			if !m.Volume && strings.HasSuffix(m.Source, ".sock") {
				t.Errorf("the agent container binds the socket %s at %s", m.Source, m.Target)
			}
			proxy = proxy || m.Volume && m.Source == b.settings.ProxyVolume && m.Target == agentlauncher.DockerDir && m.ReadOnly
		}
		if !proxy {
			t.Errorf("the agent container's mounts %+v: no read-only %s at %s", agent.Mounts, b.settings.ProxyVolume, agentlauncher.DockerDir)
		}
		via, err := docker.New("unix://"+b.settings.ProxySocket(), nil)
		testutil.Must(t, err)
		defer via.Close()
		if _, err := via.InspectContainer(b.ctx, agent.ID); err != nil {
			t.Errorf("inspect a container through the agent's proxy: %v", err)
		}
		_, err = via.CreateContainer(b.ctx, docker.ContainerSpec{Name: b.prefix + "-evil", Image: b.settings.Image, HostPID: true})
		if err == nil || !strings.Contains(err.Error(), "socket proxy (policy spire-agent) refuses POST") {
			t.Errorf("create a container through the agent's proxy: %v; want the proxy's refusal", err)
		}
		if _, err := b.docker.InspectContainer(b.ctx, b.prefix+"-evil"); !docker.IsNotFound(err) {
			t.Errorf("the refused container reached the Engine: %v", err)
		}
		if !strings.Contains(b.log.String(), "socket proxy: refused") {
			t.Errorf("the launcher's log does not show the refusal:\n%s", b.log.String())
		}
	})

	// A workload with the label gets the SVID of the entry that selects it; one without gets no identity.
	workloadID := fmt.Sprintf("spiffe://%s/%s/workload", b.td, b.prefix)
	errs := b.spire.BatchCreate(b.ctx, []spire.Entry{{SpiffeID: workloadID, ParentID: b.agentID,
		Selectors: []spire.Selector{{Type: "docker", Value: "label:zbtest:" + b.prefix}}}})
	testutil.Must(t, errs[0])
	t.Cleanup(func() { deleteEntries(t, b.spire, workloadID) })
	selected := map[string]string{"zbtest": b.prefix}
	gotSVID := func(what string) {
		t.Helper()
		b.waitFor(what, func() (bool, string) {
			code, out := b.fetch("workload", selected)
			return code == 0 && strings.Contains(out, "SPIFFE ID:\t\t"+workloadID), fmt.Sprintf("exit %d: %s", code, tailLines(out, 5))
		})
	}
	gotSVID("a labelled workload receives its SVID")
	t.Run("a workload no entry selects gets no identity", func(t *testing.T) {
		code, out := b.fetch("stranger", map[string]string{"zbtest": "other-" + b.prefix})
		if code == 0 || !strings.Contains(out, "PermissionDenied") || strings.Contains(out, workloadID) {
			t.Fatalf("unselected workload: exit %d, output:\n%s", code, out)
		}
	})

	t.Run("a stopped agent is started again by the launcher", func(t *testing.T) {
		before := agent
		testutil.Must(t, b.docker.StopContainer(b.ctx, before.ID, 10*time.Second))
		agent = b.healthy("the stopped agent runs again", func(c docker.ContainerInfo) bool {
			return c.ID == before.ID && c.StartedAt.After(before.StartedAt)
		})
	})
	t.Run("a removed agent is created again by the launcher", func(t *testing.T) {
		before := agent
		testutil.Must(t, b.docker.ForceRemoveContainer(b.ctx, before.ID))
		agent = b.healthy("a new agent container runs", func(c docker.ContainerInfo) bool { return c.ID != before.ID })
	})
	t.Run("a killed agent comes back", func(t *testing.T) {
		before := agent
		testutil.Must(t, b.docker.KillContainer(b.ctx, before.ID))
		agent = b.healthy("the killed agent runs again", func(c docker.ContainerInfo) bool {
			return c.ID != before.ID || c.StartedAt.After(before.StartedAt)
		})
	})
	// the replaced containers kept the agent's identity in the data volume
	gotSVID("after its agent was stopped, removed and killed, the workload still receives its SVID")

	t.Run("SIGTERM stops the launcher and leaves the agent running", func(t *testing.T) {
		if err := stop1(); err != nil {
			t.Fatalf("Serve = %v, want nil", err)
		}
		cur, err := b.docker.InspectContainer(b.ctx, agent.ID)
		testutil.Must(t, err)
		if !cur.Running || cur.Health != "healthy" {
			t.Fatalf("after the launcher stopped the agent is %s, health %s", cur.Status, cur.Health)
		}
		// but the launcher's healthcheck covers its proxy, which went with it
		if err := b.launcher().Check(b.ctx); err == nil || !strings.Contains(err.Error(), "the agent's Docker proxy does not answer") {
			t.Fatalf("healthcheck without the proxy = %v, want the proxy named", err)
		}
	})
	t.Run("a new launcher serves the proxy again: the same agent attests", func(t *testing.T) {
		before := agent
		stop := b.start()
		agent = b.healthy("the new launcher is healthy", nil)
		if agent.ID != before.ID || !agent.StartedAt.Equal(before.StartedAt) {
			t.Errorf("the new launcher replaced or restarted the agent: %s started %s, before %s started %s", agent.ID, agent.StartedAt, before.ID, before.StartedAt)
		}
		gotSVID("through the new launcher's proxy, the workload receives its SVID")
		testutil.Must(t, stop())
	})

	t.Run("a second ensure with nothing changed makes no mutating call", func(t *testing.T) {
		before, _ := b.counter.Snapshot()
		res, err := b.launcher().Ensure(b.ctx)
		testutil.Must(t, err)
		after, writes := b.counter.Snapshot()
		if res.Action != agentlauncher.NoOp || after["docker"] != before["docker"] {
			t.Fatalf("ensure: %s (%s); docker writes %d → %d: %v", res.Action, res.Reason, before["docker"], after["docker"], writes)
		}
	})

	t.Run("a changed agent.conf recreates the agent", func(t *testing.T) {
		before := agent
		b.writeConf("used-already", "INFO")
		if err := b.launcher().Check(b.ctx); err == nil || !strings.Contains(err.Error(), "does not run the current spec (changed: files)") {
			t.Fatalf("healthcheck after agent.conf changed = %v, want the old spec named", err)
		}
		stop2 := b.start() // a new launcher task, as after a config update of the service
		agent = b.healthy("the agent with the new agent.conf", func(c docker.ContainerInfo) bool { return c.ID != before.ID })
		if agent.Labels[agentlauncher.LabelSpec] == before.Labels[agentlauncher.LabelSpec] {
			t.Error("the spec label did not change")
		}
		_ = stop2 // it keeps serving the agent's proxy for the next check; cleanup stops it
		if !strings.Contains(b.log.String(), "reason=\"changed: files\"") {
			t.Errorf("the launcher's log does not say why it recreated the agent:\n%s", b.log.String())
		}
	})
	gotSVID("with the new agent.conf, the workload receives its SVID")

	t.Run("the launcher reaches the Engine only through its proxy, which refuses what the launcher does not do", func(t *testing.T) {
		// everything the launcher did above (create, copy, start, stop, remove, events, the agent's attestation)
		// went through its proxy: none of it was refused
		if strings.Contains(b.proxyLog.String(), "socket proxy: refused") {
			t.Errorf("the launcher's proxy refused a call of the launcher's:\n%s", b.proxyLog.String())
		}
		via := b.engine
		refused := func(what string, err error, call string) {
			t.Helper()
			if err == nil || !strings.Contains(err.Error(), "socket proxy (policy agent-launcher) refuses "+call) {
				t.Errorf("%s through the launcher's proxy: %v; want its refusal (403)", what, err)
			}
		}
		evil := b.prefix + "-evil"
		_, err := via.CreateContainer(b.ctx, docker.ContainerSpec{Name: evil, Image: b.settings.Image, HostPID: true,
			Mounts: []docker.Mount{{Source: "/", Target: "/host"}}})
		refused("create another container", err, "POST /v")
		spec := agentlauncher.Desire(b.settings, "", nil).Spec
		spec.Mounts = append(spec.Mounts, docker.Mount{Source: "/var/run/docker.sock", Target: "/var/run/docker.sock"})
		_, err = via.CreateContainer(b.ctx, spec)
		refused("create the agent container with the Engine's socket", err, "POST /v")
		if _, err := b.docker.InspectContainer(b.ctx, evil); !docker.IsNotFound(err) {
			t.Errorf("the refused container reached the Engine: %v", err)
			_ = b.docker.ForceRemoveContainer(context.WithoutCancel(b.ctx), evil)
		}
		_, err = via.Secrets(b.ctx, "")
		refused("list secrets", err, "GET /v")
		_, err = via.Services(b.ctx, "")
		refused("list services", err, "GET /v")
		refused("kill the agent", via.KillContainer(b.ctx, b.settings.Container), "POST /v")
		if !strings.Contains(b.proxyLog.String(), "socket proxy: refused") {
			t.Errorf("the launcher's proxy's log does not show the refusals:\n%s", b.proxyLog.String())
		}
	})
}

func deleteEntries(t *testing.T, c *spire.Client, spiffeID string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := c.ListEntries(ctx)
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	var ids []string
	for _, e := range list {
		if e.SpiffeID == spiffeID {
			ids = append(ids, e.ID)
		}
	}
	for _, err := range c.BatchDelete(ctx, ids) {
		if err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
}
