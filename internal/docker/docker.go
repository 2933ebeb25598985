// Package docker is ziti-bootstrap's client of the Docker Engine API (Swarm mode).
package docker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/docker/docker/api"
	"github.com/docker/docker/api/types/versions"
	"github.com/docker/docker/client"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
)

// Client talks to one Docker Engine; every call is counted.
type Client struct {
	api  *client.Client
	host string
}

// New returns a client for host (unix:///path or tcp://host:port). It does not connect yet.
func New(host string, counter *calls.Counter) (*Client, error) {
	u, err := url.Parse(host)
	if err != nil {
		return nil, fmt.Errorf("docker host %q: %w", host, err)
	}
	base := &http.Transport{}
	switch u.Scheme {
	case "unix":
		path := u.Path
		base.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		}
	case "tcp", "http":
	default:
		return nil, fmt.Errorf("docker host %q: scheme %q not supported; use unix:// or tcp://", host, u.Scheme)
	}
	// WithHost first (it configures the default transport), then our counting client replaces that transport.
	opts := []client.Opt{client.WithHost(host),
		client.WithHTTPClient(&http.Client{Transport: calls.Transport(counter, "docker", pingMemo{host: host, base: calls.Bound(base, 0)})})}
	if v, ok := apiVersions.Load(host); ok {
		opts = append(opts, client.WithVersion(v.(string)))
	} else {
		opts = append(opts, client.WithAPIVersionNegotiation())
	}
	api, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker client for %s: %w", host, err)
	}
	return &Client{api: api, host: host}, nil
}

// apiVersions keeps, per engine address, the API version this process agreed with the engine (the lower of the
// engine's and this client's): the clients made after the first use it instead of negotiating again (a /_ping
// each; up makes several clients in one run).
var apiVersions sync.Map

// pingMemo records in apiVersions the version an engine's /_ping answer offers, as the client's negotiation
// reads it (no header: 1.24).
type pingMemo struct {
	host string
	base http.RoundTripper
}

func (m pingMemo) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := m.base.RoundTrip(r)
	if err == nil && resp.StatusCode == http.StatusOK && strings.HasSuffix(r.URL.Path, "/_ping") {
		v := cmp.Or(resp.Header.Get("Api-Version"), "1.24")
		if versions.LessThan(api.DefaultVersion, v) {
			v = api.DefaultVersion
		}
		apiVersions.Store(m.host, v)
	}
	return resp, err
}

// SwarmInfo is what the engine says about itself and its Swarm.
type SwarmInfo struct {
	ServerVersion string
	NodeState     string // active, inactive, pending, error, locked
	Manager       bool
	Nodes         int
	NodeID        string
	RootDir       string // the engine's data directory (volumes live under it)
}

// Swarm returns the engine's version and Swarm state.
func (c *Client) Swarm(ctx context.Context) (SwarmInfo, error) {
	info, err := c.api.Info(ctx)
	if err != nil {
		return SwarmInfo{}, fmt.Errorf("docker info at %s: %w", c.host, err)
	}
	return SwarmInfo{
		ServerVersion: info.ServerVersion, NodeState: string(info.Swarm.LocalNodeState),
		Manager: info.Swarm.ControlAvailable, Nodes: info.Swarm.Nodes, NodeID: info.Swarm.NodeID,
		RootDir: info.DockerRootDir,
	}, nil
}

// ErrNotManager is returned by RequireManager for an engine that is not an active Swarm manager.
var ErrNotManager = errors.New("not a Swarm manager")

// RequireManager returns an error unless the engine is an active Swarm manager.
func (c *Client) RequireManager(ctx context.Context) (SwarmInfo, error) {
	s, err := c.Swarm(ctx)
	if err != nil {
		return s, err
	}
	return s, s.RequireManager(c.host)
}

// RequireManager returns an error unless s is the state of an active Swarm manager (the engine at host).
func (s SwarmInfo) RequireManager(host string) error {
	if s.NodeState != "active" || !s.Manager {
		return fmt.Errorf("docker %s at %s is %w (node state %q, manager %v): run `docker swarm init` or point DOCKER_HOST at a manager",
			s.ServerVersion, host, ErrNotManager, s.NodeState, s.Manager)
	}
	return nil
}

// Describe renders SwarmInfo for a report.
func (s SwarmInfo) String() string {
	role := "worker"
	if s.Manager {
		role = "manager"
	}
	return fmt.Sprintf("Docker %s, swarm %s, %s, %d node(s)", s.ServerVersion, strings.ToLower(s.NodeState), role, s.Nodes)
}

// Close releases the client's connections.
func (c *Client) Close() error { return c.api.Close() }
