package agentlauncher

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
)

// validEnv returns a complete environment whose files directory holds agent.conf.
func validEnv(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte("agent {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		EnvImage: "ghcr.io/spiffe/spire-agent:1.13.3", EnvContainer: "spire_agent", EnvNamespace: "spire",
		EnvNetwork: "spire_spire", EnvFilesDir: dir, EnvSocketVolume: "spire_agent-socket", EnvDataVolume: "spire_agent-data",
		EnvProxyVolume: "spire_agent-docker", EnvProxyDir: t.TempDir(),
	}
}

// validWithBinds returns validEnv with EnvBinds set to binds, and the settings FromEnv reads from it.
func validWithBinds(t *testing.T, binds string) (map[string]string, Settings) {
	t.Helper()
	env := validEnv(t)
	env[EnvBinds] = binds
	s, err := FromEnv(lookup(env))
	if err != nil {
		t.Fatal(err)
	}
	return env, s
}

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func TestFromEnvValid(t *testing.T) {
	env, s := validWithBinds(t, "/var/lib/docker/swarm/certificates:/var/lib/docker/swarm/certificates:ro, /var/lib/zb:/var/lib/zb")
	if s.DockerHost != DefaultDockerHost {
		t.Errorf("DockerHost = %q, want the default %q", s.DockerHost, DefaultDockerHost)
	}
	want := []Bind{{"/var/lib/docker/swarm/certificates", "/var/lib/docker/swarm/certificates"}, {"/var/lib/zb", "/var/lib/zb"}}
	if len(s.Binds) != 2 || s.Binds[0] != want[0] || s.Binds[1] != want[1] {
		t.Errorf("Binds = %v, want %v", s.Binds, want)
	}
	if got := s.ProxySocket(); got != env[EnvProxyDir]+"/docker.sock" {
		t.Errorf("ProxySocket = %q, want docker.sock in %s", got, env[EnvProxyDir])
	}
}

