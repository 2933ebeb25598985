package stacks

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"
	"golang.org/x/crypto/argon2"
)

// Service is one service of a stack: its full name (in Spec.Name), and what its convergence depends on.
type Service struct {
	Key  string // compose key, e.g. "spire-server"
	Spec swarm.ServiceSpec
	// Healthcheck reports whether the image or the stack defines a health check we wait for. (A task of such a
	// service is "running" only once healthy: Swarm keeps it "starting" until then.)
	Healthcheck bool
}

// Job reports whether the service runs to completion (replicated-job or global-job) instead of staying up.
func (s Service) Job() bool {
	return s.Spec.Mode.ReplicatedJob != nil || s.Spec.Mode.GlobalJob != nil
}

// converter turns one loaded compose project into a Stack, collecting every problem.
type converter struct {
	src      *source
	ns       string
	project  *types.Project
	fsys     fs.FS
	vars     map[string]string
	digests  SecretDigests
	problems []Problem
}

func (c *converter) fail(key, format string, args ...any) {
	c.problems = append(c.problems, Problem{Line: c.src.line(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (c *converter) scope(name string) string { return c.ns + "_" + name }

func (c *converter) labels(extra map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range extra {
		out[k] = v
	}
	out[LabelNamespace] = c.ns
	return out
}

// MaxObjectName is Swarm's limit for names of secrets, configs and services.
const MaxObjectName = 64

func (c *converter) convert() *Stack {
	p := c.project
	st := &Stack{File: c.src.file, Namespace: c.ns}
	for _, k := range sortedKeys(p.Networks) {
		n := p.Networks[k]
		net := Network{Key: k, External: bool(n.External), Driver: n.Driver, Options: n.DriverOpts,
			Labels: c.labels(n.Labels), Internal: n.Internal, Attachable: n.Attachable}
		switch {
		case bool(n.External):
			net.Name = n.Name
			if net.Name == "" {
				net.Name = k
			}
		case n.Name != "" && n.Name != c.scope(k):
			c.fail("networks."+k+".name", "only external networks may be named; the stack's networks are called <stack>_<key>")
			continue
		default:
			net.Name = c.scope(k)
			if net.Driver == "" {
				net.Driver = "overlay"
			}
			if net.Driver != "overlay" {
				c.fail("networks."+k+".driver", "%q: a stack's networks must be overlay networks", n.Driver)
			}
			if len(n.Ipam.Config) > 0 || n.Ipam.Driver != "" {
				c.fail("networks."+k+".ipam", "not supported by ziti-bootstrap; let Swarm allocate subnets")
			}
		}
		st.Networks = append(st.Networks, net)
	}
	for _, k := range sortedKeys(p.Volumes) {
		v := p.Volumes[k]
		vol := Volume{Key: k, External: bool(v.External), Driver: v.Driver, Labels: c.labels(v.Labels)}
		if v.External {
			vol.Name = v.Name
			if vol.Name == "" {
				vol.Name = k
			}
		} else {
			vol.Name = c.scope(k)
			if v.Name != "" && v.Name != c.scope(k) {
				c.fail("volumes."+k+".name", "only external volumes may be named; the stack's volumes are called <stack>_<key>")
			}
		}
		st.Volumes = append(st.Volumes, vol)
	}
	secrets := map[string]Object{}
	for _, k := range sortedKeys(p.Secrets) {
		if o, ok := c.object("secrets", k, types.FileObjectConfig(p.Secrets[k])); ok {
			secrets[k] = o
			st.Secrets = append(st.Secrets, o)
		}
	}
	configs := map[string]Object{}
	for _, k := range sortedKeys(p.Configs) {
		if o, ok := c.object("configs", k, types.FileObjectConfig(p.Configs[k])); ok {
			configs[k] = o
			st.Configs = append(st.Configs, o)
		}
	}
	for _, k := range sortedKeys(p.Services) {
		if svc, ok := c.service(p.Services[k], st, secrets, configs); ok {
			st.Services = append(st.Services, svc)
		}
	}
	return st
}

// object converts a secret or config: its data comes from a variable or from a file of this package.
func (c *converter) object(kind, key string, o types.FileObjectConfig) (Object, bool) {
	at := kind + "." + key
	var data []byte
	switch {
	case bool(o.External):
		c.fail(at+".external", "external %s are not supported: Swarm %s are immutable, so ziti-bootstrap creates and versions them; give `environment:` or `file:`", kind, kind)
		return Object{}, false
	case o.Name != "" && o.Name != c.scope(key): // compose-go names them <project>_<key> unless told otherwise
		c.fail(at+".name", "%s are named <stack>_<key>_<hash> by ziti-bootstrap; remove `name`", kind)
		return Object{}, false
	case o.Driver != "" || o.TemplateDriver != "":
		c.fail(at, "drivers are not supported")
		return Object{}, false
	case o.Environment != "":
		v, ok := c.vars[o.Environment]
		if !ok || v == "" {
			c.fail(at+".environment", "variable %s is not set (it holds the data of %s %s): set %s, or %s_FILE to a file holding it",
				o.Environment, strings.TrimSuffix(kind, "s"), key, o.Environment, o.Environment)
			return Object{}, false
		}
		data = []byte(v)
	case o.File != "":
		b, ok := c.readFile(kind, key, o.File)
		if !ok {
			return Object{}, false
		}
		data = b
	case o.Content != "":
		data = []byte(o.Content)
	default:
		c.fail(at, "no data: give `environment: VARIABLE` or `file: ./path`")
		return Object{}, false
	}
	obj, err := newObject(c.ns, key, data, o.Labels, kind == "secrets", c.digests)
	if err != nil {
		c.fail(at, "%v", err)
		return Object{}, false
	}
	return obj, true
}

// newObject is the secret or config key of stack namespace ns holding data: named <ns>_<key>_<hash of data>,
// labelled with the namespace and the key. The same data always gets the same name, so a re-run finds it. A
// secret's digits may come from digests (nil: none).
func newObject(ns, key string, data []byte, labels map[string]string, secret bool, digests SecretDigests) (Object, error) {
	name := ns + "_" + key + "_" + dataHash(ns, key, data, secret, digests)
	if len(name) > MaxObjectName {
		return Object{}, fmt.Errorf("name %s is longer than Swarm's %d characters: use a shorter key or stack name", name, MaxObjectName)
	}
	lbl := map[string]string{}
	for k, v := range labels {
		lbl[k] = v
	}
	lbl[LabelNamespace] = ns
	lbl[LabelKey] = key
	return Object{Key: key, Name: name, Data: data, Labels: lbl}, nil
}

// dataHash is the 8 hex digits that name a version of an object's data. A config's are those of its SHA-256. A
// secret's name is seen by whoever lists secrets or reads a plan, so a fast hash of it would let them test
// guesses of a weak password offline at billions a second: a secret's digits are those of Argon2id (OWASP's
// minimum: 19 MiB, two passes), salted with the stack namespace and key, which costs each guess tens of
// milliseconds and 19 MiB, and gives different names to the same password in different places.
//
// It stays this function, at these parameters, although each secret costs ~20 ms of CPU (~0.1 s on a loaded
// 2-core machine): the names of deployed secrets are made by it, so any other function (a keyed HMAC, cheaper
// Argon2 parameters) renames every secret of every deployment on its first up, and a renamed secret is a new
// spec for each service that mounts it (the controller, Keycloak, PostgreSQL restart; the bootstrap job runs
// again), and stacks rendered for `docker stack deploy` would no longer be adopted with 0 writes. A keyed hash
// would also need its key before any stack can be converted: an Engine read before the configuration is
// checked, and none at all for `render` and compose, which have no Swarm. So each secret is hashed once per
// process (memoised by salt and SHA-256 of the data, in memory only), one hash at a time: measured on this
// 2-core machine, 7 hashes took 155 ms one at a time and 160-180 ms two at a time, with 60-90% more CPU
// (Argon2 is bound by memory bandwidth), so the stacks loading at once (LoadStacks) take turns here. Across
// processes, digests (Options.Digests) may remember them where the secrets themselves are kept.
func dataHash(ns, key string, data []byte, secret bool, digests SecretDigests) string {
	sum := sha256.Sum256(data)
	if !secret {
		return hex.EncodeToString(sum[:4])
	}
	salt := "ziti-bootstrap swarm secret name\x00" + ns + "\x00" + key
	memo := salt + "\x00" + string(sum[:])
	if h, ok := secretHashes.Load(memo); ok {
		return h.(string)
	}
	argonTurn.Lock()
	defer argonTurn.Unlock()
	if h, ok := secretHashes.Load(memo); ok { // hashed while this one waited
		return h.(string)
	}
	if digests != nil {
		if h, ok := digests.Lookup(salt, data); ok && validDigits(h) {
			secretHashes.Store(memo, h)
			return h
		}
	}
	h := hex.EncodeToString(argon2.IDKey(data, []byte(salt), 2, 19*1024, 1, 4))
	secretHashes.Store(memo, h)
	if digests != nil {
		digests.Remember(salt, data, h)
	}
	return h
}

// SecretDigests remembers the digits dataHash gave secrets, across processes: by salt (stack namespace and key)
// and data. An implementation must keep them only where whoever can read them can read the data too (the digits
// and whatever finds them are a way to test guesses of the data), and must find them by a keyed hash of the
// data, never a plain one.
type SecretDigests interface {
	Lookup(salt string, data []byte) (digits string, ok bool)
	Remember(salt string, data []byte, digits string)
}

// validDigits reports whether h is 8 lowercase hex digits, as dataHash makes them.
func validDigits(h string) bool {
	return len(h) == 8 && strings.Trim(h, "0123456789abcdef") == ""
}

var (
	// secretHashes memoises dataHash of secrets, by salt and SHA-256 of the data.
	secretHashes sync.Map
	// argonTurn lets one Argon2 hash run at a time (see dataHash).
	argonTurn sync.Mutex
)

// unsupported are compose keys Swarm services cannot honour: refusing them beats silently ignoring them as
// `docker stack deploy` does.
func unsupported(s types.ServiceConfig) map[string]bool {
	return map[string]bool{
		"build":          s.Build != nil,
		"container_name": s.ContainerName != "",
		"depends_on":     len(s.DependsOn) > 0,
		"links":          len(s.Links) > 0,
		"network_mode":   s.NetworkMode != "",
		"pid":            s.Pid != "",
		"ipc":            s.Ipc != "",
		"privileged":     s.Privileged,
		"devices":        len(s.Devices) > 0,
		"cgroup_parent":  s.CgroupParent != "",
		"security_opt":   len(s.SecurityOpt) > 0,
		"userns_mode":    s.UserNSMode != "",
		"volumes_from":   len(s.VolumesFrom) > 0,
		"profiles":       len(s.Profiles) > 0,
		"restart":        s.Restart != "" && s.Deploy != nil && s.Deploy.RestartPolicy != nil,
		"env_file":       len(s.EnvFiles) > 0,
	}
}

func (c *converter) service(s types.ServiceConfig, st *Stack, secrets, configs map[string]Object) (Service, bool) {
	at := "services." + s.Name
	before := len(c.problems)
	if s.Image == "" {
		c.fail(at, "no image: every service needs `image:` (ziti-bootstrap does not build images)")
	}
	bad := unsupported(s)
	for _, k := range sortedKeys(bad) {
		if bad[k] {
			msg := "not supported by Swarm services; remove it"
			switch k {
			case "depends_on":
				msg = "Swarm has no start order within a stack; ziti-bootstrap gates each stack on the previous one's health. Remove it"
			case "restart":
				msg = "give either `restart` or `deploy.restart_policy`, not both"
			}
			c.fail(at+"."+k, "%s", msg)
		}
	}
	deploy := types.DeployConfig{}
	if s.Deploy != nil {
		deploy = *s.Deploy
	}
	name := c.scope(s.Name)
	if len(name) > MaxObjectName {
		c.fail(at, "service name %s is longer than Swarm's %d characters", name, MaxObjectName)
	}

	mode, err := convertMode(deploy.Mode, deploy.Replicas)
	if err != nil {
		c.fail(at+".deploy.mode", "%v", err)
	}
	mounts := c.mounts(at, s.Volumes)
	restart, err := convertRestartPolicy(s.Restart, deploy.RestartPolicy)
	if err != nil {
		c.fail(at+".restart", "%v", err)
	}
	resources, err := convertResources(deploy.Resources)
	if err != nil {
		c.fail(at+".deploy.resources", "%v", err)
	}
	health, err := convertHealthcheck(s.HealthCheck)
	if err != nil {
		c.fail(at+".healthcheck", "%v", err)
	}
	nets := c.networks(at, s)
	ports, err := convertPorts(s.Ports)
	if err != nil {
		c.fail(at+".ports", "%v", err)
	}
	var secretRefs []*swarm.SecretReference
	for _, r := range c.objectRefs(at, "secret", fileRefs(s.Secrets), secrets, func(k string) bool { _, ok := c.project.Secrets[k]; return ok },
		func(key string, r types.FileReferenceConfig) string {
			target := strings.TrimPrefix(r.Target, "/run/secrets/") // compose-go's normal form; Swarm wants the file name
			if target == "" {
				target = r.Source
			}
			if strings.Contains(target, "/") {
				c.fail(key, "target %q: a secret is a file name in /run/secrets, not a path", target)
			}
			return target
		}) {
		secretRefs = append(secretRefs, &swarm.SecretReference{SecretName: r.name,
			File: &swarm.SecretReferenceFileTarget{Name: r.target, UID: r.uid, GID: r.gid, Mode: r.mode}})
	}
	var configRefs []*swarm.ConfigReference
	for _, r := range c.objectRefs(at, "config", fileRefs(s.Configs), configs, func(k string) bool { _, ok := c.project.Configs[k]; return ok },
		func(_ string, r types.FileReferenceConfig) string {
			if r.Target == "" {
				return "/" + r.Source
			}
			return r.Target
		}) {
		configRefs = append(configRefs, &swarm.ConfigReference{ConfigName: r.name,
			File: &swarm.ConfigReferenceFileTarget{Name: r.target, UID: r.uid, GID: r.gid, Mode: r.mode}})
	}

	var stopGrace *time.Duration
	if s.StopGracePeriod != nil {
		d := time.Duration(*s.StopGracePeriod)
		stopGrace = &d
	}
	var logDriver *swarm.Driver
	if s.Logging != nil {
		logDriver = &swarm.Driver{Name: s.Logging.Driver, Options: s.Logging.Options}
	}
	var dns *swarm.DNSConfig
	if len(s.DNS) > 0 || len(s.DNSSearch) > 0 || len(s.DNSOpts) > 0 {
		dns = &swarm.DNSConfig{Nameservers: s.DNS, Search: s.DNSSearch, Options: s.DNSOpts}
	}
	serviceLabels := c.labels(deploy.Labels)
	serviceLabels[LabelImage] = s.Image
	spec := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: name, Labels: serviceLabels},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{
				Image:           s.Image,
				Labels:          c.labels(s.Labels),
				Command:         s.Entrypoint,
				Args:            s.Command,
				Hostname:        s.Hostname,
				Env:             convertEnvironment(s.Environment),
				Dir:             s.WorkingDir,
				User:            s.User,
				Groups:          s.GroupAdd,
				Init:            s.Init,
				StopSignal:      s.StopSignal,
				TTY:             s.Tty,
				OpenStdin:       s.StdinOpen,
				ReadOnly:        s.ReadOnly,
				Mounts:          mounts,
				StopGracePeriod: stopGrace,
				Healthcheck:     health,
				Hosts:           convertExtraHosts(s.ExtraHosts),
				DNSConfig:       dns,
				Secrets:         secretRefs,
				Configs:         configRefs,
				Sysctls:         s.Sysctls,
				CapabilityAdd:   s.CapAdd,
				CapabilityDrop:  s.CapDrop,
				Ulimits:         convertUlimits(s.Ulimits),
			},
			Resources:     resources,
			RestartPolicy: restart,
			Placement: &swarm.Placement{
				Constraints: deploy.Placement.Constraints,
				Preferences: convertPreferences(deploy.Placement.Preferences),
				MaxReplicas: deploy.Placement.MaxReplicas,
			},
			LogDriver: logDriver,
			Networks:  nets,
		},
		Mode:           mode,
		UpdateConfig:   convertUpdateConfig(deploy.UpdateConfig),
		RollbackConfig: convertUpdateConfig(deploy.RollbackConfig),
		EndpointSpec:   &swarm.EndpointSpec{Mode: swarm.ResolutionMode(strings.ToLower(deploy.EndpointMode)), Ports: ports},
	}
	if spec.EndpointSpec.Mode == "" {
		spec.EndpointSpec.Mode = swarm.ResolutionModeVIP
	}
	if len(c.problems) > before {
		return Service{}, false
	}
	return Service{Key: s.Name, Spec: spec, Healthcheck: health != nil && len(health.Test) > 0 && health.Test[0] != "NONE"}, true
}

// objectRef is a service's checked reference to a top-level secret or config: the object's name and its file.
type objectRef struct {
	name, target, uid, gid string
	mode                   os.FileMode
}

// objectRefs checks a service's references to the top-level objects of kind ("secret" or "config", declared
// under `secrets:` or `configs:`) and returns them sorted by file. A reference to an undeclared object is
// reported; one to a declared object that failed was reported with the object. target gives the file of a
// reference (and may report a problem under key).
func (c *converter) objectRefs(at, kind string, refs []types.FileReferenceConfig, objs map[string]Object, declared func(string) bool,
	target func(key string, r types.FileReferenceConfig) string) []objectRef {
	var out []objectRef
	for i, r := range refs {
		key := fmt.Sprintf("%s.%ss.%d", at, kind, i)
		o, ok := objs[r.Source]
		if declared(r.Source) && !ok {
			continue // reported with the object
		}
		if !ok {
			c.fail(key, "%s %q is not declared under the top-level `%ss:`", kind, r.Source, kind)
			continue
		}
		out = append(out, objectRef{name: o.Name, target: target(key, r), uid: orDefault(r.UID, "0"), gid: orDefault(r.GID, "0"), mode: fileMode(r.Mode)})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].target < out[j].target })
	return out
}

