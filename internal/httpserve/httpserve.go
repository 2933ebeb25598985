// Package httpserve serves the metrics and health endpoints of the tool's long-running jobs.
package httpserve

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// While listens on addr, serves h there while run runs (given the address bound), and shuts the server down
// when run returns; it returns run's error.
func While(ctx context.Context, addr string, h http.Handler, run func(ctx context.Context, bound string) error) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s for metrics and health: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return run(ctx, l.Addr().String())
}

// Health is a /healthz handler: 200 with health's message while it reports healthy, 503 with the reason otherwise
// (what Swarm's health check and `healthcheck` commands read).
func Health(health func() (bool, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		ok, msg := health()
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, msg)
	}
}

// Get copies what the service at addr serves at path to w (for the `healthcheck` and `metrics` commands of
// images without curl) and returns the HTTP status.
func Get(ctx context.Context, addr, path string, w io.Writer) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, err
}
