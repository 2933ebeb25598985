package command

import (
	"context"
	"log/slog"
	"sync"
)

// Held returns a copy of c for a pass whose outcome may be dropped (up's read-only pass): it has no live view,
// and its logs are held back; replay writes them to c's logger, in order, with their own times. A copy dropped
// without replay logs nothing.
func (c *CLI) Held() (held *CLI, replay func()) {
	h := &heldLogs{}
	cp := *c
	cp.Live, cp.StartLive = nil, nil
	cp.Log = slog.New(heldHandler{logs: h, target: c.Log.Handler()})
	return &cp, h.replay
}

// heldLogs are the records a Held copy logged, each with the handler (attributes and groups included) it was
// logged to.
type heldLogs struct {
	mu   sync.Mutex
	recs []heldRecord
}

type heldRecord struct {
	h slog.Handler
	r slog.Record
}

func (l *heldLogs) replay() {
	l.mu.Lock()
	recs := l.recs
	l.recs = nil
	l.mu.Unlock()
	for _, rec := range recs {
		_ = rec.h.Handle(context.Background(), rec.r)
	}
}

// heldHandler holds the records target would handle.
type heldHandler struct {
	logs   *heldLogs
	target slog.Handler
}

func (h heldHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.target.Enabled(ctx, l) }

func (h heldHandler) Handle(_ context.Context, r slog.Record) error {
	h.logs.mu.Lock()
	defer h.logs.mu.Unlock()
	h.logs.recs = append(h.logs.recs, heldRecord{h: h.target, r: r.Clone()})
	return nil
}

func (h heldHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return heldHandler{logs: h.logs, target: h.target.WithAttrs(as)}
}

func (h heldHandler) WithGroup(name string) slog.Handler {
	return heldHandler{logs: h.logs, target: h.target.WithGroup(name)}
}