// fileRefs returns a service's secret or config references in their common form.
func fileRefs[T types.ServiceSecretConfig | types.ServiceConfigObjConfig](refs []T) []types.FileReferenceConfig {
	out := make([]types.FileReferenceConfig, len(refs))
	for i, r := range refs {
		out[i] = types.FileReferenceConfig(r)
	}
	return out
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func fileMode(m *types.FileMode) os.FileMode {
	if m == nil {
		return 0o444
	}
	return os.FileMode(*m)
}

// networks attaches the service to its networks, each with the service's short name as an alias (as
// `docker stack deploy` does).
func (c *converter) networks(at string, s types.ServiceConfig) []swarm.NetworkAttachmentConfig {
	var out []swarm.NetworkAttachmentConfig
	for _, k := range sortedKeys(s.Networks) {
		n, ok := c.project.Networks[k]
		if !ok {
			c.fail(at+".networks."+k, "network %q is not declared under the top-level `networks:`", k)
			continue
		}
		target := c.scope(k)
		if n.External {
			target = orDefault(n.Name, k)
		}
		a := swarm.NetworkAttachmentConfig{Target: target}
		if cfg := s.Networks[k]; cfg != nil {
			a.Aliases = append(a.Aliases, cfg.Aliases...)
			a.DriverOpts = cfg.DriverOpts
		}
		if !slices.Contains(a.Aliases, s.Name) {
			a.Aliases = append(a.Aliases, s.Name)
		}
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Target < out[j].Target })
	return out
}

