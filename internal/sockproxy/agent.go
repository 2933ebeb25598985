package sockproxy

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
)

// AgentLauncherPolicy is the name of the SPIRE agent launcher's policy (AgentLauncher), which needs the launcher's
// settings: the agent container it may make.
const AgentLauncherPolicy = "agent-launcher"

// Agent is what the agent launcher's policy lets it make and touch: one container, its volumes and its image.
type Agent struct {
	// Container is the agent container exactly as the launcher creates it, but for the labels of OwnLabels.
	Container docker.ContainerSpec
	// OwnLabels are the labels whose values the launcher computes (the hashes of its spec): each must be present,
	// with a value its pattern matches.
	OwnLabels map[string]*regexp.Regexp
	// VolumeLabels are the labels of the volumes it creates: the named volumes of Container's mounts.
	VolumeLabels map[string]string
	// FilesDir is the directory of the container the launcher copies files into (regular files only).
	FilesDir string
	// Events are the container events it follows (of Container.Name only).
	Events []string
}

// AgentLauncher is the SPIRE agent launcher's policy (internal/agentlauncher): the calls of the agent's own
// proxy, which the launcher serves in-process in front of this one (SpireAgent: inspect any container and
// image), and the launcher's: pull the agent's image, inspect and create its volumes (the local driver, no
// options, their labels), create the agent container exactly as a.Container (no other image, command, user,
// mount, capability, device, privilege or network), copy regular files into a.FilesDir of it, start, stop,
// unpause and remove it (by name, or by an ID the Engine says has its name) and follow its events. No other
// container, no exec, service, secret, config, network or image build.
func AgentLauncher(a Agent) Policy {
	name := a.Container.Name
	return Policy{Name: AgentLauncherPolicy, Rules: slices.Concat(SpireAgent().Rules, []Rule{
		{Method: http.MethodPost, Path: regexp.MustCompile(`^/images/create$`), Check: pullsOnly(a.Container.Image), What: "pull the agent's image (" + a.Container.Image + ")"},
		{Method: http.MethodGet, Path: regexp.MustCompile(`^/volumes/([^/]+)$`), Check: volumeOf(a), What: "inspect the agent's volumes"},
		{Method: http.MethodPost, Path: regexp.MustCompile(`^/volumes/create$`), Check: createsVolumeOf(a), What: "create the agent's volumes (local driver, no options)"},
		{Method: http.MethodPost, Path: regexp.MustCompile(`^/containers/create$`), Check: createsAgent(a), What: "create the agent container " + name + " as the launcher's settings make it, and no other"},
		{Method: http.MethodPut, Path: regexp.MustCompile(`^/containers/([^/]+)/archive$`), Check: both(agentContainer(name), filesInto(a.FilesDir)), What: "copy regular files into " + a.FilesDir + " of the agent container"},
		{Method: http.MethodPost, Path: regexp.MustCompile(`^/containers/([^/]+)/(?:start|stop|unpause)$`), Check: agentContainer(name), What: "start, stop, unpause the agent container"},
		{Method: http.MethodDelete, Path: regexp.MustCompile(`^/containers/([^/]+)$`), Check: agentContainer(name), What: "remove the agent container"},
		{Method: http.MethodGet, Path: regexp.MustCompile(`^/events$`), Check: eventsOf(name, a.Events), What: "follow the agent container's events (" + strings.Join(a.Events, ", ") + ")"},
	})}
}

// agentContainer accepts a call on the container named name, or with an ID the Engine says has that name.
func agentContainer(name string) func(context.Context, *Call) error {
	return func(ctx context.Context, c *Call) error {
		if c.Object == name {
			return nil
		}
		var k struct{ Name string }
		if err := c.Engine(ctx, "/containers/"+c.Object+"/json", &k); err != nil {
			return fmt.Errorf("container %s: %v", c.Object, err)
		}
		if strings.TrimPrefix(k.Name, "/") != name {
			return fmt.Errorf("container %s is %q, not the agent container %q", c.Object, strings.TrimPrefix(k.Name, "/"), name)
		}
		return nil
	}
}

