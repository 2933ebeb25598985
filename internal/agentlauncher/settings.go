package agentlauncher

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
)

// The launcher's environment variables.
const (
	EnvImage        = "ZB_AGENT_IMAGE"
	EnvContainer    = "ZB_AGENT_CONTAINER"
	EnvNamespace    = "ZB_AGENT_NAMESPACE"
	EnvNetwork      = "ZB_AGENT_NETWORK"
	EnvFilesDir     = "ZB_AGENT_FILES_DIR"
	EnvSocketVolume = "ZB_AGENT_SOCKET_VOLUME"
	EnvDataVolume   = "ZB_AGENT_DATA_VOLUME"
	EnvBinds        = "ZB_AGENT_BINDS"
	EnvProxyVolume  = "ZB_AGENT_PROXY_VOLUME"
	EnvProxyDir     = "ZB_AGENT_PROXY_DIR"
	EnvToolsDir     = "ZB_TOOLS_DIR"
	EnvDockerHost   = "DOCKER_HOST"
)

// DefaultDockerHost is the engine the launcher talks to when DOCKER_HOST is not set: its node's, mounted in.
const DefaultDockerHost = "unix:///var/run/docker.sock"

// Settings is the launcher's configuration, read from its environment by FromEnv.
type Settings struct {
	Image        string // the spire-agent image (entrypoint `spire-agent run`)
	Container    string // the agent container's name on every node
	Namespace    string // value of com.docker.stack.namespace on the container and its volumes
	Network      string // "host" or a network to join (an attachable overlay)
	FilesDir     string // files copied to ConfigDir in the container (agent.conf, trust bundle, …)
	SocketVolume string // named volume at SocketDir: the Workload API socket
	DataVolume   string // named volume at DataDir
	Binds        []Bind // read-only host paths
	// ProxyVolume is the named volume mounted at DockerDir in the agent: the launcher serves the agent's Docker
	// proxy (sockproxy.SpireAgent) in it, at ProxyDir/ProxySocketName, where the launcher has the same volume.
	ProxyVolume string
	ProxyDir    string
	ToolsDir    string // "" or a directory to copy the launcher's executable into
	DockerHost  string
}

// ProxySocket is where the launcher serves the agent's Docker proxy: in its mount of ProxyVolume.
func (s Settings) ProxySocket() string { return filepath.Join(s.ProxyDir, ProxySocketName) }

// Bind is a host path mounted read-only into the agent container.
type Bind struct{ Source, Target string }

func (b Bind) String() string { return b.Source + ":" + b.Target }

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// FromEnv reads and validates the settings from lookup (os.LookupEnv). Every problem is reported at once, as a
// *config.Error naming the variable (exit code 2).
func FromEnv(lookup func(string) (string, bool)) (Settings, error) { return fromEnv(lookup, true) }

// AgentFromEnv reads and validates the settings that make the agent container (the image, names, network, volumes
// and binds, and DOCKER_HOST), not the launcher's own directories: what the launcher's Docker proxy (ProxyPolicy)
// is given, from the same variables as the launcher, so that it lets the launcher create that container only.
func AgentFromEnv(lookup func(string) (string, bool)) (Settings, error) {
	return fromEnv(lookup, false)
}

