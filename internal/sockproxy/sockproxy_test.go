package sockproxy_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/lock"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/sockproxy"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
)

// proxy serves policy p in front of the test bed's Engine and returns a client of the proxy's socket, one of
// the Engine itself (for the test's own setup and checks), and the proxy's socket path.
func proxy(t *testing.T, p sockproxy.Policy) (*docker.Client, *docker.Client, string) {
	t.Helper()
	in := testbed.Require(t, "docker")
	upstream := strings.TrimPrefix(in.Docker.Host, "unix://")
	sock := filepath.Join(t.TempDir(), "docker.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- sockproxy.Serve(ctx, sock, sockproxy.Handler(p, upstream, slog.New(slog.NewTextHandler(io.Discard, nil))))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("proxy: %v", err)
		}
	})
	testutil.Must(t, waitForSocket(sock))
	via, err := docker.New(sockproxy.UnixURL(sock), nil)
	testutil.Must(t, err)
	direct, err := docker.New(in.Docker.Host, nil)
	testutil.Must(t, err)
	t.Cleanup(func() { via.Close(); direct.Close() })
	return via, direct, sock
}

func waitForSocket(p string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("unix", p)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("proxy socket %s: %w", p, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// refused checks that err is the proxy's refusal of method path.
func refused(t *testing.T, what string, err error, call string) {
	t.Helper()
	refusedBy(t, "bootstrap", what, err, call)
}

// refusedBy checks that err is the refusal of method path by the proxy of policy.
func refusedBy(t *testing.T, policy, what string, err error, call string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), "socket proxy (policy "+policy+") refuses "+call) {
		t.Errorf("%s: %v; want the proxy's refusal of %s", what, err, call)
	}
}

// The bootstrap job's policy, against the real Engine: the job's own calls go through (the Engine's facts, and
// the apply lock taken, renewed and released), and every other call is refused before it reaches the Engine.
func TestBootstrapPolicy(t *testing.T) {
	lockName := "zbtest-sockproxy-lock-" + testutil.RandHex(t, 4)
	via, direct, sock := proxy(t, sockproxy.Bootstrap(lockName))
	ctx := testutil.Context(t, 2*time.Minute)

	// what the job does
	info, err := via.RequireManager(ctx)
	testutil.Must(t, err)
	t.Logf("through the proxy: %s", info)
	store := lock.NewSwarm(via, lockName, "the proxy")
	me := lock.Self()
	me.TTL, me.Expires = time.Minute, time.Now().Add(time.Minute)
	h, err := store.TryAcquire(ctx, me)
	if err != nil || h.Run != me.Run {
		t.Fatalf("take the lock through the proxy: %v (holder %s)", err, h)
	}
	t.Cleanup(func() {
		if c, err := direct.InspectConfig(context.Background(), lockName); err == nil {
			_ = direct.RemoveConfig(context.Background(), c.ID)
		}
	})
	testutil.Must(t, store.Renew(ctx, me))
	testutil.Must(t, store.Release(ctx, me))

	// what it does not
	_, err = via.Containers(ctx, "")
	refused(t, "list containers", err, "GET /v")
	_, err = via.Services(ctx, "")
	refused(t, "list services", err, "GET /v")
	_, err = via.CreateSecret(ctx, lockName+"-secret", []byte("x"), nil)
	refused(t, "create a secret", err, "POST /v")
	_, err = via.CreateConfig(ctx, lockName+"-other", []byte("x"), nil)
	refused(t, "create another config", err, "POST /v")
	if _, err := direct.InspectConfig(ctx, lockName+"-other"); !docker.IsNotFound(err) {
		t.Errorf("the refused config reached the Engine: %v", err)
	}
	otherID, err := direct.CreateConfig(ctx, lockName+"-victim", []byte("x"), nil)
	testutil.Must(t, err)
	t.Cleanup(func() { _ = direct.RemoveConfig(context.Background(), otherID) })
	refused(t, "remove another config by ID", via.RemoveConfig(ctx, otherID), "DELETE /v")
	_, err = via.InspectConfig(ctx, otherID)
	refused(t, "read another config", err, "GET /v")
	if _, err := direct.InspectConfig(ctx, otherID); err != nil {
		t.Errorf("the config the proxy refused to remove: %v", err)
	}

	// paths the Engine would read otherwise than the proxy
	for _, p := range []string{"/v1.41/configs/create/../../containers/json", "/v1.41/configs/x/../../../containers/json", "/v1.41/containers%2Fjson", "//v1.41/info"} {
		status, body := raw(t, sock, "GET", p)
		if status != http.StatusForbidden || !strings.Contains(body, "refuses") {
			t.Errorf("GET %s: HTTP %d %s; want 403 from the proxy", p, status, body)
		}
	}
}

// raw sends one request with exactly path p (no client cleans it) to the socket and returns the answer.
func raw(t *testing.T, sock, method, p string) (int, string) {
	t.Helper()
	return rawBody(t, sock, method, p, "", nil)
}
