package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
)

// TestUpDevSwarm3E2E is the whole system on a real Swarm of three engines (one manager, two workers; `testbed up
// swarm3`), driven through the manager's Engine API as an operator would: `up --dev` converges, with the stateful
// services and the bootstrap job on the state node (the manager up labelled), one SPIRE agent per node with three
// distinct SPIFFE IDs (each attested with its node's Swarm certificate), the edge router on a worker enrolled
// through its SVID, and a workload on a worker that gets its SVID from its node's agent and logs in to OpenZiti; a
// second `up` makes no mutating call. Then the worker running the workload stops: the workload moves to the other
// worker, attests there and logs in again; the stopped node comes back and its agent runs again; `down --volumes`
// leaves nothing of ours on any engine.
func TestUpDevSwarm3E2E(t *testing.T) {
	t.Parallel() // beside the other Swarm end-to-end tests: each waits for its Swarm's lock, and they mostly wait
	// not beside the compose end-to-end test: both start a whole system
	testbed.LockSideSystem(t)
	bed := testbed.RequireSwarm(t, "swarm3")
	ctx := testutil.Context(t, 40*time.Minute)
	mgr := bed.Manager()
	d := newDevSystemOn(t, true, mgr.DockerHost, mgr.Addr, bed.Gateway())
	testutil.Must(t, bed.LoadImages(ctx, testLogWriter{t}, imageRefs(d.images)...))
	d.setEnv("ZITI_ROUTER_CONSTRAINT", "node.role == worker")

	t0 := time.Now()
	rep := d.run("up --dev (3 nodes)", d.up()...)
	t.Logf("up --dev on three nodes: %s, %d mutating call(s)", time.Since(t0).Round(time.Second), rep.MutatingCalls)

	nodes, err := d.c.Nodes(ctx)
	testutil.Must(t, err)
	byID := map[string]docker.Node{}
	var state docker.Node
	for _, n := range nodes {
		byID[n.ID] = n
		if n.Labels["ziti-bootstrap.state"] == "true" {
			state = n
		}
	}
	if len(nodes) != 3 || state.Hostname != mgr.Hostname {
		t.Fatalf("nodes %+v: want 3, the state node being the manager %s", nodes, mgr.Hostname)
	}
	// the stateful services and the bootstrap job run on the state node; the router on a worker
	for svc, want := range map[string]string{
		d.names[stacks.Spire] + "_spire-server":         "state",
		d.names[stacks.Keycloak] + "_keycloak-db":       "state",
		d.names[stacks.OpenZiti] + "_ziti-controller":   "state",
		d.names[stacks.OpenZiti] + "_bootstrap":         "state",
		d.names[stacks.OpenZiti] + "_backup":            "state",
		d.names[stacks.OpenZiti] + "_ziti-router":       "worker",
		d.names[stacks.Spire] + "_spire-agent-launcher": "every",
	} {
		on := d.taskNodes(ctx, svc)
		switch want {
		case "state":
			if len(on) != 1 || on[0] != state.ID {
				t.Errorf("%s runs on %v, want the state node %s", svc, on, state.Hostname)
			}
		case "worker":
			if len(on) != 1 || byID[on[0]].Manager {
				t.Errorf("%s runs on %v, want a worker", svc, on)
			}
		case "every":
			if len(on) != 3 {
				t.Errorf("%s runs on %v, want every node", svc, on)
			}
		}
	}
	// three agents, three SPIFFE IDs: each node's ID
	agents := d.attestedAgents(ctx)
	for _, n := range nodes {
		want := "spiffe://openziti.local/spire/agent/x509pop/" + n.ID
		if !slices.Contains(agents, want) {
			t.Errorf("no attested agent %s (node %s); agents: %v", want, n.Hostname, agents)
		}
	}
	t.Logf("attested agents: %v", agents)
	// the router on a worker enrolled with its SVID and is online. The controller's certificate names 127.0.0.1
	// (and ziti-controller), not the node's address: reach its published port through a local forwarder.
	_, port, err := net.SplitHostPort(forward(t, "127.0.0.1:0", mgr.Addr+":"+d.zitiPort))
	testutil.Must(t, err)
	d.addr, d.zitiPort = "127.0.0.1", port
	d.routerOnline(ctx, d.zitiAdmin(ctx))

	// a workload on a worker
	spec := d.workloadService(d.workloadName)
	spec.TaskTemplate.Placement = &swarm.Placement{Constraints: []string{"node.role == worker"}}
	spec.TaskTemplate.RestartPolicy = &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny}
	testbed.CreateService(t, d.c, spec)
	first := d.authentications(ctx, d.workloadName, 1)[0]
	if first.ExternalID != e2eWorkloadID {
		t.Errorf("the workload authenticated as %+v", first)
	}

	rep = d.run("up --dev again (3 nodes)", d.up()...)
	if rep.MutatingCalls != 0 {
		t.Errorf("up --dev again made %d mutating call(s): %v", rep.MutatingCalls, rep.Writes)
	}

	// the workload's worker stops: the workload moves to the other worker and logs in again from there
	on := d.taskNodes(ctx, d.workloadName)
	if len(on) != 1 {
		t.Fatalf("workload on %v", on)
	}
	lost := byID[on[0]]
	stopped := time.Now()
	testutil.Must(t, bed.StopNode(ctx, lost.Hostname))
	testutil.Must(t, bed.WaitNodes(ctx, testbed.NodeStatus{lost.Hostname: "down"}, 3*time.Minute))
	var moved workloadEvent
	err = wait.For(ctx, wait.Target{What: "the workload to log in again from another node", Where: d.workloadName, Deadline: 5 * time.Minute,
		Initial: 3 * time.Second, Max: 5 * time.Second}, func(ctx context.Context) error {
		// the task on the lost node still reads "running": the manager cannot hear from it
		now := d.taskNodes(ctx, d.workloadName)
		if !slices.ContainsFunc(now, func(n string) bool { return n != lost.ID }) {
			return fmt.Errorf("the workload runs on %v only (%s is down)", now, lost.ID)
		}
		evs, err := d.workloadEvents(ctx, d.workloadName)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if ev.Event == "authenticated" && ev.Time.After(stopped) {
				moved = ev
				return nil
			}
		}
		return fmt.Errorf("no authentication since the node stopped")
	})
	testutil.Must(t, err)
	if moved.IdentityID != first.IdentityID {
		t.Errorf("after moving, the workload is identity %s, before %s", moved.IdentityID, first.IdentityID)
	}
	t.Logf("node %s stopped: the workload logged in again from another node %s later", lost.Hostname, moved.Time.Sub(stopped).Round(time.Second))

	// the node comes back: its agent runs again, and status --stacks shows each node's agent
	testutil.Must(t, bed.StartNode(ctx, lost.Hostname))
	testutil.Must(t, bed.WaitNodes(ctx, nil, 3*time.Minute))
	launcher := d.names[stacks.Spire] + "_spire-agent-launcher"
	err = wait.For(ctx, wait.Target{What: "the agent of the node that came back", Where: lost.Hostname, Deadline: 4 * time.Minute,
		Initial: 3 * time.Second, Max: 5 * time.Second}, func(ctx context.Context) error {
		code, out, errs := cli(t, "status", "--stacks", "--prefix", d.prefix, "--env-file", d.envFile, "-o", "json")
		if code != 0 {
			return fmt.Errorf("status --stacks: exit %d: %s", code, lastLines(errs, 5))
		}
		for _, s := range report(t, out).Steps {
			for _, n := range s.Notes {
				if strings.Contains(n, launcher+" on node "+lost.ID+": running") {
					return nil
				}
			}
		}
		return fmt.Errorf("status --stacks does not show %s running on %s yet:\n%s", launcher, lost.ID, out)
	})
	testutil.Must(t, err)

	// last: the agent with its own certificate below replaces the record of the second node's agent
	d.stolenCertificateRefused(ctx, bed)

	svc := d.service(ctx, d.workloadName)
	testutil.Must(t, d.c.RemoveService(ctx, svc.ID))
	d.run("down --volumes (3 nodes)", append([]string{"down", "--volumes"}, d.common...)...)
	for _, n := range bed.Nodes {
		for _, what := range []string{"ps -a", "volume ls"} {
			out, err := n.Docker(ctx, append(strings.Fields(what), "-q", "--filter", "label=com.docker.stack.namespace")...)
			testutil.Must(t, err)
			if strings.TrimSpace(out) != "" {
				out, _ = n.Docker(ctx, append(strings.Fields(what), "--filter", "label=com.docker.stack.namespace")...)
				if strings.Contains(out, d.prefix) {
					t.Errorf("node %s still has, after down --volumes: %s", n.Hostname, out)
				}
			}
		}
	}
}