func TestFromEnvNamesEveryBadVariable(t *testing.T) {
	for _, tc := range []struct {
		name    string
		change  map[string]string
		wantVar string
		wantMsg string
	}{
		{"image missing", map[string]string{EnvImage: ""}, EnvImage, "required"},
		{"image with space", map[string]string{EnvImage: "a b"}, EnvImage, "white space"},
		{"container name", map[string]string{EnvContainer: "-bad/name"}, EnvContainer, "not a valid Docker name"},
		{"namespace missing", map[string]string{EnvNamespace: " "}, EnvNamespace, "required"},
		{"network missing", map[string]string{EnvNetwork: ""}, EnvNetwork, "required"},
		{"files dir relative", map[string]string{EnvFilesDir: "rel/dir"}, EnvFilesDir, "absolute"},
		{"files dir without agent.conf", map[string]string{EnvFilesDir: "/nonexistent-zb"}, EnvFilesDir, "must hold agent.conf"},
		{"same volume twice", map[string]string{EnvDataVolume: "spire_agent-socket"}, EnvDataVolume, "two volumes"},
		{"bind without target", map[string]string{EnvBinds: "/var/lib/zb"}, EnvBinds, "HOST_PATH:CONTAINER_PATH"},
		{"bind relative", map[string]string{EnvBinds: "docker.sock:/var/run/docker.sock"}, EnvBinds, "absolute"},
		// the agent never gets the Engine's socket: only its proxy
		{"bind of the engine's socket", map[string]string{EnvBinds: "/var/run/docker.sock:/var/run/docker.sock"}, EnvBinds, "the Docker Engine's socket"},
		{"bind of the engine's socket as /run", map[string]string{EnvBinds: "/run/docker.sock:/x.sock"}, EnvBinds, "the Docker Engine's socket"},
		{"bind of the directory of the engine's socket", map[string]string{EnvBinds: "/var/run:/host-run"}, EnvBinds, "the Docker Engine's socket"},
		{"bind of the root", map[string]string{EnvBinds: "/:/host"}, EnvBinds, "the Docker Engine's socket"},
		{"bind of another engine socket", map[string]string{EnvDockerHost: "unix:///srv/engine.sock", EnvBinds: "/srv:/srv"}, EnvBinds, "the Docker Engine's socket"},
		// behind its own proxy (DOCKER_HOST its socket), the node's Engine socket is still refused
		{"bind of the node's engine socket behind a proxy", map[string]string{EnvDockerHost: "unix:///run/zb-docker/docker.sock", EnvBinds: "/var/run/docker.sock:/x.sock"}, EnvBinds, "the Docker Engine's socket"},
		{"bind of the proxy's socket", map[string]string{EnvDockerHost: "unix:///run/zb-docker/docker.sock", EnvBinds: "/run/zb-docker:/x"}, EnvBinds, "the Docker Engine's socket"},
		{"bind over the proxy dir", map[string]string{EnvBinds: "/tmp:" + DockerDir}, EnvBinds, "the launcher's"},
		{"docker host not a unix socket", map[string]string{EnvDockerHost: "tcp://127.0.0.1:2375"}, EnvDockerHost, "not a unix socket"},
		{"proxy volume missing", map[string]string{EnvProxyVolume: ""}, EnvProxyVolume, "required"},
		{"proxy volume is the socket volume", map[string]string{EnvProxyVolume: "spire_agent-socket"}, EnvProxyVolume, "a volume of its own"},
		{"proxy dir missing", map[string]string{EnvProxyDir: ""}, EnvProxyDir, "required"},
		{"proxy dir not there", map[string]string{EnvProxyDir: "/nonexistent-zb"}, EnvProxyDir, "a directory"},
		{"bind over the socket dir", map[string]string{EnvBinds: "/tmp:" + SocketDir}, EnvBinds, "the launcher's"},
		{"bind twice", map[string]string{EnvBinds: "/a:/x,/b:/x"}, EnvBinds, "mounted twice"},
		{"tools dir relative", map[string]string{EnvToolsDir: "tools"}, EnvToolsDir, "absolute"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := validEnv(t)
			for k, v := range tc.change {
				env[k] = v
			}
			_, err := FromEnv(lookup(env))
			if !config.IsInvalid(err) {
				t.Fatalf("err = %v, want an invalid-configuration error", err)
			}
			if !strings.Contains(err.Error(), tc.wantVar+": ") || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("err = %v\nwant it to name %s and say %q", err, tc.wantVar, tc.wantMsg)
			}
		})
	}
}

func TestFromEnvReportsAllProblemsAtOnce(t *testing.T) {
	_, err := FromEnv(lookup(map[string]string{}))
	var ce *config.Error
	if !config.IsInvalid(err) {
		t.Fatalf("err = %v", err)
	}
	ce = err.(*config.Error)
	got := map[string]bool{}
	for _, p := range ce.Problems {
		got[p.Var] = true
	}
	for _, v := range []string{EnvImage, EnvContainer, EnvNamespace, EnvNetwork, EnvFilesDir, EnvSocketVolume, EnvDataVolume, EnvProxyVolume, EnvProxyDir} {
		if !got[v] {
			t.Errorf("no problem reported for %s: %v", v, err)
		}
	}
}

// The launcher's Docker proxy reads the agent container's settings from the same variables, without the
// launcher's own directories, and refuses the same bad ones.
func TestAgentFromEnv(t *testing.T) {
	env, want := validWithBinds(t, "/var/lib/docker/swarm/certificates:/var/lib/docker/swarm/certificates")
	for _, k := range []string{EnvFilesDir, EnvProxyDir, EnvToolsDir} {
		delete(env, k)
	}
	got, err := AgentFromEnv(lookup(env))
	if err != nil {
		t.Fatal(err)
	}
	if a, b := digest(Desire(got, "img", nil)), digest(Desire(want, "img", nil)); a != b {
		t.Errorf("AgentFromEnv makes another container than FromEnv:\n%+v\n%+v", got, want)
	}
	env[EnvBinds] = "/:/host"
	if _, err := AgentFromEnv(lookup(env)); !config.IsInvalid(err) || !strings.Contains(err.Error(), EnvBinds+": ") {
		t.Errorf("AgentFromEnv with a bind of /: %v, want %s named", err, EnvBinds)
	}
}
