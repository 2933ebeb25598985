package agentlauncher

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
)

// Paths in the agent container (those of the upstream spire-agent image) and the launcher's labels.
const (
	ConfigDir  = "/etc/spire/agent"
	ConfigFile = "agent.conf"
	SocketDir  = "/run/spire/agent/public"
	SocketPath = SocketDir + "/api.sock"
	DataDir    = "/var/lib/spire/agent"
	// DockerDir holds the agent's Docker Engine: the socket DockerSocket of the launcher's proxy (read-only mount of
	// the volume ProxyVolume), which agent.conf's docker WorkloadAttestor names.
	DockerDir       = "/run/zb-docker"
	ProxySocketName = "docker.sock"
	DockerSocket    = DockerDir + "/" + ProxySocketName
	AgentBinary     = "/opt/spire/bin/spire-agent"

	// LabelRole marks the containers the launcher owns (value RoleAgent); it never touches another container.
	LabelRole = "org.ziti-bootstrap.role"
	RoleAgent = "spire-agent"
	// LabelSpec is the hash of everything the container was created from; LabelSpecParts the hash of each part
	// (image, files, binds, network, container), so a log can say what changed.
	LabelSpec      = "org.ziti-bootstrap.agent-spec"
	LabelSpecParts = "org.ziti-bootstrap.agent-spec-parts"
)

// The agent container's Docker healthcheck.
var Health = docker.HealthCheck{
	Test:     []string{AgentBinary, "healthcheck", "-socketPath", SocketPath},
	Interval: 10 * time.Second, Timeout: 10 * time.Second, StartPeriod: time.Minute, Retries: 3,
}

// Desired is the agent container the settings, the image on the node and the files call for.
type Desired struct {
	Spec  docker.ContainerSpec
	Files []docker.File
	Hash  string
	Parts map[string]string
}

// ReadFiles reads the regular files directly in dir (not those of subdirectories), sorted by name; they are
// copied to ConfigDir as root-only files.
func ReadFiles(dir string) ([]docker.File, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("agent files: %w", err)
	}
	var out []docker.File
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		fi, err := os.Stat(p) // follows links: Swarm configs and secrets may be mounted so
		if err != nil {
			return nil, fmt.Errorf("agent files: %w", err)
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("agent files: %w", err)
		}
		out = append(out, docker.File{Name: e.Name(), Mode: 0o600, Data: data})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Desire computes the agent container for settings s, image imageID (the ID of s.Image on the node) and files.
// It is pure: the same inputs give the same Hash.
func Desire(s Settings, imageID string, files []docker.File) Desired {
	fixed := docker.ContainerSpec{
		Name: s.Container, Cmd: []string{"-config", ConfigDir + "/" + ConfigFile}, User: "0:0",
		Labels:  map[string]string{docker.NamespaceLabel: s.Namespace, LabelRole: RoleAgent},
		HostPID: true, Restart: "unless-stopped", Health: &Health,
		Mounts: []docker.Mount{
			{Volume: true, Source: s.SocketVolume, Target: SocketDir},
			{Volume: true, Source: s.DataVolume, Target: DataDir},
			{Volume: true, Source: s.ProxyVolume, Target: DockerDir, ReadOnly: true},
		},
	}
	var binds []docker.Mount
	for _, b := range s.Binds {
		binds = append(binds, docker.Mount{Source: b.Source, Target: b.Target, ReadOnly: true})
	}
	parts := map[string]string{
		"image":     digest([]string{s.Image, imageID}),
		"files":     digest(files),
		"binds":     digest(binds),
		"network":   digest(s.Network),
		"container": digest(fixed),
	}
	spec := fixed
	spec.Image, spec.Network = s.Image, s.Network
	spec.Mounts = append(slices.Clone(fixed.Mounts), binds...)
	spec.Labels = map[string]string{}
	for k, v := range fixed.Labels {
		spec.Labels[k] = v
	}
	hash := digest(parts)
	spec.Labels[LabelSpec] = hash
	spec.Labels[LabelSpecParts] = encodeParts(parts)
	return Desired{Spec: spec, Files: files, Hash: hash, Parts: parts}
}

// Changed names the parts of the spec that differ between the container's labels and d ("spec" when the labels
// do not say).
func (d Desired) Changed(labels map[string]string) []string {
	if labels[LabelSpec] == d.Hash {
		return nil
	}
	have := decodeParts(labels[LabelSpecParts])
	if len(have) == 0 {
		return []string{"spec"}
	}
	var out []string
	for k, v := range d.Parts {
		if have[k] != v[:12] {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		return []string{"spec"}
	}
	sort.Strings(out)
	return out
}

func digest(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // plain data: cannot fail
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// encodeParts renders parts as "k=hash12,…" sorted by key.
func encodeParts(parts map[string]string) string {
	keys := make([]string, 0, len(parts))
	for k := range parts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + "=" + parts[k][:12])
	}
	return b.String()
}

func decodeParts(s string) map[string]string {
	out := map[string]string{}
	for kv := range strings.SplitSeq(s, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			out[k] = v
		}
	}
	return out
}
