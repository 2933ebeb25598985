// Package calls counts the API calls ziti-bootstrap makes to each external system, split into reads and
// writes. Idempotency is proven with it: a second apply on a converged system must count zero writes.
//
// Counting lives in wrappers (an http.RoundTripper, a gRPC interceptor) so that no client can forget it.
package calls

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"sync"

	"google.golang.org/grpc"
)

// Counter counts calls per system. The zero value is not usable; use New. A nil *Counter counts nothing.
type Counter struct {
	mu     sync.Mutex
	writes map[string]int64
	reads  map[string]int64
	log    []string
}

// beforeWrite is called by Counter.Write before each write is recorded, and so before it is sent, and
// afterWrite when a write Transport or UnaryInterceptor recorded has been answered (or has failed): nothing,
// unless the binary was built with the crash hook (crashhook_on.go).
var (
	beforeWrite = func(system, what string) {}
	afterWrite  = func() {}
)

// New returns an empty counter.
func New() *Counter {
	return &Counter{writes: map[string]int64{}, reads: map[string]int64{}}
}

// Write records one mutating call to system; what names it (method and path) for the log.
func (c *Counter) Write(system, what string) {
	if c == nil {
		return
	}
	beforeWrite(system, what) // the test-only crash hook (crashhook.go); nothing in a release build
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes[system]++
	c.log = append(c.log, system+" "+what)
}

// answered tells the crash hook that a write this counter recorded has its answer (or its error).
func (c *Counter) answered() {
	if c != nil {
		afterWrite()
	}
}

// Read records one non-mutating call to system.
func (c *Counter) Read(system string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads[system]++
}

// Writes is the total number of mutating calls so far.
func (c *Counter) Writes() int64 {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for _, v := range c.writes {
		n += v
	}
	return n
}

// Snapshot returns the per-system write counts and the ordered list of writes ("system METHOD path").
func (c *Counter) Snapshot() (perSystem map[string]int64, writes []string) {
	perSystem = map[string]int64{}
	if c == nil {
		return perSystem, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range c.writes {
		perSystem[k] = v
	}
	return perSystem, append([]string(nil), c.log...)
}

// Systems lists the systems that saw any call, sorted.
func (c *Counter) Systems() []string {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := map[string]bool{}
	for k := range c.writes {
		seen[k] = true
	}
	for k := range c.reads {
		seen[k] = true
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Transport wraps base (http.DefaultTransport when nil) and counts every request it carries for system. A
// write passes the request context's Fence first and is not sent when it fails.
// Requests with a safe method (GET, HEAD, OPTIONS) are reads. Others are writes, except those whose URL path
// ends with one of sessionPaths: logging in (a Ziti /authenticate, a Keycloak token request) opens a session and
// changes no configuration, so it is counted as a read.
func Transport(c *Counter, system string, base http.RoundTripper, sessionPaths ...string) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{c: c, system: system, base: base, session: sessionPaths}
}

type transport struct {
	c       *Counter
	system  string
	base    http.RoundTripper
	session []string
}

func (t *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	if isWrite(r.Method, r.URL.Path, t.session) {
		if err := Fence(r.Context()); err != nil {
			return nil, err
		}
		t.c.WriteCtx(r.Context(), t.system, r.Method+" "+r.URL.Path)
		defer t.c.answered()
	} else {
		t.c.Read(t.system)
	}
	return t.base.RoundTrip(r)
}

// IsWrite reports whether a call is mutating as Transport and UnaryInterceptor count it (without session
// paths): an HTTP method and URL path, or "" and a gRPC method.
func IsWrite(method, target string) bool {
	if method == "" {
		return !isGRPCRead(target)
	}
	return isWrite(method, target, nil)
}

// isGRPCRead reports whether the gRPC method (e.g. /spire.api.server.entry.v1.Entry/ListEntries) only reads.
func isGRPCRead(method string) bool {
	name := method[strings.LastIndex(method, "/")+1:]
	for _, p := range []string{"List", "Get", "Count", "Fetch"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return name == "Check" || name == "Watch"
}

func isWrite(method, path string, session []string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	for _, s := range session {
		if strings.HasSuffix(path, s) {
			return false
		}
	}
	return true
}

// UnaryInterceptor counts gRPC calls for system. A method whose name starts with List, Get, Count or Fetch is a
// read; every other method (BatchCreateEntry, AppendBundle, MintX509SVID, …) is a write.
func UnaryInterceptor(c *Counter, system string) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if isGRPCRead(method) {
			c.Read(system)
		} else {
			if err := Fence(ctx); err != nil {
				return err
			}
			c.WriteCtx(ctx, system, method)
			defer c.answered()
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}