func fromEnv(lookup func(string) (string, bool), launcher bool) (Settings, error) {
	var problems []config.Problem
	bad := func(v, format string, args ...any) {
		problems = append(problems, config.Problem{Var: v, Msg: fmt.Sprintf(format, args...)})
	}
	get := func(v string) string { s, _ := lookup(v); return strings.TrimSpace(s) }
	required := func(v, what string) string {
		s := get(v)
		if s == "" {
			bad(v, "required: %s", what)
		}
		return s
	}
	name := func(v, what string) string {
		s := required(v, what)
		if s != "" && !nameRE.MatchString(s) {
			bad(v, "%q is not a valid Docker name: use letters, digits, '_', '.', '-', starting with a letter or digit", s)
		}
		return s
	}
	s := Settings{
		Image:        required(EnvImage, "the spire-agent image, e.g. ghcr.io/spiffe/spire-agent:1.13.3"),
		Container:    name(EnvContainer, "the agent container's name, e.g. spire_agent"),
		Namespace:    name(EnvNamespace, "the SPIRE stack's namespace (label com.docker.stack.namespace), e.g. spire"),
		Network:      name(EnvNetwork, `"host", or an attachable overlay network of the SPIRE stack, e.g. spire_spire`),
		SocketVolume: name(EnvSocketVolume, "the volume of the Workload API socket, e.g. spire_spire-agent-socket"),
		DataVolume:   name(EnvDataVolume, "the volume of the agent's data, e.g. spire_spire-agent-data"),
		ProxyVolume:  name(EnvProxyVolume, "the volume of the agent's Docker proxy socket, e.g. spire_spire-agent-docker"),
		DockerHost:   get(EnvDockerHost),
	}
	if launcher {
		s.FilesDir = required(EnvFilesDir, "the directory of the agent's files (agent.conf, trust bundle)")
		s.ProxyDir = required(EnvProxyDir, "where the launcher has the volume "+EnvProxyVolume+" mounted, e.g. /run/zb-agent-docker")
		s.ToolsDir = get(EnvToolsDir)
	}
	if strings.ContainsAny(s.Image, " \t\n") {
		bad(EnvImage, "%q contains white space: give one image reference", s.Image)
	}
	if s.SocketVolume != "" && s.SocketVolume == s.DataVolume {
		bad(EnvDataVolume, "%q is also %s: the socket and the data need two volumes", s.DataVolume, EnvSocketVolume)
	}
	if s.ProxyVolume != "" && (s.ProxyVolume == s.SocketVolume || s.ProxyVolume == s.DataVolume) {
		bad(EnvProxyVolume, "%q is also %s or %s: the Docker proxy needs a volume of its own", s.ProxyVolume, EnvSocketVolume, EnvDataVolume)
	}
	if s.ProxyDir != "" {
		if fi, err := os.Stat(s.ProxyDir); !filepath.IsAbs(s.ProxyDir) || err != nil || !fi.IsDir() {
			bad(EnvProxyDir, "%q must be an absolute path to a directory (where the launcher's service mounts %s)", s.ProxyDir, EnvProxyVolume)
		}
	}
	if s.FilesDir != "" {
		if err := checkFilesDir(s.FilesDir); err != nil {
			bad(EnvFilesDir, "%v", err)
		}
	}
	if s.ToolsDir != "" && !filepath.IsAbs(s.ToolsDir) {
		bad(EnvToolsDir, "%q is not an absolute path", s.ToolsDir)
	}
	if s.DockerHost == "" {
		s.DockerHost = DefaultDockerHost
	}
	engineSocket, ok := strings.CutPrefix(s.DockerHost, "unix://")
	if !ok || !path.IsAbs(engineSocket) {
		bad(EnvDockerHost, "%q is not a unix socket (unix:///path): the agent's Docker proxy forwards to the Engine's socket", s.DockerHost)
	}
	// the launcher's DOCKER_HOST is its own proxy's socket in the stack; the node's Engine listens at the default
	defaultSocket := strings.TrimPrefix(DefaultDockerHost, "unix://")
	binds, errs := parseBinds(get(EnvBinds), engineSocket, defaultSocket)
	for _, e := range errs {
		bad(EnvBinds, "%s", e)
	}
	s.Binds = binds
	if len(problems) > 0 {
		return Settings{}, &config.Error{Problems: problems}
	}
	return s, nil
}

func checkFilesDir(dir string) error {
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("%q is not an absolute path", dir)
	}
	fi, err := os.Stat(filepath.Join(dir, ConfigFile))
	if err != nil {
		return fmt.Errorf("%s must hold %s (the agent runs with -config %s/%s): %v", dir, ConfigFile, ConfigDir, ConfigFile, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s/%s is not a regular file", dir, ConfigFile)
	}
	return nil
}

// parseBinds reads "SRC:DST[:ro],…". Every bind is read-only whatever its suffix says; a target may not hide a
// directory the launcher fills or mounts, and no source may be an Engine's socket (engineSockets: the one the
// launcher is given and the node's default) or a directory that holds it: the agent reaches the Engine only
// through its proxy.
func parseBinds(v string, engineSockets ...string) ([]Bind, []string) {
	var out []Bind
	var errs []string
	seen := map[string]bool{}
	for item := range strings.SplitSeq(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		f := strings.Split(item, ":")
		if len(f) == 3 && f[2] == "ro" {
			f = f[:2]
		}
		if len(f) != 2 || f[0] == "" || f[1] == "" {
			errs = append(errs, fmt.Sprintf("%q: give HOST_PATH:CONTAINER_PATH (comma-separated; always mounted read-only)", item))
			continue
		}
		b := Bind{Source: path.Clean(f[0]), Target: path.Clean(f[1])}
		switch {
		case !path.IsAbs(f[0]) || !path.IsAbs(f[1]):
			errs = append(errs, fmt.Sprintf("%q: both paths must be absolute", item))
		case b.Target == ConfigDir || b.Target == SocketDir || b.Target == DataDir || b.Target == DockerDir || b.Target == "/":
			errs = append(errs, fmt.Sprintf("%q: %s is the launcher's (the agent's files, socket, data or Docker proxy)", item, b.Target))
		case slices.ContainsFunc(engineSockets, func(sock string) bool { return exposesEngine(b.Source, sock) }):
			errs = append(errs, fmt.Sprintf("%q: %s would give the agent the Docker Engine's socket (root on the node); it has "+
				"the calls it needs through its proxy (%s)", item, b.Source, EnvProxyVolume))
		case seen[b.Target]:
			errs = append(errs, fmt.Sprintf("%q: %s is mounted twice", item, b.Target))
		default:
			seen[b.Target] = true
			out = append(out, b)
		}
	}
	return out, errs
}

// exposesEngine says whether binding src gives the Engine's socket: src is the socket or a directory above it, in
// its /var/run or /run form (one is a link to the other on Debian and most distributions).
func exposesEngine(src, engineSocket string) bool {
	if engineSocket == "" {
		return false
	}
	forms := []string{engineSocket}
	if r, ok := strings.CutPrefix(engineSocket, "/var/run/"); ok {
		forms = append(forms, "/run/"+r)
	} else if r, ok := strings.CutPrefix(engineSocket, "/run/"); ok {
		forms = append(forms, "/var/run/"+r)
	}
	for _, sock := range forms {
		if src == sock || src == "/" || strings.HasPrefix(sock, src+"/") {
			return true
		}
	}
	return false
}
