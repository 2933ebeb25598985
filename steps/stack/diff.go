package stack

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"

	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

// The engine stores a service spec in its own normal form: network names become IDs, secret and config names
// gain IDs, and absent optional parts come back empty rather than nil. Specs are therefore compared field by
// field on a view that both the desired and the live spec are reduced to; a field that differs is named in the
// plan, and a spec that does not differ is not updated (a re-run makes no call).

// field is one comparable part of a service spec.
type field struct {
	name string
	get  func(s *swarm.ServiceSpec, netName func(string) string) any
	// show renders a difference for the plan; nil means the field's name says enough.
	show func(before, after any) string
	// hide returns a value with what must not be shown (secrets) redacted; nil shows the value as it is.
	hide func(v any) any
}

var fields = []field{
	{name: "image", get: func(s *swarm.ServiceSpec, _ func(string) string) any { return cs(s).Image },
		show: func(b, a any) string { return fmt.Sprintf("image %v → %v", b, a) }},
	{name: "replicas", get: func(s *swarm.ServiceSpec, _ func(string) string) any { return modeString(s.Mode) },
		show: func(b, a any) string { return fmt.Sprintf("mode %v → %v", b, a) }},
	{name: "env", get: func(s *swarm.ServiceSpec, _ func(string) string) any { return sorted(cs(s).Env) },
		show: func(b, a any) string { return "env " + envDiff(b.([]string), a.([]string)) },
		hide: func(v any) any { return redactEnv(v.([]string)) }},
	{name: "mounts", get: func(s *swarm.ServiceSpec, _ func(string) string) any { return mounts(cs(s).Mounts) },
		show: func(b, a any) string { return "mounts " + setDiff(b.([]string), a.([]string)) }},
	{name: "secrets", get: func(s *swarm.ServiceSpec, _ func(string) string) any { return secretRefs(cs(s).Secrets) },
		show: func(b, a any) string { return "secrets " + setDiff(b.([]string), a.([]string)) }},
	{name: "configs", get: func(s *swarm.ServiceSpec, _ func(string) string) any { return configRefs(cs(s).Configs) },
		show: func(b, a any) string { return "configs " + setDiff(b.([]string), a.([]string)) }},
	{name: "networks", get: func(s *swarm.ServiceSpec, n func(string) string) any { return networks(s, n) },
		show: func(b, a any) string { return "networks " + setDiff(b.([]string), a.([]string)) }},
	{name: "command", get: func(s *swarm.ServiceSpec, _ func(string) string) any {
		return [2][]string{orNil(cs(s).Command), orNil(cs(s).Args)}
	}},
	{name: "labels", get: func(s *swarm.ServiceSpec, _ func(string) string) any {
		return [2]map[string]string{orNilMap(s.Labels), orNilMap(cs(s).Labels)}
	}},
	{name: "ports", get: func(s *swarm.ServiceSpec, _ func(string) string) any { return ports(s.EndpointSpec) },
		show: func(b, a any) string { return "ports " + setDiff(b.([]string), a.([]string)) }},
	{name: "healthcheck", get: func(s *swarm.ServiceSpec, _ func(string) string) any { return healthcheck(cs(s).Healthcheck) }},
	{name: "resources", get: func(s *swarm.ServiceSpec, _ func(string) string) any { return resources(s.TaskTemplate.Resources) }},
	{name: "restart_policy", get: func(s *swarm.ServiceSpec, _ func(string) string) any {
		return restartPolicy(s.TaskTemplate.RestartPolicy)
	}},
	{name: "placement", get: func(s *swarm.ServiceSpec, _ func(string) string) any { return placement(s.TaskTemplate.Placement) }},
	{name: "update_config", get: func(s *swarm.ServiceSpec, _ func(string) string) any {
		return [2]string{updateConfig(s.UpdateConfig), updateConfig(s.RollbackConfig)}
	}},
	{name: "container", get: func(s *swarm.ServiceSpec, _ func(string) string) any { return containerRest(cs(s)) }},
	{name: "log_driver", get: func(s *swarm.ServiceSpec, _ func(string) string) any { return fmt.Sprint(s.TaskTemplate.LogDriver) }},
}