// setEnv adds a variable to the system's --env-file.
func (d *devSystem) setEnv(k, v string) {
	d.tb.Helper()
	f, err := os.OpenFile(d.envFile, os.O_APPEND|os.O_WRONLY, 0)
	testutil.Must(d.tb, err)
	defer f.Close()
	_, err = fmt.Fprintf(f, "%s=%s\n", k, v)
	testutil.Must(d.tb, err)
}

// taskNodes are the nodes (IDs) where service name has running tasks.
func (d *devSystem) taskNodes(ctx context.Context, name string) []string {
	d.tb.Helper()
	tasks, err := d.c.Tasks(ctx, d.service(ctx, name).ID)
	testutil.Must(d.tb, err)
	var on []string
	for _, tk := range tasks {
		if tk.Status.State == swarm.TaskStateRunning || tk.Status.State == swarm.TaskStateComplete {
			on = append(on, tk.NodeID)
		}
	}
	return on
}

var agentID = regexp.MustCompile(`SPIFFE ID\s*:\s*(\S+)`)

// attestedAgents lists the SPIRE server's attested agents (`spire-server agent list` in its container).
func (d *devSystem) attestedAgents(ctx context.Context) []string {
	d.tb.Helper()
	id := d.taskContainer(ctx, d.names[stacks.Spire]+"_spire-server")
	res, err := d.c.Exec(ctx, id, []string{"/opt/spire/bin/spire-server", "agent", "list", "-socketPath", "/tmp/spire-server/private/api.sock"})
	testutil.Must(d.tb, err)
	if res.ExitCode != 0 {
		d.tb.Fatalf("spire-server agent list: exit %d\n%s%s", res.ExitCode, res.Stdout, res.Stderr)
	}
	var out []string
	for _, m := range agentID.FindAllStringSubmatch(res.Stdout, -1) {
		out = append(out, m[1])
	}
	return out
}

