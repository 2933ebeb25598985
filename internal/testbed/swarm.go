package testbed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
)

// A multi-node test bed is a real Docker Swarm of several Docker Engines, each in a container of the host's engine
// (Debian's docker.io, the host's 20.10, in the image NodeImage), on one bridge network with fixed addresses. Each
// node's /var/lib/docker is a volume (overlayfs does not nest, moby/moby#36818; the nodes use the vfs storage
// driver), so a stopped node keeps its Swarm state and rejoins when started again. Each node's Engine API listens
// on tcp://ADDR:2375 without TLS, reachable only from this machine (the bridge is the test bed's own). The host's
// own Swarm is never touched: every Swarm command goes to a node's address.
//
// `--privileged` fails on these machines (CAP_SYS_RESOURCE is not in the bounding set); nodeRunArgs lists what
// works instead (measured, ../shared/TESTBED.md "Measured 2026-12-05").
//
// From a Go test:
//
//	bed := testbed.RequireSwarm(t, "swarm3") // up if needed (idempotent), held by this test alone until it ends
//	mgr := bed.Manager()                      // DOCKER_HOST for ziti-bootstrap: mgr.DockerHost
//	bed.StopNode(ctx, "swarm3-3")             // then bed.WaitNodes(ctx, testbed.NodeStatus{"swarm3-3": "down"}, d)
//	bed.StartNode(ctx, "swarm3-3")            // it rejoins by itself: bed.WaitNodes(ctx, nil, d)
//	bed.LoadImages(ctx, log, refs...)         // images other than the newest zb-local/ ones UpSwarm loads
//
// Ports a service publishes in host mode are on its node's address (bed.Nodes[i].Addr), reachable from the host.
// Measured on this machine (2 cores, loaded): `testbed up swarm3` without images 9 s; with the slimmed local
// images (1.7 GB per node under vfs) 70 s cold, under 1 s warm; swarm3m alike.

// Swarm test bed constants.
const (
	NodeImage     = "zb-testbed/node:bookworm" // scripts/images.sh node
	SwarmNetwork  = "zb-testbed-swarm"
	SwarmSubnet   = "10.213.0.0/24"
	SwarmAddrPool = "10.214.0.0/16" // the nodes' overlay networks; the host's engine uses 172.16.0.0/12
	EnginePort    = 2375
	// SwarmLabel marks the containers, volumes and network of the multi-node test bed (value: the bed's name).
	SwarmLabel = "org.ziti-bootstrap.testbed-swarm"
)

// SwarmSpec is the shape of one multi-node test bed.
type SwarmSpec struct {
	Name              string
	Managers, Workers int
	FirstHost         int  // last octet of node 1's address in SwarmSubnet; nodes take the following ones
	LocalImages       bool // UpSwarm loads the local images (LoadLocalImages) into every node
}

// SwarmSpecs are the multi-node test beds `testbed up` knows: swarm3 (one manager, two workers; the local images
// loaded, for the stacks) and swarm3m (three managers, for the apply lock across managers; no image loaded: its
// tests load what they run with LoadImages). Both can run at once.
var SwarmSpecs = []SwarmSpec{
	{Name: "swarm3", Managers: 1, Workers: 2, FirstHost: 11, LocalImages: true},
	{Name: "swarm3m", Managers: 3, Workers: 0, FirstHost: 21},
}

// SwarmBed is a multi-node test bed as started: what tests need to reach every node.
type SwarmBed struct {
	Name    string      `json:"name"`
	Network string      `json:"network"`
	Nodes   []SwarmNode `json:"nodes"` // Nodes[0] is the first manager (where the Swarm was initialised)
}

// SwarmNode is one Docker Engine of a multi-node test bed.
type SwarmNode struct {
	Hostname   string `json:"hostname"`   // its Swarm node's hostname: swarm3-1
	Container  string `json:"container"`  // the host's container running it: zb-swarm3-1
	Volume     string `json:"volume"`     // its /var/lib/docker
	Addr       string `json:"addr"`       // 10.213.0.11: advertise, data path and Engine API address
	DockerHost string `json:"dockerHost"` // tcp://10.213.0.11:2375
	Manager    bool   `json:"manager"`
}

