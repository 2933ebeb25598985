package preflight

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/swarm"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
)

// service is a stack service with image, placement constraints and one published TCP port (0: none).
func service(name, image string, port uint32, mode swarm.PortConfigPublishMode, constraints ...string) stacks.Service {
	s := stacks.Service{Key: name}
	s.Spec.Name = name
	s.Spec.TaskTemplate.ContainerSpec = &swarm.ContainerSpec{Image: image}
	s.Spec.TaskTemplate.Placement = &swarm.Placement{Constraints: constraints}
	if port > 0 {
		s.Spec.EndpointSpec = &swarm.EndpointSpec{Ports: []swarm.PortConfig{{Protocol: swarm.PortConfigProtocolTCP, TargetPort: 80, PublishedPort: port, PublishMode: mode}}}
	}
	return s
}

func TestSatisfies(t *testing.T) {
	n := docker.Node{ID: "n1", Hostname: "h1", Role: "manager", Labels: map[string]string{"zone": "a"}}
	for _, tc := range []struct {
		cs   []string
		want bool
	}{
		{nil, true},
		{[]string{"node.labels.zone == a"}, true},
		{[]string{"node.labels.zone == b"}, false},
		{[]string{"node.labels.zone != a"}, false},
		{[]string{"node.labels.missing == true"}, false},
		{[]string{"node.labels.state == true"}, true}, // provided by up
		{[]string{"node.role == manager", "node.hostname == h1"}, true},
		{[]string{"node.role == worker"}, false},
		{[]string{"node.platform.os == linux"}, true}, // left to Swarm
	} {
		if got := satisfies(n, tc.cs, []string{"state"}); got != tc.want {
			t.Errorf("satisfies(%v) = %v, want %v", tc.cs, got, tc.want)
		}
	}
}

// Against the test bed's Swarm: a port this test holds, an image nobody has, a label no node carries, a port
// another service publishes — every problem at once, and not one mutating call.
func TestCheckEveryProblemAtOnceNoWrites(t *testing.T) {
	in := testbed.Require(t, "docker")
	counter := calls.New()
	c, err := docker.New(in.Docker.Host, counter)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	l, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	held := uint32(l.Addr().(*net.TCPAddr).Port)
	var taken uint32 // a port some service of the Swarm publishes, if any
	var owner string
	svcs, err := c.Services(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range svcs {
		for _, p := range s.Endpoint.Ports {
			if p.PublishedPort > 0 && p.Protocol == swarm.PortConfigProtocolTCP {
				taken, owner = p.PublishedPort, s.Spec.Name
			}
		}
	}
	st := &stacks.Stack{Name: "x", Namespace: "zbtpre", Services: []stacks.Service{
		service("zbtpre_web", "zb-local/debian:bookworm", held, swarm.PortConfigPublishModeHost),
		service("zbtpre_img", "zb-local/does-not-exist:0", 0, ""),
		service("zbtpre_placed", "zb-local/debian:bookworm", 0, "", "node.labels.zbt-nobody-has-this == true"),
	}}
	if taken > 0 {
		st.Services = append(st.Services, service("zbtpre_clash", "zb-local/debian:bookworm", taken, swarm.PortConfigPublishModeHost))
	}
	err = Check(ctx, c, Input{Stacks: []*stacks.Stack{st}, Local: true})
	if !IsProblems(err) {
		t.Fatalf("Check: %v, want problems", err)
	}
	msg := err.Error()
	want := []string{
		fmt.Sprintf("port %d/tcp: wanted by zbtpre_web, already in use", held), fmt.Sprintf("pid %d", os.Getpid()),
		"image zb-local/does-not-exist:0: not on this node and cannot be pulled", "used by zbtpre_img",
		"service zbtpre_placed: no ready node satisfies", "zbt-nobody-has-this",
	}
	if taken > 0 && stillThere(t, c, owner) { // (another test may have removed its service meanwhile)
		want = append(want, fmt.Sprintf("port %d/tcp: wanted by zbtpre_clash, already published by service %s", taken, owner))
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("problems do not say %q:\n%s", w, msg)
		}
	}
	if n := counter.Writes(); n != 0 {
		_, writes := counter.Snapshot()
		t.Errorf("preflight made %d mutating call(s): %v", n, writes)
	}
	t.Log(msg)
}

func stillThere(t *testing.T, c *docker.Client, service string) bool {
	svcs, err := c.Services(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range svcs {
		if s.Spec.Name == service {
			return true
		}
	}
	return false
}
