// Package sockproxy is a filtering proxy in front of the Docker Engine's socket: a service that needs a few
// Engine API calls is given the proxy's socket instead of the Engine's (which is root on the node), and the proxy
// forwards only the calls of that service's policy. Anything else is refused with HTTP 403 and a message that
// names the policy and the call; nothing of a refused call reaches the Engine.
//
// A policy is a list of rules: a method, a path (without the /vX.Y version prefix) and, for calls on named
// objects, a check of the object's name (in the request body for a create, in the Engine's own record for
// calls by ID), so that e.g. the bootstrap job may create, read, relabel and remove the lock's config and no
// other. Paths that are not in their clean form (dot segments, doubled slashes, escaped characters) are refused:
// the proxy and the Engine must read the same path.
package sockproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path"
	"regexp"
	"strings"
	"time"
)

// maxBody bounds the request body a check reads (a config or service spec is far smaller).
const maxBody = 1 << 20

// Rule allows one kind of Engine API call.
type Rule struct {
	Method string
	// Path matches the path without its version prefix, e.g. ^/configs/([^/]+)$; its first group, when it has
	// one, is the object the call is about (Check receives it).
	Path *regexp.Regexp
	// Check, when set, must accept the call as well (e.g. the object's name); it may ask the Engine.
	Check func(ctx context.Context, c *Call) error
	// What says what the rule lets the service do, for documentation and refusals.
	What string
}

// Policy is what one service may call.
type Policy struct {
	Name  string
	Rules []Rule
}

// Call is a request being checked.
type Call struct {
	Method, Path string // Path without the version prefix
	Object       string // the Path pattern's first group, if any
	Query        url.Values
	Body         []byte // the request body, when a check needs it
	engine       *engine
}

// Engine asks the Engine for the JSON document at path (GET), e.g. to read the name of an object a call names by
// ID, into out.
func (c *Call) Engine(ctx context.Context, p string, out any) error { return c.engine.get(ctx, p, out) }

// RefusedError is why a call was not forwarded.
type RefusedError struct {
	Policy, Method, Path, Why string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("ziti-bootstrap socket proxy (policy %s) refuses %s %s: %s", e.Policy, e.Method, e.Path, e.Why)
}

var versionPrefix = regexp.MustCompile(`^/v[0-9]+\.[0-9]+/`)

// check decides whether p allows the call r (its path as sent, with its version prefix if any); the body is read
// (and given back to r) only when a matching rule has a check.
func (p Policy) check(ctx context.Context, e *engine, r *http.Request) error {
	refuse := func(why string) error {
		return &RefusedError{Policy: p.Name, Method: r.Method, Path: r.URL.Path, Why: why}
	}
	if r.URL.RawPath != "" || path.Clean(r.URL.Path) != r.URL.Path {
		return refuse("the path is not in its clean form")
	}
	p0 := r.URL.Path
	if loc := versionPrefix.FindStringIndex(p0); loc != nil {
		p0 = p0[loc[1]-1:]
	}
	var errs []string
	for _, rule := range p.Rules {
		if rule.Method != r.Method {
			continue
		}
		m := rule.Path.FindStringSubmatch(p0)
		if m == nil {
			continue
		}
		if rule.Check == nil {
			return nil
		}
		c := &Call{Method: r.Method, Path: p0, Query: r.URL.Query(), engine: e}
		if len(m) > 1 {
			c.Object = m[1]
		}
		if r.Body != nil && r.Body != http.NoBody {
			b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
			if err != nil {
				return refuse(fmt.Sprintf("read the request: %v", err))
			}
			if len(b) > maxBody {
				return refuse("request body larger than 1 MiB")
			}
			r.Body = io.NopCloser(bytes.NewReader(b))
			r.ContentLength = int64(len(b))
			c.Body = b
		}
		err := rule.Check(ctx, c)
		if err == nil {
			return nil
		}
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return refuse(strings.Join(errs, "; "))
	}
	return refuse("not a call this service makes")
}

// engine is the upstream Engine API, reached over its unix socket.
type engine struct {
	tr *http.Transport
}

func newEngine(socket string) *engine {
	d := &net.Dialer{Timeout: 10 * time.Second}
	return &engine{tr: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return d.DialContext(ctx, "unix", socket) },
		// a long-lived streaming answer (events, logs) must not be cut; the client's own timeouts bound it
		ResponseHeaderTimeout: 0,
		MaxIdleConns:          4,
		IdleConnTimeout:       30 * time.Second,
	}}
}

func (e *engine) get(ctx context.Context, p string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker"+p, nil)
	if err != nil {
		return err
	}
	resp, err := e.tr.RoundTrip(req)
	if err != nil {
		return fmt.Errorf("ask the Engine for %s: %w", p, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the Engine answered %s for %s", resp.Status, p)
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(out)
}

// Handler returns the proxy of policy p in front of the Engine's unix socket upstream. log is told of every
// refusal (never of a body).
func Handler(p Policy, upstream string, log *slog.Logger) http.Handler {
	e := newEngine(upstream)
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme, r.Out.URL.Host = "http", "docker"
			r.Out.Host = "docker"
		},
		Transport:     e.tr,
		FlushInterval: -1, // events and logs stream
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			log.Warn("socket proxy: the Engine did not answer", "policy", p.Name, "method", r.Method, "path", r.URL.Path, "err", err)
			writeError(w, http.StatusBadGateway, "ziti-bootstrap socket proxy: the Docker Engine did not answer: "+err.Error())
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := p.check(r.Context(), e, r); err != nil {
			var re *RefusedError
			if errors.As(err, &re) {
				log.Warn("socket proxy: refused", "policy", p.Name, "method", r.Method, "path", r.URL.Path, "why", re.Why)
			}
			writeError(w, http.StatusForbidden, err.Error())
			return
		}
		rp.ServeHTTP(w, r)
	})
}

// writeError answers as the Engine does ({"message": …}), which Docker clients show as the error.
func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

// Serve listens on the unix socket listen (replacing a stale one; mode 0660) and serves h until ctx ends.
func Serve(ctx context.Context, listen string, h http.Handler) error {
	if err := removeStale(listen); err != nil {
		return err
	}
	l, err := net.Listen("unix", listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", listen, err)
	}
	if err := os.Chmod(listen, 0o660); err != nil {
		l.Close()
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return nil
	}
}

// UnixURL is the DOCKER_HOST of a socket path.
func UnixURL(socket string) string { return (&url.URL{Scheme: "unix", Path: socket}).String() }

// removeStale removes a socket left at path by an earlier proxy; anything else there is an error.
func removeStale(p string) error {
	fi, err := os.Lstat(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket: not replacing it", p)
	}
	return os.Remove(p)
}

// Ping asks the Engine for /_ping through the proxy at socket: nil when both answer.
func Ping(ctx context.Context, socket string) error {
	if err := newEngine(socket).get(ctx, "/_ping", nil); err != nil {
		return fmt.Errorf("the socket proxy at %s: %w", socket, err)
	}
	return nil
}