func (c *converter) mounts(at string, vols []types.ServiceVolumeConfig) []mount.Mount {
	var out []mount.Mount
	for i, v := range vols {
		key := fmt.Sprintf("%s.volumes.%d", at, i)
		m := mount.Mount{Type: mount.Type(v.Type), Target: v.Target, ReadOnly: v.ReadOnly}
		if v.Consistency != "" {
			m.Consistency = mount.Consistency(v.Consistency)
		}
		switch v.Type {
		case types.VolumeTypeVolume:
			if v.Source == "" {
				c.fail(key, "anonymous volumes are not supported: name the volume and declare it under `volumes:`")
				continue
			}
			decl, ok := c.project.Volumes[v.Source]
			if !ok {
				c.fail(key, "volume %q is not declared under the top-level `volumes:`", v.Source)
				continue
			}
			m.Source = c.scope(v.Source)
			if decl.External {
				m.Source = orDefault(decl.Name, v.Source)
			}
			m.VolumeOptions = &mount.VolumeOptions{Labels: c.labels(decl.Labels)}
			if decl.External {
				m.VolumeOptions.Labels = nil
			}
			if v.Volume != nil {
				m.VolumeOptions.NoCopy = v.Volume.NoCopy
				m.VolumeOptions.Subpath = v.Volume.Subpath
			}
			if decl.Driver != "" && !decl.External {
				m.VolumeOptions.DriverConfig = &mount.Driver{Name: decl.Driver, Options: decl.DriverOpts}
			}
		case types.VolumeTypeBind:
			if !path.IsAbs(v.Source) {
				c.fail(key, "bind source %q: must be an absolute path on every node (a relative path means nothing to Swarm)", v.Source)
				continue
			}
			m.Source = v.Source
			if v.Bind != nil && v.Bind.Propagation != "" {
				m.BindOptions = &mount.BindOptions{Propagation: mount.Propagation(v.Bind.Propagation)}
			}
		case types.VolumeTypeTmpfs:
			if v.Source != "" {
				c.fail(key, "a tmpfs mount has no source")
				continue
			}
			if v.Tmpfs != nil {
				m.TmpfsOptions = &mount.TmpfsOptions{SizeBytes: int64(v.Tmpfs.Size), Mode: os.FileMode(v.Tmpfs.Mode)}
			}
		default:
			c.fail(key, "volume type %q is not supported by Swarm services (use volume, bind or tmpfs)", v.Type)
			continue
		}
		out = append(out, m)
	}
	return out
}

