package agentlauncher

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
)

func testSettings() Settings {
	return Settings{Image: "zb-local/spire-agent:1.13.3", Container: "spire_agent", Namespace: "spire", Network: "host",
		FilesDir: "/files", SocketVolume: "sock", DataVolume: "data", ProxyVolume: "docker", ProxyDir: "/run/zb-docker",
		Binds: []Bind{{"/var/lib/docker/swarm/certificates", "/var/lib/docker/swarm/certificates"}}}
}

func testFiles() []docker.File {
	return []docker.File{{Name: "agent.conf", Mode: 0o600, Data: []byte("agent {}")}, {Name: "bundle.crt", Mode: 0o600, Data: []byte("PEM")}}
}

func TestDesireContainer(t *testing.T) {
	d := Desire(testSettings(), "sha256:aaa", testFiles())
	s := d.Spec
	if !s.HostPID || s.User != "0:0" || s.Restart != "unless-stopped" || s.Network != "host" || s.Image != "zb-local/spire-agent:1.13.3" {
		t.Errorf("spec = %+v", s)
	}
	if want := []string{"-config", "/etc/spire/agent/agent.conf"}; !reflect.DeepEqual(s.Cmd, want) {
		t.Errorf("Cmd = %q, want %q", s.Cmd, want)
	}
	wantMounts := []docker.Mount{
		{Volume: true, Source: "sock", Target: "/run/spire/agent/public"},
		{Volume: true, Source: "data", Target: "/var/lib/spire/agent"},
		// the Engine only through the launcher's proxy: its socket's volume, never the Engine's socket
		{Volume: true, Source: "docker", Target: "/run/zb-docker", ReadOnly: true},
		{Source: "/var/lib/docker/swarm/certificates", Target: "/var/lib/docker/swarm/certificates", ReadOnly: true},
	}
	if !reflect.DeepEqual(s.Mounts, wantMounts) {
		t.Errorf("Mounts = %+v\nwant %+v", s.Mounts, wantMounts)
	}
	if s.Health == nil || !reflect.DeepEqual(s.Health.Test, []string{"/opt/spire/bin/spire-agent", "healthcheck", "-socketPath", "/run/spire/agent/public/api.sock"}) {
		t.Errorf("Health = %+v", s.Health)
	}
	for k, v := range map[string]string{docker.NamespaceLabel: "spire", LabelRole: RoleAgent, LabelSpec: d.Hash} {
		if s.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, s.Labels[k], v)
		}
	}
}

func TestDesireHashNamesWhatChanged(t *testing.T) {
	base := Desire(testSettings(), "sha256:aaa", testFiles())
	if again := Desire(testSettings(), "sha256:aaa", testFiles()); again.Hash != base.Hash {
		t.Fatal("the same inputs gave another hash")
	}
	if got := base.Changed(base.Spec.Labels); got != nil {
		t.Errorf("Changed(own labels) = %v, want none", got)
	}
	otherNet := testSettings()
	otherNet.Network = "spire_spire"
	otherBinds := testSettings()
	otherBinds.Binds = append(otherBinds.Binds, Bind{"/certs", "/certs"})
	otherImage := testSettings()
	otherImage.Image = "zb-local/spire-agent:1.15.3"
	otherProxy := testSettings()
	otherProxy.ProxyVolume = "docker2"
	files := testFiles()
	files[0].Data = []byte("agent { log_level = \"DEBUG\" }")
	for _, tc := range []struct {
		name string
		d    Desired
		want []string
	}{
		{"image retagged", Desire(testSettings(), "sha256:bbb", testFiles()), []string{"image"}},
		{"image reference", Desire(otherImage, "sha256:aaa", testFiles()), []string{"image"}},
		{"agent.conf", Desire(testSettings(), "sha256:aaa", files), []string{"files"}},
		{"a file more", Desire(testSettings(), "sha256:aaa", append(testFiles(), docker.File{Name: "x", Data: []byte("y")})), []string{"files"}},
		{"network", Desire(otherNet, "sha256:aaa", testFiles()), []string{"network"}},
		{"binds", Desire(otherBinds, "sha256:aaa", testFiles()), []string{"binds"}},
		{"proxy volume", Desire(otherProxy, "sha256:aaa", testFiles()), []string{"container"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.d.Hash == base.Hash {
				t.Fatal("hash unchanged")
			}
			if got := tc.d.Changed(base.Spec.Labels); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Changed = %v, want %v", got, tc.want)
			}
		})
	}
	if got := base.Changed(map[string]string{LabelSpec: "old"}); !reflect.DeepEqual(got, []string{"spec"}) {
		t.Errorf("Changed without parts label = %v, want [spec]", got)
	}
}

