package config

import (
	"net/url"
	"time"
)

// ConvergeVars are the variables of `ziti-bootstrap converge`, the service that keeps the system converged
// (internal/converge). init appends them to Vars, so Lookup, --set and the .env.example check know them.
var ConvergeVars = []Var{
	{Name: "ZB_CONVERGE_INTERVAL", Default: "5m", Help: "converge: time between passes on a converged system (Go duration); a pass also runs at once when SPIRE's trust bundle changes"},
	{Name: "ZB_CONVERGE_BUNDLE_POLL", Default: "5s", Help: "converge: how often SPIRE's trust bundle is read to see a new or dropped root"},
	{Name: "ZB_CONVERGE_BACKOFF", Default: "5s", Help: "converge: wait after a failed pass, doubled after each next failure in a row, up to ZB_CONVERGE_INTERVAL"},
	{Name: "ZB_CONVERGE_LISTEN", Default: "127.0.0.1:9109", Help: "converge: address of /metrics, /healthz and /status (in the stack: ZB_METRICS_ADDRESS:9109)"},
	{Name: "ZB_CONVERGE_START_AFTER", Default: "0s", Help: "converge: wait before the first pass (0s: at once); in the Swarm the bootstrap job makes the first apply, and the service's first pass comes an interval later"},
	{Name: "ZB_CONVERGE_URL", Help: "status: base URL of the converge service's /status (e.g. http://127.0.0.1:9109); empty: not asked"},
}

// Converge configures the converge loop.
type Converge struct {
	Interval, BundlePoll, Backoff time.Duration
	Listen                        string
	StartAfter                    time.Duration
	URL                           *url.URL // where status asks the service (nil: not asked)
}

// LoadConverge reads the converge variables from src with the precedence of Load and validates them.
func LoadConverge(src Sources) (Converge, error) {
	l := newLoader(src)
	c := Converge{
		Interval: l.positive("ZB_CONVERGE_INTERVAL", "5m"), BundlePoll: l.positive("ZB_CONVERGE_BUNDLE_POLL", "5s"),
		Backoff: l.positive("ZB_CONVERGE_BACKOFF", "5s"), Listen: l.listen("ZB_CONVERGE_LISTEN"),
		StartAfter: l.nonNegative("ZB_CONVERGE_START_AFTER"), URL: l.url("ZB_CONVERGE_URL", "", false),
	}
	if err := l.err(); err != nil {
		return Converge{}, err
	}
	return c, nil
}

// LoadConvergeListen returns where a health check reaches the converge service: ZB_CONVERGE_LISTEN, on
// 127.0.0.1 when it names no host. Only that variable is read and checked.
func LoadConvergeListen(src Sources) (string, error) {
	return loadLocalListen(src, "ZB_CONVERGE_LISTEN")
}

// positive parses a positive Go duration.
func (l *loader) positive(name, example string) time.Duration {
	v := l.get(name)
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		l.fail(name, "%q is not a positive duration; use e.g. %s", v, example)
	}
	return d
}

// nonNegative parses a Go duration of 0 or more.
func (l *loader) nonNegative(name string) time.Duration {
	v := l.get(name)
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		l.fail(name, "%q is not a duration of 0 or more; use e.g. 0s or 5m", v)
	}
	return d
}