// imageRefs are the local images among the stack variables.
func imageRefs(vars map[string]string) []string {
	var out []string
	for k, v := range vars {
		if strings.HasSuffix(k, "_IMAGE") && !upgradeOnlyImage(k) {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return out
}

// testLogWriter writes to the test's log.
type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// stolenCertificateRefused presents, on the second node, the third node's Swarm certificate with the second node's
// own key, as an agent would that copied another node's certificate (its key never leaves that node): it is not
// attested (the agent refuses a certificate whose key it lacks; x509pop's server side asks for proof of that key). The same agent with the second node's own certificate is attested, so the
// refusal is the certificate's, not the setup's.
func (d *devSystem) stolenCertificateRefused(ctx context.Context, bed *testbed.SwarmBed) {
	t := d.tb
	t.Helper()
	thief, victim := bed.Nodes[1], bed.Nodes[2]
	cert, err := exec.CommandContext(ctx, "docker", "exec", victim.Container, "cat", "/var/lib/docker/swarm/certificates/swarm-node.crt").Output()
	testutil.Must(t, err)
	conf := func(certPath string) string {
		return `agent {
  data_dir = "/tmp/zb-thief/data"
  log_level = "DEBUG"
  server_address = "spire-server"
  server_port = "8081"
  socket_path = "/tmp/zb-thief/api.sock"
  trust_domain = "openziti.local"
  insecure_bootstrap = true
}
plugins {
  NodeAttestor "x509pop" {
    plugin_data {
      certificate_path = "` + certPath + `"
      private_key_path = "/var/lib/docker/swarm/certificates/swarm-node.key"
    }
  }
  KeyManager "memory" {
    plugin_data {}
  }
  WorkloadAttestor "unix" {
    plugin_data {}
  }
}
`
	}
	// a fresh directory: an agent keeps its trust bundle in its data_dir, and one left by an earlier run on this
	// node (another deployment, another root) would be trusted instead of insecure_bootstrap's
	clean := func() {
		if out, err := exec.CommandContext(context.WithoutCancel(ctx), "docker", "exec", thief.Container, "rm", "-rf", "/tmp/zb-thief").CombinedOutput(); err != nil {
			t.Errorf("remove /tmp/zb-thief on %s: %v: %s", thief.Hostname, err, out)
		}
	}
	clean()
	defer clean()
	put := func(name, data string) {
		cmd := exec.CommandContext(ctx, "docker", "exec", "-i", thief.Container, "sh", "-c", "mkdir -p /tmp/zb-thief && cat > /tmp/zb-thief/"+name)
		cmd.Stdin = strings.NewReader(data)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("write %s on %s: %v: %s", name, thief.Hostname, err, out)
		}
	}
	put("victim.crt", string(cert))
	put("stolen.conf", conf("/tmp/zb-thief/victim.crt"))
	put("own.conf", conf("/var/lib/docker/swarm/certificates/swarm-node.crt"))
	// attest runs an agent with confFile on the thief's node until it says it was attested or the time is up,
	// and returns its log
	attest := func(confFile string, wait time.Duration) string {
		name := "zb-thief-" + strings.TrimSuffix(confFile, ".conf")
		_, err := thief.Docker(ctx, "run", "-d", "--name", name, "--network", d.names[stacks.Spire]+"_spire",
			"-v", "/tmp/zb-thief:/tmp/zb-thief", "-v", "/var/lib/docker/swarm/certificates:/var/lib/docker/swarm/certificates:ro",
			d.images["SPIRE_AGENT_IMAGE"], "-config", "/tmp/zb-thief/"+confFile)
		testutil.Must(t, err)
		defer thief.Docker(context.Background(), "rm", "-f", name)
		var out string
		for end := time.Now().Add(wait); time.Now().Before(end); time.Sleep(2 * time.Second) {
			out, _ = thief.Docker(ctx, "logs", name)
			if strings.Contains(out, "Node attestation was successful") {
				break
			}
		}
		return out
	}
	if out := attest("stolen.conf", 30*time.Second); strings.Contains(out, "Node attestation was successful") {
		t.Errorf("an agent on %s presenting %s's certificate was attested:\n%s", thief.Hostname, victim.Hostname, lastLines(out, 10))
	} else if !strings.Contains(out, "private key does not match public key") && !strings.Contains(out, "Starting node attestation") {
		// SPIRE's agent refuses a certificate whose key it does not hold before it asks the server; a modified
		// agent would meet the server's proof-of-possession challenge (x509pop) instead
		t.Errorf("the agent with a stolen certificate failed for another reason:\n%s", lastLines(out, 10))
	} else {
		t.Logf("another node's certificate refused: %s", lastLines(out, 2))
	}
	if out := attest("own.conf", 90*time.Second); !strings.Contains(out, "Node attestation was successful") {
		t.Errorf("the same agent with %s's own certificate was not attested (the setup, not the certificate, is at fault):\n%s", thief.Hostname, lastLines(out, 10))
	}
}