// pullsOnly accepts the pull of image (fromImage and tag as the Docker client sends them) and nothing else that
// POST /images/create does (an import from a URL or the body, another platform).
func pullsOnly(image string) func(context.Context, *Call) error {
	return func(_ context.Context, c *Call) error {
		ref, err := reference.ParseNormalizedNamed(image)
		if err != nil {
			return fmt.Errorf("the agent's image %q: %v", image, err)
		}
		tag := ""
		if d, ok := ref.(reference.Digested); ok {
			tag = d.Digest().String()
		} else if t, ok := reference.TagNameOnly(ref).(reference.Tagged); ok {
			tag = t.Tag()
		}
		if err := onlyQuery(c, "fromImage", "tag"); err != nil {
			return err
		}
		if got := c.Query.Get("fromImage") + ":" + c.Query.Get("tag"); got != ref.Name()+":"+tag || len(c.Body) > 0 {
			return fmt.Errorf("only a pull of %s is allowed, not fromImage=%q tag=%q", image, c.Query.Get("fromImage"), c.Query.Get("tag"))
		}
		return nil
	}
}

// onlyQuery refuses a query parameter not in keys, or given twice.
func onlyQuery(c *Call, keys ...string) error {
	for k, v := range c.Query {
		if !slices.Contains(keys, k) || len(v) != 1 {
			return fmt.Errorf("query parameter %s is not one the launcher sends (%s, once each)", k, strings.Join(keys, ", "))
		}
	}
	return nil
}

// volumes are the named volumes of a's container.
func (a Agent) volumes() []string {
	var out []string
	for _, m := range a.Container.Mounts {
		if m.Volume {
			out = append(out, m.Source)
		}
	}
	return out
}

func volumeOf(a Agent) func(context.Context, *Call) error {
	return func(_ context.Context, c *Call) error {
		if !slices.Contains(a.volumes(), c.Object) {
			return fmt.Errorf("volume %s is not one of the agent's (%s)", c.Object, strings.Join(a.volumes(), ", "))
		}
		return nil
	}
}

// createsVolumeOf accepts the creation of one of the agent's volumes with the local driver, no driver option (the
// local driver's options can mount any host path) and exactly a.VolumeLabels.
func createsVolumeOf(a Agent) func(context.Context, *Call) error {
	return func(_ context.Context, c *Call) error {
		var v volume.CreateOptions
		if err := strictJSON(c.Body, &v); err != nil {
			return err
		}
		if !slices.Contains(a.volumes(), v.Name) {
			return fmt.Errorf("volume %q is not one of the agent's (%s)", v.Name, strings.Join(a.volumes(), ", "))
		}
		if v.Driver != "local" && v.Driver != "" || !equalJSON(v.Labels, a.VolumeLabels) {
			return fmt.Errorf("volume %s: driver %q, labels %v; only the local driver with the labels %v", v.Name, v.Driver, v.Labels, a.VolumeLabels)
		}
		name := v.Name
		v.Name, v.Driver, v.Labels = "", "", nil
		return noneSet("volume "+name, v)
	}
}

// createsAgent accepts the creation of a's container and of no other: its request must say exactly what
// docker.ContainerSpec can say (anything else set, such as a capability, a device, privileged, another PID or
// network namespace, a mount option, is refused), and that must be a.Container but for the labels of
// a.OwnLabels.
func createsAgent(a Agent) func(context.Context, *Call) error {
	return func(_ context.Context, c *Call) error {
		if err := onlyQuery(c, "name"); err != nil {
			return err
		}
		got, err := readContainer(c.Query.Get("name"), c.Body)
		if err != nil {
			return err
		}
		labels := map[string]string{}
		for k, v := range got.Labels {
			labels[k] = v
		}
		for k, re := range a.OwnLabels {
			if !re.MatchString(labels[k]) {
				return fmt.Errorf("label %s=%q: want a value matching %s", k, labels[k], re)
			}
			delete(labels, k)
		}
		got.Labels = labels
		if diff := specDiff(got, a.Container); len(diff) > 0 {
			return fmt.Errorf("not the agent container of the launcher's settings: %s", strings.Join(diff, "; "))
		}
		return nil
	}
}

