package agentlauncher

import (
	"regexp"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/sockproxy"
)

// The values of the labels LabelSpec and LabelSpecParts (Desire; encodeParts).
var (
	specValue  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	partsValue = regexp.MustCompile(`^[a-z]+=[0-9a-f]{12}(,[a-z]+=[0-9a-f]{12})*$`)
)

// ProxyPolicy is the policy of the launcher's own Docker proxy (`socket-proxy --policy agent-launcher`, given the
// launcher's settings by AgentFromEnv): what the agent's proxy forwards to it (Serve) and what the launcher does
// (Ensure, Run, Check), on the agent container that s makes only: its name, image, command, user, labels (but the
// spec's hashes), --pid host, restart policy, healthcheck, network, volumes and binds.
func ProxyPolicy(s Settings) sockproxy.Policy {
	spec := Desire(s, "", nil).Spec
	delete(spec.Labels, LabelSpec)
	delete(spec.Labels, LabelSpecParts)
	return sockproxy.AgentLauncher(sockproxy.Agent{
		Container:    spec,
		OwnLabels:    map[string]*regexp.Regexp{LabelSpec: specValue, LabelSpecParts: partsValue},
		VolumeLabels: s.volumeLabels(),
		FilesDir:     ConfigDir,
		Events:       watched,
	})
}

// volumeLabels are the labels of the volumes the launcher creates.
func (s Settings) volumeLabels() map[string]string {
	return map[string]string{docker.NamespaceLabel: s.Namespace}
}