// Difference is one field of a service spec that differs between the engine and the stack file.
type Difference struct {
	Field  string // e.g. "image", "env", "mounts", "replicas"
	Detail string // e.g. "image a:1 → a:2"; never a value of an environment variable
	// Before and After are the field's values in the engine and in the stack file, for the plan; the values
	// of environment variables are redacted.
	Before, After any
}

// Compare returns the fields in which live (as the engine returns it) differs from want (as converted from
// the stack file). netName maps a network ID of the live spec to its name.
func Compare(live, want *swarm.ServiceSpec, netName func(string) string) []Difference {
	var out []Difference
	ident := func(s string) string { return s }
	for _, f := range fields {
		b, a := f.get(live, netName), f.get(want, ident)
		if reflect.DeepEqual(b, a) {
			continue
		}
		d := Difference{Field: f.name, Detail: f.name, Before: b, After: a}
		if f.hide != nil {
			d.Before, d.After = f.hide(b), f.hide(a)
		}
		switch {
		case f.show != nil:
			d.Detail = f.show(b, a)
		default:
			if bs, ok := b.(string); ok {
				d.Detail = fmt.Sprintf("%s %s → %s", f.name, bs, a)
			}
		}
		out = append(out, d)
	}
	return out
}

func cs(s *swarm.ServiceSpec) *swarm.ContainerSpec {
	if s.TaskTemplate.ContainerSpec == nil {
		return &swarm.ContainerSpec{}
	}
	return s.TaskTemplate.ContainerSpec
}