// readContainer reads a container create request (its body and name) as the docker.ContainerSpec it says; a
// field a ContainerSpec cannot say is an error.
func readContainer(name string, body []byte) (docker.ContainerSpec, error) {
	var req container.CreateRequest
	if err := strictJSON(body, &req); err != nil {
		return docker.ContainerSpec{}, err
	}
	if req.Config == nil || req.HostConfig == nil {
		return docker.ContainerSpec{}, errors.New("the request has no Config or no HostConfig")
	}
	cfg, hc := *req.Config, *req.HostConfig
	s := docker.ContainerSpec{Name: name, Image: cfg.Image, Entrypoint: cfg.Entrypoint, Cmd: cfg.Cmd, User: cfg.User, Labels: cfg.Labels,
		Network: string(hc.NetworkMode), HostPID: hc.PidMode.IsHost(), Restart: string(hc.RestartPolicy.Name)}
	if hc.PidMode != "" && !hc.PidMode.IsHost() {
		return s, fmt.Errorf("PidMode %q: only the host's", hc.PidMode)
	}
	if h := cfg.Healthcheck; h != nil {
		if len(h.Test) == 0 || h.Test[0] != "CMD" || h.StartInterval != 0 {
			return s, fmt.Errorf("healthcheck %q: only an exec form (CMD) without start interval", h.Test)
		}
		s.Health = &docker.HealthCheck{Test: h.Test[1:], Interval: h.Interval, Timeout: h.Timeout, StartPeriod: h.StartPeriod, Retries: h.Retries}
	}
	for _, m := range hc.Mounts {
		plain := mount.Mount{Type: m.Type, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly}
		if m.Type != mount.TypeBind && m.Type != mount.TypeVolume || !reflect.DeepEqual(m, plain) {
			return s, fmt.Errorf("mount %s at %s: only a bind or a volume without options", m.Source, m.Target)
		}
		s.Mounts = append(s.Mounts, docker.Mount{Volume: m.Type == mount.TypeVolume, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
	}
	if nc := req.NetworkingConfig; nc != nil {
		for n, ep := range nc.EndpointsConfig {
			if n != s.Network || ep != nil && !reflect.DeepEqual(*ep, network.EndpointSettings{}) {
				return s, fmt.Errorf("endpoint %q: only the container's network %q, without settings", n, s.Network)
			}
		}
	}
	cfg.Image, cfg.Entrypoint, cfg.Cmd, cfg.User, cfg.Labels, cfg.Healthcheck = "", nil, nil, "", nil, nil
	hc.NetworkMode, hc.PidMode, hc.RestartPolicy.Name, hc.Mounts = "", "", "", nil
	return s, noneSet("container "+name, container.CreateRequest{Config: &cfg, HostConfig: &hc})
}

// specDiff names the fields of got that differ from want, with both values (for a list, what it has more and
// what it lacks).
func specDiff(got, want docker.ContainerSpec) []string {
	var out []string
	g, w := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := range g.NumField() {
		name, a, b := g.Type().Field(i).Name, jsonOf(g.Field(i).Interface()), jsonOf(w.Field(i).Interface())
		switch {
		case a == b:
		case g.Field(i).Kind() == reflect.Slice && g.Field(i).Len() > 0 && w.Field(i).Len() > 0:
			ga, wa := elements(g.Field(i)), elements(w.Field(i))
			more, less := minus(ga, wa), minus(wa, ga)
			if more == "[]" && less == "[]" {
				out = append(out, fmt.Sprintf("%s in another order", name))
			} else {
				out = append(out, fmt.Sprintf("%s: %s more, %s less", name, more, less))
			}
		default:
			out = append(out, fmt.Sprintf("%s %s, want %s", name, a, b))
		}
	}
	return out
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// elements are the JSON forms of a slice's elements.
func elements(v reflect.Value) []string {
	out := make([]string, v.Len())
	for i := range out {
		out[i] = jsonOf(v.Index(i).Interface())
	}
	return out
}

// minus lists the elements of a that b lacks, in a's order.
func minus(a, b []string) string {
	var out []string
	for _, e := range a {
		if !slices.Contains(b, e) {
			out = append(out, e)
		}
	}
	return "[" + strings.Join(out, ",") + "]"
}

// filesInto accepts an archive of regular files directly in dir (as the launcher copies the agent's files), put
// at the container's root: no link, device, directory or file elsewhere (such as the agent's binary), no extended
// attribute, no compressed archive.
func filesInto(dir string) func(context.Context, *Call) error {
	rel := strings.TrimPrefix(path.Clean(dir), "/")
	return func(_ context.Context, c *Call) error {
		if err := onlyQuery(c, "path", "noOverwriteDirNonDir"); err != nil {
			return err
		}
		if c.Query.Get("path") != "/" {
			return fmt.Errorf("path %q: the launcher copies its archive to /", c.Query.Get("path"))
		}
		tr := tar.NewReader(bytes.NewReader(c.Body))
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("the archive (an uncompressed tar): %v", err)
			}
			if h.Typeflag != tar.TypeReg || path.Dir(path.Clean(h.Name)) != rel || path.Clean(h.Name) != h.Name {
				return fmt.Errorf("archive entry %q (type %q): only regular files directly in %s", h.Name, h.Typeflag, dir)
			}
			for k := range h.PAXRecords {
				if strings.Contains(k, "xattr.") {
					return fmt.Errorf("archive entry %q: extended attribute %s (e.g. file capabilities): the launcher sets none", h.Name, k)
				}
			}
		}
	}
}

// eventsOf accepts the event stream filtered to containers named name and some of the actions events only.
func eventsOf(name string, events []string) func(context.Context, *Call) error {
	return func(_ context.Context, c *Call) error {
		if err := onlyQuery(c, "filters"); err != nil {
			return err
		}
		var f map[string]map[string]bool
		if err := json.Unmarshal([]byte(c.Query.Get("filters")), &f); err != nil {
			return fmt.Errorf("filters: %v", err)
		}
		ok := equalJSON(f["type"], map[string]bool{"container": true}) && equalJSON(f["container"], map[string]bool{name: true})
		for k, vs := range f {
			for v := range vs {
				ok = ok && (k == "type" || k == "container" || k == "event" && slices.Contains(events, v))
			}
		}
		if !ok {
			return fmt.Errorf("only the events of container %s (filters type=container, container=%s, event among %s)", name, name, strings.Join(events, ", "))
		}
		return nil
	}
}

// strictJSON decodes body into v, refusing a field v does not have (the Engine may know it) and trailing data.
func strictJSON(body []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("the request: %v", err)
	}
	if d.More() {
		return errors.New("the request: data after the JSON document")
	}
	return nil
}

// noneSet refuses v (what remains of a request once the fields a check allows are taken out) when any of its
// fields is set, at any depth, and names them.
func noneSet(what string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var tree any
	if err := json.Unmarshal(b, &tree); err != nil {
		return err
	}
	var set []string
	var walk func(p string, v any) bool
	walk = func(p string, v any) bool { // reports whether v is set
		switch v := v.(type) {
		case map[string]any:
			isSet := false
			for k, e := range v {
				isSet = walk(strings.TrimPrefix(p+"."+k, "."), e) || isSet
			}
			return isSet
		case []any:
			for _, e := range v {
				if walk(p, e) {
					set = append(set, p)
					return true
				}
			}
			return false
		case nil:
			return false
		default:
			if v == reflect.Zero(reflect.TypeOf(v)).Interface() {
				return false
			}
			set = append(set, p)
			return true
		}
	}
	walk("", tree)
	if len(set) > 0 {
		sort.Strings(set)
		return fmt.Errorf("%s: sets %s, which the launcher's settings do not", what, strings.Join(slices.Compact(set), ", "))
	}
	return nil
}

func equalJSON(a, b any) bool { return jsonOf(a) == jsonOf(b) }