// SwarmSpecNamed returns the spec of a multi-node test bed.
func SwarmSpecNamed(name string) (SwarmSpec, error) {
	for _, s := range SwarmSpecs {
		if s.Name == name {
			return s, nil
		}
	}
	return SwarmSpec{}, fmt.Errorf("unknown multi-node test bed %q (known: %s)", name, strings.Join(SwarmNames(), ", "))
}

// SwarmNames are the names of SwarmSpecs.
func SwarmNames() []string {
	var out []string
	for _, s := range SwarmSpecs {
		out = append(out, s.Name)
	}
	return out
}

// bed is the SwarmBed a spec describes (names and addresses are fixed).
func (s SwarmSpec) bed() *SwarmBed {
	b := &SwarmBed{Name: s.Name, Network: SwarmNetwork}
	for i := range s.Managers + s.Workers {
		addr := fmt.Sprintf("10.213.0.%d", s.FirstHost+i)
		b.Nodes = append(b.Nodes, SwarmNode{
			Hostname: fmt.Sprintf("%s-%d", s.Name, i+1), Container: fmt.Sprintf("zb-%s-%d", s.Name, i+1),
			Volume: fmt.Sprintf("zb-%s-%d-docker", s.Name, i+1), Addr: addr,
			DockerHost: fmt.Sprintf("tcp://%s:%d", addr, EnginePort), Manager: i < s.Managers,
		})
	}
	return b
}

// SwarmStateFile is where UpSwarm writes the SwarmBed of name.
func SwarmStateFile(name string) string { return filepath.Join(StateDir(), "swarm-"+name+".json") }

// ReadSwarm returns the state of a started multi-node test bed.
func ReadSwarm(name string) (*SwarmBed, error) {
	b, err := os.ReadFile(SwarmStateFile(name))
	if err != nil {
		return nil, fmt.Errorf("multi-node test bed %s not started (%w): run `go run ./internal/testbed/cmd/testbed up %s`", name, err, name)
	}
	var bed SwarmBed
	if err := json.Unmarshal(b, &bed); err != nil {
		return nil, fmt.Errorf("multi-node test bed state %s: %w", SwarmStateFile(name), err)
	}
	return &bed, nil
}

// Gateway is this host's address on the bed's bridge network: how the nodes, and their tasks, reach a server of
// the host (the first address of SwarmSubnet, which Docker gives the bridge).
func (b *SwarmBed) Gateway() string {
	return strings.TrimSuffix(SwarmSubnet, "0/24") + "1"
}

// Manager returns the first manager node (where the Swarm was initialised).
func (b *SwarmBed) Manager() SwarmNode { return b.Nodes[0] }

// Node returns the node with hostname h.
func (b *SwarmBed) Node(h string) (SwarmNode, error) {
	for _, n := range b.Nodes {
		if n.Hostname == h {
			return n, nil
		}
	}
	return SwarmNode{}, fmt.Errorf("test bed %s has no node %q", b.Name, h)
}

// nodeRunArgs are the `docker run` arguments of a node container: every capability but CAP_SYS_RESOURCE (not in
// this machine's bounding set: --privileged fails), no seccomp/AppArmor confinement, writable /proc/sys, the host's
// cgroup v1 hierarchy (inner containers make their cgroups there), a tmpfs /run (no stale pid files after a
// restart), /var/lib/docker on a volume, a fixed address. dockerd listens on its socket and on its address
// (--tls=false says so explicitly: dockerd 20.10 otherwise delays its start by 15 s to warn).
func nodeRunArgs(b *SwarmBed, n SwarmNode) []string {
	return []string{"run", "-d", "--name", n.Container, "--hostname", n.Hostname, "--init",
		"--label", SwarmLabel + "=" + b.Name, "--restart", "unless-stopped",
		"--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
		"--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined", "--security-opt", "systempaths=unconfined",
		"-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--tmpfs", "/run", "--tmpfs", "/tmp",
		"--mount", "type=volume,src=" + n.Volume + ",dst=/var/lib/docker,volume-label=" + SwarmLabel + "=" + b.Name,
		"--network", b.Network, "--ip", n.Addr,
		NodeImage, "dockerd", "--storage-driver=vfs", "--host=unix:///var/run/docker.sock", "--tls=false",
		fmt.Sprintf("--host=tcp://%s:%d", n.Addr, EnginePort), "--cgroup-parent=/zb-" + n.Hostname,
	}
}

