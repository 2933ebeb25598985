// Package spire is ziti-bootstrap's one client for the SPIRE server's admin API: plain gRPC over the server's
// unix socket (socket_path in the server configuration; callers on that socket are administrators, there is no
// TLS and no token).
//
// The client hides the wire types: it takes and returns plain structs (Entry, Selector, x509 certificates),
// reads every page of a listing, and cuts batch writes into chunks of BatchSize. Batch writes return one error
// per item, in input order, so that one bad entry does not stop the others; an *ItemError carries the gRPC code
// (IsAlreadyExists, IsNotFound). Every call goes through calls.UnaryInterceptor, so the run's calls.Counter
// sees each mutating call as one write of system "spire". Each call is bounded by CallTimeout.
//
// Errors name the socket, e.g. `SPIRE server at unix:///run/spire/api.sock: list entries: …`.
package spire

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	agentv1 "github.com/spiffe/spire-api-sdk/proto/spire/api/server/agent/v1"
	bundlev1 "github.com/spiffe/spire-api-sdk/proto/spire/api/server/bundle/v1"
	entryv1 "github.com/spiffe/spire-api-sdk/proto/spire/api/server/entry/v1"
	svidv1 "github.com/spiffe/spire-api-sdk/proto/spire/api/server/svid/v1"
	"github.com/spiffe/spire-api-sdk/proto/spire/api/types"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
)

// System is the name under which calls are counted.
const System = "spire"

const (
	// BatchSize is the largest number of entries sent in one BatchCreateEntry, BatchUpdateEntry or
	// BatchDeleteEntry call. The server runs one datastore transaction per entry; 100 keeps each call short
	// (well under a second on SQLite) and its messages small, while 1,000 entries still take only 10 calls.
	BatchSize = 100
	// PageSize is the page size of ListEntries.
	PageSize = 500
)

// CallTimeout bounds each call to the server (unless its context ends sooner): a server that accepts a call
// and never answers must not stall a run for ever.
var CallTimeout = 30 * time.Second

// boundCalls gives each call a deadline of d at the latest.
func boundCalls(d time.Duration) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		ctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

// Client talks to one SPIRE server over its admin socket. It is safe for concurrent use.
type Client struct {
	socket string // filesystem path
	target string // unix:///abs/path, for messages
	conn   *grpc.ClientConn
	entry  entryv1.EntryClient
	bundle bundlev1.BundleClient
	agent  agentv1.AgentClient
	svid   svidv1.SVIDClient
	health grpc_health_v1.HealthClient
}

// Dial prepares a client for the admin socket at socketPath ("/path/api.sock" or "unix:///path/api.sock"),
// counting calls on counter (nil counts nothing). The connection is made lazily: Dial does not fail when the
// server is not running yet; the first call (use Healthy or WaitHealthy) does, naming the socket.
func Dial(ctx context.Context, socketPath string, counter *calls.Counter) (*Client, error) {
	_ = ctx // the connection is lazy; ctx is kept for a future eager dial
	path, err := socketFile(socketPath)
	if err != nil {
		return nil, err
	}
	target := "unix://" + path
	conn, err := grpc.NewClient(target,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(calls.UnaryInterceptor(counter, System), boundCalls(CallTimeout)),
	)
	if err != nil {
		return nil, fmt.Errorf("SPIRE server at %s: %w", target, err)
	}
	return &Client{
		socket: path,
		target: target,
		conn:   conn,
		entry:  entryv1.NewEntryClient(conn),
		bundle: bundlev1.NewBundleClient(conn),
		agent:  agentv1.NewAgentClient(conn),
		svid:   svidv1.NewSVIDClient(conn),
		health: grpc_health_v1.NewHealthClient(conn),
	}, nil
}

func socketFile(s string) (string, error) {
	p := s
	if strings.HasPrefix(s, "unix:") {
		u, err := url.Parse(s)
		if err != nil {
			return "", fmt.Errorf("SPIRE server socket %q: %w", s, err)
		}
		p = u.Path
		if p == "" {
			p = u.Opaque // unix:relative/path
		}
	} else if strings.Contains(s, "://") {
		return "", fmt.Errorf("SPIRE server socket %q: only unix sockets are supported; write it as unix:///path/to/api.sock (the server's socket_path)", s)
	}
	if p == "" {
		return "", errors.New("SPIRE server socket is empty; set it to the server's socket_path, e.g. unix:///tmp/spire-server/private/api.sock")
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("SPIRE server socket %q: %w", s, err)
	}
	return abs, nil
}

// Close releases the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Socket is the filesystem path of the admin socket.
func (c *Client) Socket() string { return c.socket }

// Target is the socket as a URL (unix:///path), as used in messages.
func (c *Client) Target() string { return c.target }

// wrap names the server and the operation in err. The gRPC status stays reachable with status.Code.
func (c *Client) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if status.Code(err) == codes.Unavailable {
		return fmt.Errorf("SPIRE server at %s: %s: %w (is the server running, and is this its socket_path?)", c.target, op, err)
	}
	return fmt.Errorf("SPIRE server at %s: %s: %w", c.target, op, err)
}

