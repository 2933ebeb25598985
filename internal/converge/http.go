package converge

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/httpserve"
)

// Handler serves /metrics (Prometheus), /healthz (200, or 503 with the reason: see Health) and /status (State
// as JSON: what `ziti-bootstrap status` reads).
func (l *Loop) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(l.reg, promhttp.HandlerOpts{}))
	mux.Handle("/healthz", httpserve.Health(l.Health))
	mux.HandleFunc("/status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(l.State())
	})
	return mux
}

// Serve runs the loop and serves Handler on addr until ctx ends.
func (l *Loop) Serve(ctx context.Context, addr string) error {
	return httpserve.While(ctx, addr, l.Handler(), func(ctx context.Context, bound string) error {
		l.cfg.Log.Info("converge loop started", "interval", l.cfg.Interval.String(), "bundlePoll", l.cfg.BundlePoll.String(), "listen", bound)
		return l.Run(ctx)
	})
}