func convertMode(mode string, replicas *int) (swarm.ServiceMode, error) {
	var r *uint64
	if replicas != nil {
		if *replicas < 0 {
			return swarm.ServiceMode{}, fmt.Errorf("replicas %d: must not be negative", *replicas)
		}
		n := uint64(*replicas)
		r = &n
	}
	one := uint64(1)
	switch mode {
	case "global":
		if replicas != nil {
			return swarm.ServiceMode{}, fmt.Errorf("replicas can only be used with replicated or replicated-job mode")
		}
		return swarm.ServiceMode{Global: &swarm.GlobalService{}}, nil
	case "global-job":
		if replicas != nil {
			return swarm.ServiceMode{}, fmt.Errorf("replicas can only be used with replicated or replicated-job mode")
		}
		return swarm.ServiceMode{GlobalJob: &swarm.GlobalJob{}}, nil
	case "replicated-job":
		if r == nil {
			r = &one
		}
		return swarm.ServiceMode{ReplicatedJob: &swarm.ReplicatedJob{MaxConcurrent: r, TotalCompletions: r}}, nil
	case "replicated", "":
		if r == nil {
			r = &one // the engine's default, made explicit so that specs compare equal
		}
		return swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: r}}, nil
	}
	return swarm.ServiceMode{}, fmt.Errorf("unknown mode %q (replicated, global, replicated-job, global-job)", mode)
}