// UpSwarm starts the multi-node test bed name unless it runs already (idempotent: a running bed is checked and
// left alone), loads the local images (zb-local/*) each node lacks when the bed's spec says so, and writes
// SwarmStateFile. log receives
// one line per phase with its duration.
func UpSwarm(ctx context.Context, name string, log io.Writer) (*SwarmBed, error) {
	spec, err := SwarmSpecNamed(name)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(StateDir(), 0o711); err != nil {
		return nil, err
	}
	unlock, err := flock("swarm-" + name + "-up.lock") // one `up` of a bed at a time, across processes
	if err != nil {
		return nil, err
	}
	defer unlock()
	b := spec.bed()
	phase := func(what string, fn func() error) error {
		t0 := time.Now()
		err := fn()
		status := "ok"
		if err != nil {
			status = "FAILED"
		}
		fmt.Fprintf(log, "[testbed] %s %-12s %s in %.1fs\n", name, what, status, time.Since(t0).Seconds())
		if err != nil {
			return fmt.Errorf("%s: %s: %w", name, what, err)
		}
		return nil
	}
	for _, p := range []struct {
		what string
		fn   func() error
	}{
		{"node-image", func() error { return shared(func() error { return nodeImage(ctx) }) }},
		{"network", func() error { return shared(func() error { return swarmNetwork(ctx) }) }},
		{"engines", func() error { return b.startEngines(ctx) }},
		{"swarm", func() error { return b.join(ctx) }},
		{"images", func() error {
			if !spec.LocalImages {
				return nil
			}
			return b.LoadLocalImages(ctx, log)
		}},
	} {
		if err := phase(p.what, p.fn); err != nil {
			return nil, err
		}
	}
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return nil, err
	}
	return b, writeAtomic(SwarmStateFile(name), data)
}

// shared runs fn under a lock that every bed's `up` shares: they build the same node image and network.
func shared(fn func() error) error {
	unlock, err := flock("swarm-shared.lock")
	if err != nil {
		return err
	}
	defer unlock()
	return fn()
}

// nodeImage builds NodeImage (scripts/images.sh node) unless it exists.
func nodeImage(ctx context.Context) error {
	if _, err := run(ctx, nil, "docker", "image", "inspect", "-f", "{{.Id}}", NodeImage); err == nil {
		return nil
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	_, err = run(ctx, nil, filepath.Join(root, "scripts", "images.sh"), "node")
	return err
}

// repoRoot is the checkout holding scripts/versions.env, found by walking up from the working directory.
func repoRoot() (string, error) {
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "scripts", "versions.env")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("scripts/versions.env not found above the working directory")
		}
		dir = parent
	}
}

func swarmNetwork(ctx context.Context) error {
	if _, err := run(ctx, nil, "docker", "network", "inspect", SwarmNetwork); err == nil {
		return nil
	}
	_, err := run(ctx, nil, "docker", "network", "create", "--driver", "bridge", "--subnet", SwarmSubnet,
		"--label", SwarmLabel+"=", SwarmNetwork)
	return err
}