// Healthy returns nil when the server answers and reports itself serving: the gRPC health service on the admin
// socket, which SPIRE answers by reading its own trust bundle from the datastore. It is a read.
func (c *Client) Healthy(ctx context.Context) error {
	resp, err := c.health.Check(ctx, &grpc_health_v1.HealthCheckRequest{})
	if err != nil {
		return c.wrap("health check", err)
	}
	if resp.GetStatus() != grpc_health_v1.HealthCheckResponse_SERVING {
		return fmt.Errorf("SPIRE server at %s: health check: status %s (the server cannot read its trust bundle from its datastore; see its log)",
			c.target, resp.GetStatus())
	}
	return nil
}

// WaitHealthy calls Healthy until it succeeds or deadline passes; the error is then a *wait.UnreachableError
// naming the socket. progress (optional) hears of each failed attempt.
func (c *Client) WaitHealthy(ctx context.Context, deadline time.Duration, progress wait.Progress) error {
	return wait.For(ctx, wait.Target{What: "SPIRE server", Where: c.target, Deadline: deadline, Progress: progress},
		func(ctx context.Context) error {
			err := c.Healthy(ctx)
			switch status.Code(err) {
			case codes.Unimplemented, codes.InvalidArgument, codes.PermissionDenied, codes.Unauthenticated:
				return wait.Permanent(err) // not a SPIRE admin socket, or not ours to use: waiting will not help
			}
			return err
		})
}

// X509Bundle returns the server's own trust domain and the X.509 authorities of its trust bundle (the roots
// SVIDs chain to: with an UpstreamAuthority, the upstream root).
func (c *Client) X509Bundle(ctx context.Context) (trustDomain string, authorities []*x509.Certificate, err error) {
	b, err := c.bundle.GetBundle(ctx, &bundlev1.GetBundleRequest{})
	if err != nil {
		return "", nil, c.wrap("get bundle", err)
	}
	for i, a := range b.GetX509Authorities() {
		cert, err := x509.ParseCertificate(a.GetAsn1())
		if err != nil {
			return "", nil, fmt.Errorf("SPIRE server at %s: get bundle: X.509 authority %d: %w", c.target, i, err)
		}
		authorities = append(authorities, cert)
	}
	return b.GetTrustDomain(), authorities, nil
}

// CreateJoinToken creates a join token valid for ttl (rounded up to whole seconds). When agentID is set (a
// SPIFFE ID in the server's trust domain, outside /spire/), the server also creates a node-alias entry, so the
// agent that attests with this token is known as agentID too: entries whose parent is agentID are served by it.
func (c *Client) CreateJoinToken(ctx context.Context, ttl time.Duration, agentID string) (token string, err error) {
	secs := int32((ttl + time.Second - 1) / time.Second)
	if secs < 1 {
		return "", fmt.Errorf("create join token: ttl %s is too short; give at least 1s", ttl)
	}
	req := &agentv1.CreateJoinTokenRequest{Ttl: secs}
	if agentID != "" {
		id, err := protoID(agentID)
		if err != nil {
			return "", fmt.Errorf("create join token: agent ID: %w", err)
		}
		req.AgentId = id
	}
	tok, err := c.agent.CreateJoinToken(ctx, req)
	if err != nil {
		return "", c.wrap("create join token", err)
	}
	return tok.GetValue(), nil
}

// MintX509SVID has the server sign an X509-SVID for spiffeID with the public key of key, with the server's
// default X509-SVID TTL. chain is the leaf first, then the intermediates up to (not including) a bundle
// authority.
func (c *Client) MintX509SVID(ctx context.Context, spiffeID string, key crypto.Signer) (chain []*x509.Certificate, err error) {
	id, err := spiffeid.FromString(spiffeID)
	if err != nil {
		return nil, fmt.Errorf("mint X509-SVID: SPIFFE ID %q: %w", spiffeID, err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{URIs: []*url.URL{id.URL()}}, key)
	if err != nil {
		return nil, fmt.Errorf("mint X509-SVID for %s: CSR: %w", id, err)
	}
	resp, err := c.svid.MintX509SVID(ctx, &svidv1.MintX509SVIDRequest{Csr: csr})
	if err != nil {
		return nil, c.wrap("mint X509-SVID for "+id.String(), err)
	}
	for i, der := range resp.GetSvid().GetCertChain() {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("SPIRE server at %s: mint X509-SVID for %s: certificate %d: %w", c.target, id, i, err)
		}
		chain = append(chain, cert)
	}
	if len(chain) == 0 {
		return nil, fmt.Errorf("SPIRE server at %s: mint X509-SVID for %s: empty certificate chain", c.target, id)
	}
	return chain, nil
}

func protoID(s string) (*types.SPIFFEID, error) {
	id, err := spiffeid.FromString(s)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", s, err)
	}
	return &types.SPIFFEID{TrustDomain: id.TrustDomain().Name(), Path: id.Path()}, nil
}

func idString(p *types.SPIFFEID) string {
	if p == nil {
		return ""
	}
	return "spiffe://" + p.GetTrustDomain() + p.GetPath()
}