func convertRestartPolicy(restart string, p *types.RestartPolicy) (*swarm.RestartPolicy, error) {
	if p == nil {
		switch {
		case restart == "" || restart == "no":
			return nil, nil
		case restart == "always" || restart == "unless-stopped":
			return &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny}, nil
		case strings.HasPrefix(restart, "on-failure"):
			rp := &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionOnFailure}
			if _, n, ok := strings.Cut(restart, ":"); ok {
				attempts, err := strconv.ParseUint(n, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("restart %q: bad attempt count", restart)
				}
				rp.MaxAttempts = &attempts
			}
			return rp, nil
		}
		return nil, fmt.Errorf("unknown restart policy %q", restart)
	}
	cond := swarm.RestartPolicyCondition(p.Condition)
	switch cond {
	case "", swarm.RestartPolicyConditionAny, swarm.RestartPolicyConditionOnFailure, swarm.RestartPolicyConditionNone:
	default:
		return nil, fmt.Errorf("restart_policy.condition %q: use none, on-failure or any", p.Condition)
	}
	return &swarm.RestartPolicy{Condition: cond, Delay: durationPtr(p.Delay), MaxAttempts: p.MaxAttempts, Window: durationPtr(p.Window)}, nil
}

func durationPtr(d *types.Duration) *time.Duration {
	if d == nil {
		return nil
	}
	v := time.Duration(*d)
	return &v
}