// startEngines creates or starts every node's container, then waits until every engine answers.
func (b *SwarmBed) startEngines(ctx context.Context) error {
	for _, n := range b.Nodes {
		state, err := run(ctx, nil, "docker", "container", "inspect", "-f", "{{.State.Running}}", n.Container)
		switch {
		case err != nil:
			if _, err := run(ctx, nil, "docker", nodeRunArgs(b, n)...); err != nil {
				return err
			}
		case strings.TrimSpace(state) != "true":
			if _, err := run(ctx, nil, "docker", "start", n.Container); err != nil {
				return err
			}
		}
	}
	return b.each(func(n SwarmNode) error { return n.waitEngine(ctx) })
}

// each runs fn for every node in parallel and joins the errors.
func (b *SwarmBed) each(fn func(SwarmNode) error) error {
	errs := make([]error, len(b.Nodes))
	var wg sync.WaitGroup
	for i, n := range b.Nodes {
		wg.Go(func() { errs[i] = fn(n) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Client returns a client of this node's Engine API (its calls counted by counter; nil: not counted).
func (n SwarmNode) Client(counter *calls.Counter) (*docker.Client, error) {
	return docker.New(n.DockerHost, counter)
}

// Docker runs the docker CLI against this node's engine and returns its output.
func (n SwarmNode) Docker(ctx context.Context, args ...string) (string, error) {
	return run(ctx, nil, "docker", append([]string{"--host", n.DockerHost}, args...)...)
}

func (n SwarmNode) waitEngine(ctx context.Context) error {
	return wait.For(ctx, wait.Target{What: "Docker Engine of node " + n.Hostname, Where: n.DockerHost, Deadline: 3 * time.Minute},
		func(ctx context.Context) error {
			_, err := n.Docker(ctx, "version", "--format", "{{.Server.Version}}")
			return err
		})
}

// swarmState returns the node's Swarm state (inactive, pending, active, …) and whether it is a manager.
func (n SwarmNode) swarmState(ctx context.Context) (state string, manager bool, err error) {
	out, err := n.Docker(ctx, "info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}")
	if err != nil {
		return "", false, err
	}
	f := strings.Fields(out)
	if len(f) != 2 {
		return "", false, fmt.Errorf("node %s: unexpected docker info %q", n.Hostname, out)
	}
	return f[0], f[1] == "true", nil
}

// join initialises the Swarm on the first node and joins the others, unless they are in it already; then waits
// until the first node sees every node Ready.
func (b *SwarmBed) join(ctx context.Context) error {
	first := b.Manager()
	state, _, err := first.swarmState(ctx)
	if err != nil {
		return err
	}
	if state == "inactive" {
		if _, err := first.Docker(ctx, "swarm", "init", "--advertise-addr", first.Addr, "--data-path-addr", first.Addr,
			"--listen-addr", first.Addr+":2377", "--default-addr-pool", SwarmAddrPool); err != nil {
			return err
		}
	}
	for _, n := range b.Nodes[1:] {
		state, _, err := n.swarmState(ctx)
		if err != nil {
			return err
		}
		if state != "inactive" {
			continue
		}
		role := "worker"
		if n.Manager {
			role = "manager"
		}
		token, err := first.Docker(ctx, "swarm", "join-token", "-q", role)
		if err != nil {
			return err
		}
		if _, err := n.Docker(ctx, "swarm", "join", "--token", strings.TrimSpace(token), "--advertise-addr", n.Addr,
			"--data-path-addr", n.Addr, "--listen-addr", n.Addr+":2377", first.Addr+":2377"); err != nil {
			return err
		}
	}
	return b.WaitNodes(ctx, nil, 3*time.Minute)
}

// NodeStatus is a Swarm node's hostname and its status as a manager sees it (ready, down, unknown).
type NodeStatus map[string]string

// Status returns each node's status (ready, down, …) as the first manager sees it.
func (b *SwarmBed) Status(ctx context.Context) (NodeStatus, error) {
	out, err := b.Manager().Docker(ctx, "node", "ls", "--format", "{{.Hostname}} {{.Status}}")
	if err != nil {
		return nil, err
	}
	st := NodeStatus{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			st[f[0]] = strings.ToLower(f[1])
		}
	}
	return st, nil
}

// WaitNodes waits until the first manager sees each node with the status want gives it (nil: every node
// "ready").
func (b *SwarmBed) WaitNodes(ctx context.Context, want NodeStatus, deadline time.Duration) error {
	if want == nil {
		want = NodeStatus{}
		for _, n := range b.Nodes {
			want[n.Hostname] = "ready"
		}
	}
	return wait.For(ctx, wait.Target{What: fmt.Sprintf("Swarm nodes %v", want), Where: b.Manager().DockerHost, Deadline: deadline},
		func(ctx context.Context) error {
			got, err := b.Status(ctx)
			if err != nil {
				return err
			}
			for h, s := range want {
				if got[h] != s {
					return fmt.Errorf("nodes are %v", got)
				}
			}
			return nil
		})
}

// StopNode stops the engine of node h (its container; the volume keeps its Swarm state).
func (b *SwarmBed) StopNode(ctx context.Context, h string) error {
	n, err := b.Node(h)
	if err != nil {
		return err
	}
	_, err = run(ctx, nil, "docker", "stop", "--time", "20", n.Container)
	return err
}

// StartNode starts the engine of node h again and waits until it answers (it rejoins the Swarm by itself; wait
// for that with WaitNodes).
func (b *SwarmBed) StartNode(ctx context.Context, h string) error {
	n, err := b.Node(h)
	if err != nil {
		return err
	}
	if _, err := run(ctx, nil, "docker", "start", n.Container); err != nil {
		return err
	}
	return n.waitEngine(ctx)
}

// DownSwarm removes the multi-node test bed name (its containers, volumes and state file; the network too when
// no other bed uses it). names empty: every multi-node test bed.
func DownSwarm(ctx context.Context, names ...string) error {
	if len(names) == 0 {
		names = SwarmNames()
	}
	var errs []error
	for _, name := range names {
		if _, err := SwarmSpecNamed(name); err != nil {
			return err
		}
		filter := "label=" + SwarmLabel + "=" + name
		if ids, err := run(ctx, nil, "docker", "ps", "-aq", "--filter", filter); err != nil {
			errs = append(errs, err)
		} else if f := strings.Fields(ids); len(f) > 0 {
			if _, err := run(ctx, nil, "docker", append([]string{"rm", "-f", "-v"}, f...)...); err != nil {
				errs = append(errs, err)
			}
		}
		if vols, err := run(ctx, nil, "docker", "volume", "ls", "-q", "--filter", filter); err != nil {
			errs = append(errs, err)
		} else if f := strings.Fields(vols); len(f) > 0 {
			if _, err := run(ctx, nil, "docker", append([]string{"volume", "rm", "-f"}, f...)...); err != nil {
				errs = append(errs, err)
			}
		}
		spec, _ := SwarmSpecNamed(name)
		for _, n := range spec.bed().Nodes {
			removeCgroups("zb-" + n.Hostname)
		}
		if err := os.Remove(SwarmStateFile(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if left, err := run(ctx, nil, "docker", "ps", "-aq", "--filter", "label="+SwarmLabel); err == nil && strings.TrimSpace(left) == "" {
		if _, err := run(ctx, nil, "docker", "network", "inspect", SwarmNetwork); err == nil {
			if _, err := run(ctx, nil, "docker", "network", "rm", SwarmNetwork); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// IsSwarm reports whether name is a multi-node test bed (rather than a server of Up).
func IsSwarm(name string) bool { return slices.Contains(SwarmNames(), name) }

// removeCgroups removes the (empty, once the node is gone) cgroup v1 directories a node's engine made for its
// containers (--cgroup-parent) in every hierarchy, deepest first. Best effort: a busy one stays.
func removeCgroups(parent string) {
	roots, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", parent))
	for _, root := range roots {
		var dirs []string
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			os.Remove(dirs[i])
		}
	}
}