func orNil[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

func orNilMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

func sorted(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	out := slices.Clone(s)
	sort.Strings(out)
	return out
}

func modeString(m swarm.ServiceMode) string {
	n := func(p *uint64) string {
		if p == nil {
			return "1"
		}
		return fmt.Sprint(*p)
	}
	switch k := modeKind(m); k {
	case "replicated-job":
		return k + ":" + n(m.ReplicatedJob.TotalCompletions) + "/" + n(m.ReplicatedJob.MaxConcurrent)
	case "replicated":
		var replicas *uint64
		if m.Replicated != nil {
			replicas = m.Replicated.Replicas
		}
		return k + ":" + n(replicas)
	default:
		return k
	}
}

// modeKind is the kind of a service mode: global, global-job, replicated-job or replicated (also when none is set).
func modeKind(m swarm.ServiceMode) string {
	switch {
	case m.Global != nil:
		return "global"
	case m.GlobalJob != nil:
		return "global-job"
	case m.ReplicatedJob != nil:
		return "replicated-job"
	}
	return "replicated"
}

func mounts(ms []mount.Mount) []string {
	var out []string
	for _, m := range ms {
		s := fmt.Sprintf("%s:%s→%s", m.Type, m.Source, m.Target)
		if m.ReadOnly {
			s += ":ro"
		}
		if m.Consistency != "" && m.Consistency != mount.ConsistencyDefault {
			s += ":" + string(m.Consistency)
		}
		if o := m.VolumeOptions; o != nil {
			if o.NoCopy {
				s += ":nocopy"
			}
			if o.Subpath != "" {
				s += ":subpath=" + o.Subpath
			}
			if o.DriverConfig != nil && o.DriverConfig.Name != "" {
				s += fmt.Sprintf(":driver=%s%v", o.DriverConfig.Name, o.DriverConfig.Options)
			}
			if len(o.Labels) > 0 {
				s += fmt.Sprintf(":labels=%v", o.Labels)
			}
		}
		if o := m.BindOptions; o != nil && o.Propagation != "" {
			s += ":" + string(o.Propagation)
		}
		if o := m.TmpfsOptions; o != nil && (o.SizeBytes != 0 || o.Mode != 0) {
			s += fmt.Sprintf(":size=%d:mode=%o", o.SizeBytes, o.Mode)
		}
		out = append(out, s)
	}
	return sorted(out)
}

func secretRefs(rs []*swarm.SecretReference) []string {
	var out []string
	for _, r := range rs {
		if r.File == nil {
			out = append(out, r.SecretName)
			continue
		}
		out = append(out, fmt.Sprintf("%s→%s:%s:%s:%o", r.SecretName, r.File.Name, r.File.UID, r.File.GID, r.File.Mode))
	}
	return sorted(out)
}

func configRefs(rs []*swarm.ConfigReference) []string {
	var out []string
	for _, r := range rs {
		switch {
		case r.File != nil:
			out = append(out, fmt.Sprintf("%s→%s:%s:%s:%o", r.ConfigName, r.File.Name, r.File.UID, r.File.GID, r.File.Mode))
		case r.Runtime != nil:
			out = append(out, r.ConfigName+"→runtime")
		default:
			out = append(out, r.ConfigName)
		}
	}
	return sorted(out)
}

func networks(s *swarm.ServiceSpec, name func(string) string) []string {
	nets := s.TaskTemplate.Networks
	if len(nets) == 0 {
		nets = s.Networks //nolint:staticcheck // specs written by old clients
	}
	var out []string
	for _, n := range nets {
		out = append(out, name(n.Target)+fmt.Sprint(sorted(n.Aliases))+fmt.Sprint(orNilMap(n.DriverOpts)))
	}
	return sorted(out)
}

func ports(e *swarm.EndpointSpec) []string {
	if e == nil {
		return nil
	}
	var out []string
	mode := e.Mode
	if mode == "" {
		mode = swarm.ResolutionModeVIP
	}
	out = append(out, "mode="+string(mode))
	for _, p := range e.Ports {
		proto := p.Protocol
		if proto == "" {
			proto = swarm.PortConfigProtocolTCP
		}
		pm := p.PublishMode
		if pm == "" {
			pm = swarm.PortConfigPublishModeIngress
		}
		out = append(out, fmt.Sprintf("%d:%d/%s/%s%s", p.PublishedPort, p.TargetPort, proto, pm, p.Name))
	}
	return sorted(out)
}

func healthcheck(h *container.HealthConfig) string {
	if h == nil {
		return ""
	}
	return fmt.Sprintf("%q %s %s %s %s %d", h.Test, h.Interval, h.Timeout, h.StartPeriod, h.StartInterval, h.Retries)
}

func resources(r *swarm.ResourceRequirements) string {
	if r == nil {
		return "{} {}"
	}
	l, res := "{}", "{}"
	if r.Limits != nil && (r.Limits.NanoCPUs != 0 || r.Limits.MemoryBytes != 0 || r.Limits.Pids != 0) {
		l = fmt.Sprintf("{cpu=%d mem=%d pids=%d}", r.Limits.NanoCPUs, r.Limits.MemoryBytes, r.Limits.Pids)
	}
	if r.Reservations != nil && (r.Reservations.NanoCPUs != 0 || r.Reservations.MemoryBytes != 0 || len(r.Reservations.GenericResources) > 0) {
		res = fmt.Sprintf("{cpu=%d mem=%d generic=%v}", r.Reservations.NanoCPUs, r.Reservations.MemoryBytes, len(r.Reservations.GenericResources))
	}
	return l + " " + res
}

func restartPolicy(p *swarm.RestartPolicy) string {
	if p == nil {
		return ""
	}
	// the engine stores the defaults it applies: condition any, delay 5s, no attempt limit, no window
	d := func(x *time.Duration, def time.Duration) string {
		if x == nil {
			return def.String()
		}
		return x.String()
	}
	n := uint64(0)
	if p.MaxAttempts != nil {
		n = *p.MaxAttempts
	}
	cond := p.Condition
	if cond == "" {
		cond = swarm.RestartPolicyConditionAny
	}
	return fmt.Sprintf("%s delay=%s attempts=%d window=%s", cond, d(p.Delay, 5*time.Second), n, d(p.Window, 0))
}

func placement(p *swarm.Placement) string {
	if p == nil {
		return "[] [] 0"
	}
	var prefs []string
	for _, x := range p.Preferences {
		if x.Spread != nil {
			prefs = append(prefs, "spread="+x.Spread.SpreadDescriptor)
		}
	}
	return fmt.Sprintf("%q %q %d", sorted(p.Constraints), prefs, p.MaxReplicas)
}

func updateConfig(u *swarm.UpdateConfig) string {
	if u == nil {
		return ""
	}
	n := *u
	// the engine's normal form: what a stack file leaves out is stored as Swarm's default
	if n.FailureAction == "" {
		n.FailureAction = swarm.UpdateFailureActionPause
	}
	if n.Order == "" {
		n.Order = swarm.UpdateOrderStopFirst
	}
	return fmt.Sprintf("%+v", n)
}

// containerRest compares what the other fields leave out of the container spec.
func containerRest(c *swarm.ContainerSpec) string {
	grace := "-"
	if c.StopGracePeriod != nil {
		grace = c.StopGracePeriod.String()
	}
	init := "-"
	if c.Init != nil {
		init = fmt.Sprint(*c.Init)
	}
	var ul []string
	for _, u := range c.Ulimits {
		ul = append(ul, fmt.Sprintf("%s=%d:%d", u.Name, u.Soft, u.Hard))
	}
	dns := ""
	if c.DNSConfig != nil {
		dns = fmt.Sprintf("%v", *c.DNSConfig)
	}
	return strings.Join([]string{
		"hostname=" + c.Hostname, "dir=" + c.Dir, "user=" + c.User, fmt.Sprint(sorted(c.Groups)), "init=" + init,
		"stop=" + c.StopSignal + "/" + grace, fmt.Sprint(c.TTY, c.OpenStdin, c.ReadOnly), fmt.Sprint(orNil(c.Hosts)), dns,
		fmt.Sprint(orNilMap(c.Sysctls)), fmt.Sprint(sorted(c.CapabilityAdd)), fmt.Sprint(sorted(c.CapabilityDrop)),
		fmt.Sprint(ul), fmt.Sprint(c.OomScoreAdj),
	}, " ")
}

// envDiff names the variables added (+), removed (-) and changed (~): names only, values may be sensitive.
func envDiff(before, after []string) string {
	kv := func(s []string) map[string]string {
		m := map[string]string{}
		for _, e := range s {
			k, v, _ := strings.Cut(e, "=")
			m[k] = v
		}
		return m
	}
	b, a := kv(before), kv(after)
	var parts []string
	for _, k := range sortedKeys(a) {
		if old, ok := b[k]; !ok {
			parts = append(parts, "+"+k)
		} else if old != a[k] {
			parts = append(parts, "~"+k)
		}
	}
	for _, k := range sortedKeys(b) {
		if _, ok := a[k]; !ok {
			parts = append(parts, "-"+k)
		}
	}
	return strings.Join(parts, " ")
}

// setDiff lists what after adds (+) to before and what it removes (-).
func setDiff(before, after []string) string {
	var parts []string
	for _, x := range after {
		if !slices.Contains(before, x) {
			parts = append(parts, "+"+x)
		}
	}
	for _, x := range before {
		if !slices.Contains(after, x) {
			parts = append(parts, "-"+x)
		}
	}
	return strings.Join(parts, " ")
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// redactEnv returns the variables of env (NAME=value) with their values redacted: a value may be a secret.
func redactEnv(env []string) []string {
	out := make([]string, len(env))
	for i, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		out[i] = name + "=" + steps.Redacted
	}
	return out
}