// nanoCPUs converts a compose cpus value (a float32) to nano CPUs, exactly for decimal values such as 0.1.
func nanoCPUs(n types.NanoCPUs) (int64, error) {
	if n == 0 {
		return 0, nil
	}
	r, ok := new(big.Rat).SetString(strconv.FormatFloat(float64(n), 'f', -1, 32))
	if !ok || r.Sign() < 0 {
		return 0, fmt.Errorf("cpus %v: not a positive number", n)
	}
	r.Mul(r, big.NewRat(1e9, 1))
	if !r.IsInt() {
		return 0, fmt.Errorf("cpus %v: too precise (at most 9 decimals)", n)
	}
	return r.Num().Int64(), nil
}

func convertResources(r types.Resources) (*swarm.ResourceRequirements, error) {
	out := &swarm.ResourceRequirements{}
	if r.Limits != nil {
		cpus, err := nanoCPUs(r.Limits.NanoCPUs)
		if err != nil {
			return nil, err
		}
		out.Limits = &swarm.Limit{NanoCPUs: cpus, MemoryBytes: int64(r.Limits.MemoryBytes), Pids: r.Limits.Pids}
	}
	if r.Reservations != nil {
		cpus, err := nanoCPUs(r.Reservations.NanoCPUs)
		if err != nil {
			return nil, err
		}
		res := &swarm.Resources{NanoCPUs: cpus, MemoryBytes: int64(r.Reservations.MemoryBytes)}
		for _, g := range r.Reservations.GenericResources {
			if g.DiscreteResourceSpec != nil {
				res.GenericResources = append(res.GenericResources, swarm.GenericResource{DiscreteResourceSpec: &swarm.DiscreteGenericResource{
					Kind: g.DiscreteResourceSpec.Kind, Value: g.DiscreteResourceSpec.Value}})
			}
		}
		if len(r.Reservations.Devices) > 0 {
			return nil, fmt.Errorf("reservations.devices: not supported by Swarm services")
		}
		out.Reservations = res
	}
	return out, nil
}