func TestReadFilesRegularFilesSorted(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{"b.crt": "B", "agent.conf": "A"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "b.crt"), filepath.Join(dir, "link.crt")); err != nil {
		t.Fatal(err)
	}
	files, err := ReadFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Name+"="+string(f.Data))
		if f.Mode != 0o600 {
			t.Errorf("%s mode %o, want 600 (root-only in the container)", f.Name, f.Mode)
		}
	}
	if want := []string{"agent.conf=A", "b.crt=B", "link.crt=B"}; !reflect.DeepEqual(names, want) {
		t.Errorf("files = %v, want %v", names, want)
	}
}

func TestDecide(t *testing.T) {
	d := Desire(testSettings(), "sha256:aaa", testFiles())
	ours := func(status string) *docker.ContainerInfo {
		return &docker.ContainerInfo{ID: "c1", Name: "spire_agent", Status: status, Running: status == "running", Labels: d.Spec.Labels}
	}
	stale := ours("running")
	stale.Labels = map[string]string{docker.NamespaceLabel: "spire", LabelRole: RoleAgent, LabelSpec: "x", LabelSpecParts: "files=000000000000"}
	for _, tc := range []struct {
		name string
		cur  *docker.ContainerInfo
		want Action
	}{
		{"missing", nil, Create},
		{"running", ours("running"), NoOp},
		{"restarting", ours("restarting"), NoOp},
		{"exited", ours("exited"), Start},
		{"paused", ours("paused"), Unpause},
		{"created, never started", ours("created"), Recreate},
		{"dead", ours("dead"), Recreate},
		{"old spec", stale, Recreate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Decide(tc.cur, d, "spire")
			if err != nil {
				t.Fatal(err)
			}
			if p.Action != tc.want {
				t.Errorf("Action = %s (%s), want %s", p.Action, p.Reason, tc.want)
			}
		})
	}
	foreign := &docker.ContainerInfo{ID: "c2", Name: "spire_agent", Status: "running", Labels: map[string]string{"x": "y"}}
	if _, err := Decide(foreign, d, "spire"); err == nil {
		t.Error("a container without the launcher's labels was planned for; want ErrNotOwned")
	}
	other := ours("running")
	if _, err := Decide(other, d, "another"); err == nil {
		t.Error("a container of another namespace was planned for; want ErrNotOwned")
	}
}

func TestPacerNeverBusyLoops(t *testing.T) {
	var p pacer
	t0 := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	p.last = t0
	// an event long after the last ensure: at once
	if d := p.delay(t0.Add(2*Quiet), false); d != 0 {
		t.Errorf("after a quiet period: %s, want 0", d)
	}
	// events in quick succession, or failures: 1s, 2s, 4s, … capped
	var got []time.Duration
	for range 9 {
		p.last = t0
		got = append(got, p.delay(t0.Add(time.Second), false))
	}
	want := []time.Duration{MinDelay, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, MaxDelay, MaxDelay, MaxDelay}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("delays = %v, want %v", got, want)
	}
	// a failure never goes without a wait, even after a quiet period
	p = pacer{last: t0}
	if d := p.delay(t0.Add(2*Quiet), true); d != MinDelay {
		t.Errorf("after a failure: %s, want %s", d, MinDelay)
	}
}
