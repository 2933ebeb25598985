package agentlauncher

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
)

// enginePings serves, at socket, what a working proxy in front of an Engine answers to a ping.
func enginePings(t *testing.T, socket string) {
	t.Helper()
	l, err := net.Listen("unix", socket)
	testutil.Must(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/_ping") {
			_, _ = io.WriteString(w, "OK")
			return
		}
		http.NotFound(w, r)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
}

// call sends one request to the unix socket and returns the answer's status and body.
func call(socket, method, path string) (int, string, error) {
	c, err := net.DialTimeout("unix", socket, 10*time.Second)
	if err != nil {
		return 0, "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: docker\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}", method, path)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// serve runs the launcher (proxy and loop) until the returned function is called; it returns Serve's error.
func serve(t *testing.T, l *Launcher) func() error {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- l.Serve(ctx) }()
	return func() error { cancel(); return <-done }
}

// waitRefused waits until the proxy at socket answers, and checks that it refuses a call outside the policy.
func waitRefused(t *testing.T, socket, method, path string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		status, body, err := call(socket, method, path)
		if err == nil {
			if status != http.StatusForbidden || !strings.Contains(body, "socket proxy (policy spire-agent) refuses "+method+" "+path) {
				t.Fatalf("%s %s through the agent's proxy: HTTP %d %s; want the proxy's refusal", method, path, status, body)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent's proxy at %s does not answer: %v", socket, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The launcher serves the agent's proxy beside its loop: a call outside the spire-agent policy is refused before it
// reaches any Engine; the socket goes with the launcher and a new launcher serves it again in the same directory,
// also over a socket file a crashed one left behind.
func TestServeServesTheAgentsProxyAgainAfterARestart(t *testing.T) {
	f := newFake()
	l, _ := testLauncher(t, f)
	sock := l.Settings.ProxySocket()

	stop := serve(t, l)
	waitRefused(t, sock, "POST", "/v1.41/containers/create")
	waitRefused(t, sock, "GET", "/v1.41/secrets")
	testutil.Must(t, stop())
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("the proxy's socket outlived the launcher: %v", err)
	}

	// a crashed launcher leaves its socket file: the next one replaces it
	left, err := net.Listen("unix", sock)
	testutil.Must(t, err)
	left.(*net.UnixListener).SetUnlinkOnClose(false)
	testutil.Must(t, left.Close())
	stop = serve(t, l)
	waitRefused(t, sock, "DELETE", "/v1.41/containers/spire_agent")
	testutil.Must(t, stop())
}

// A launcher whose proxy cannot listen ends (with the reason) rather than run an agent that attests nothing.
func TestServeEndsWhenTheProxyCannotListen(t *testing.T) {
	f := newFake()
	l, _ := testLauncher(t, f)
	l.Settings.ProxyDir = "/nonexistent-zb-proxy"
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	err := l.Serve(ctx)
	if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "the agent's Docker proxy at /nonexistent-zb-proxy/docker.sock") {
		t.Fatalf("Serve = %v (ctx %v), want the proxy's error", err, ctx.Err())
	}
}