func convertHealthcheck(h *types.HealthCheckConfig) (*container.HealthConfig, error) {
	if h == nil {
		return nil, nil
	}
	if h.Disable {
		if len(h.Test) != 0 {
			return nil, fmt.Errorf("test and disable can't be set at the same time")
		}
		return &container.HealthConfig{Test: []string{"NONE"}}, nil
	}
	out := &container.HealthConfig{Test: h.Test}
	if h.Timeout != nil {
		out.Timeout = time.Duration(*h.Timeout)
	}
	if h.Interval != nil {
		out.Interval = time.Duration(*h.Interval)
	}
	if h.StartPeriod != nil {
		out.StartPeriod = time.Duration(*h.StartPeriod)
	}
	if h.StartInterval != nil {
		out.StartInterval = time.Duration(*h.StartInterval)
	}
	if h.Retries != nil {
		out.Retries = int(*h.Retries)
	}
	return out, nil
}

func convertPorts(ports []types.ServicePortConfig) ([]swarm.PortConfig, error) {
	var out []swarm.PortConfig
	for _, p := range ports {
		pc := swarm.PortConfig{Name: p.Name, TargetPort: p.Target, Protocol: swarm.PortConfigProtocol(orDefault(p.Protocol, "tcp")),
			PublishMode: swarm.PortConfigPublishMode(orDefault(p.Mode, "ingress"))}
		if p.HostIP != "" {
			return nil, fmt.Errorf("host_ip %s: Swarm publishes on every address; remove it", p.HostIP)
		}
		if p.Published != "" {
			n, err := strconv.ParseUint(p.Published, 10, 16)
			if err != nil {
				return nil, fmt.Errorf("published %q: a single port number is required (ranges are not supported)", p.Published)
			}
			pc.PublishedPort = uint32(n)
		}
		out = append(out, pc)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].PublishedPort != out[j].PublishedPort {
			return out[i].PublishedPort < out[j].PublishedPort
		}
		return out[i].TargetPort < out[j].TargetPort
	})
	return out, nil
}

