package sockproxy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/lock"
)

// engineFacts are the calls every Docker client of this tool makes first: the version negotiation and the
// Engine's facts (Swarm state and role, its clock, which the lock's expiry is measured by).
var engineFacts = []Rule{
	{Method: http.MethodHead, Path: regexp.MustCompile(`^/_ping$`), What: "ping the Engine (API version negotiation)"},
	{Method: http.MethodGet, Path: regexp.MustCompile(`^/_ping$`), What: "ping the Engine (API version negotiation)"},
	{Method: http.MethodGet, Path: regexp.MustCompile(`^/(info|version)$`), What: "read the Engine's facts: version, Swarm state and role, clock"},
}

// lockRules let a service take, renew and release the apply lock (the Swarm config named name, lock.Name but in
// tests) and touch no other config.
func lockRules(name string) []Rule {
	return []Rule{
		{Method: http.MethodPost, Path: regexp.MustCompile(`^/configs/create$`), Check: bodyNamed(name), What: "create the apply lock's config (" + name + ")"},
		{Method: http.MethodGet, Path: regexp.MustCompile(`^/configs/([^/]+)$`), Check: configNamed(name), What: "read the apply lock"},
		{Method: http.MethodPost, Path: regexp.MustCompile(`^/configs/([^/]+)/update$`), Check: both(configNamed(name), bodyNamed(name)), What: "relabel the apply lock (renew, release: compare-and-swap on its version)"},
		{Method: http.MethodDelete, Path: regexp.MustCompile(`^/configs/([^/]+)$`), Check: configNamed(name), What: "remove the apply lock"},
	}
}

// Bootstrap is the bootstrap job's policy (apply inside the Swarm, ZB_DOCKER=true): docker/reachable and the
// apply lock, the config lockName.
func Bootstrap(lockName string) Policy {
	return Policy{Name: "bootstrap", Rules: slices.Concat(engineFacts, lockRules(lockName))}
}

// Policies are the services' policies by name; servers are the Swarm services of the servers a restore stops,
// labelPrefix the prefix of the labels it journals in them (the backup service's policy).
func Policies(servers []string, labelPrefix string) map[string]Policy {
	return map[string]Policy{
		"bootstrap":   Bootstrap(lock.Name),
		"backup":      Backup(lock.Name, servers, labelPrefix),
		"spire-agent": SpireAgent(),
	}
}

// Names are the policies' names, sorted: those of Policies and AgentLauncherPolicy.
func Names() []string {
	out := []string{AgentLauncherPolicy}
	for n := range Policies(nil, "") {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// SpireAgent is the policy of a SPIRE agent's docker workload attestor (SPIRE v1.15, pkg/agent/plugin/
// workloadattestor/docker: ContainerInspect and ImageInspect, after the client's API version negotiation): read
// a container and an image. Read-only, but not harmless: a container's inspection carries its environment,
// labels and mounts, for any container on the node (the attestor must inspect whichever workload asks the agent).
func SpireAgent() Policy {
	return Policy{Name: "spire-agent", Rules: slices.Concat(engineFacts, []Rule{
		{Method: http.MethodGet, Path: regexp.MustCompile(`^/containers/([^/]+)/json$`), What: "inspect a container (the workload that asks the agent for an SVID)"},
		{Method: http.MethodGet, Path: regexp.MustCompile(`^/images/(.+)/json$`), What: "inspect its image (image ID and config digest selectors)"},
	})}
}

// Describe lists what p lets a service do, one line per rule.
func (p Policy) Describe() string {
	var b strings.Builder
	for _, r := range p.Rules {
		fmt.Fprintf(&b, "%-6s %-32s %s\n", r.Method, strings.Trim(r.Path.String(), "^$"), r.What)
	}
	return b.String()
}

// bodyNamed accepts a create or update whose spec (the body) names name.
func bodyNamed(name string) func(context.Context, *Call) error {
	return func(_ context.Context, c *Call) error {
		var spec struct{ Name string }
		if err := json.Unmarshal(c.Body, &spec); err != nil {
			return fmt.Errorf("the spec is not JSON: %v", err)
		}
		if spec.Name != name {
			return fmt.Errorf("the spec names %q, not %q", spec.Name, name)
		}
		return nil
	}
}

// configNamed accepts a call on a config (by name or ID) whose name, as the Engine has it, is name.
func configNamed(name string) func(context.Context, *Call) error {
	return func(ctx context.Context, c *Call) error {
		if c.Object == name {
			return nil
		}
		var cfg struct{ Spec struct{ Name string } }
		if err := c.Engine(ctx, "/configs/"+c.Object, &cfg); err != nil {
			return fmt.Errorf("config %s: %v", c.Object, err)
		}
		if cfg.Spec.Name != name {
			return fmt.Errorf("config %s is %q, not %q", c.Object, cfg.Spec.Name, name)
		}
		return nil
	}
}

func both(a, b func(context.Context, *Call) error) func(context.Context, *Call) error {
	return func(ctx context.Context, c *Call) error {
		if err := a(ctx, c); err != nil {
			return err
		}
		return b(ctx, c)
	}
}