func convertUpdateConfig(u *types.UpdateConfig) *swarm.UpdateConfig {
	if u == nil {
		return nil
	}
	parallel := uint64(1)
	if u.Parallelism != nil {
		parallel = *u.Parallelism
	}
	return &swarm.UpdateConfig{Parallelism: parallel, Delay: time.Duration(u.Delay), FailureAction: u.FailureAction,
		Monitor: time.Duration(u.Monitor), MaxFailureRatio: u.MaxFailureRatio, Order: u.Order}
}

func convertPreferences(prefs []types.PlacementPreferences) []swarm.PlacementPreference {
	var out []swarm.PlacementPreference
	for _, p := range prefs {
		out = append(out, swarm.PlacementPreference{Spread: &swarm.SpreadOver{SpreadDescriptor: p.Spread}})
	}
	return out
}

// convertEnvironment returns KEY=VALUE pairs, sorted; a variable without a value (KEY) is passed as is.
func convertEnvironment(env types.MappingWithEquals) []string {
	var out []string
	for k, v := range env {
		if v == nil {
			out = append(out, k)
		} else {
			out = append(out, k+"="+*v)
		}
	}
	sort.Strings(out)
	return out
}

// convertExtraHosts converts host:ip to Swarm's "ip host" notation, keeping the order.
func convertExtraHosts(hosts types.HostsList) []string {
	var out []string
	for _, h := range sortedKeys(hosts) {
		for _, ip := range hosts[h] {
			out = append(out, ip+" "+h)
		}
	}
	return out
}

func convertUlimits(u map[string]*types.UlimitsConfig) []*container.Ulimit {
	var out []*container.Ulimit
	for _, name := range sortedKeys(u) {
		l := u[name]
		if l.Single != 0 {
			out = append(out, &container.Ulimit{Name: name, Soft: int64(l.Single), Hard: int64(l.Single)})
		} else {
			out = append(out, &container.Ulimit{Name: name, Soft: int64(l.Soft), Hard: int64(l.Hard)})
		}
	}
	return out
}
