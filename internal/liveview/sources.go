package liveview

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/progress"
)

// sourceRow is what a backup or a restore did and does with one source (ziti, spire, keycloak), or with the set
// as a whole (name "").
type sourceRow struct {
	name    string
	first   time.Time // its first stage after queued
	stage   string    // the current stage; progress.Done once finished
	since   time.Time // when the current stage began
	bytes   int64
	total   int64
	detail  string
	err     error
	down    bool   // restore: its server was stopped and is not yet back
	done    []span // the stages it went through, with their durations
	lastEnd time.Time
}

type span struct {
	stage string
	d     time.Duration
}

// Progress is a progress.Func: a backup's or a restore's events, drawn one row per source.
func (v *View) Progress(e progress.Event) {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.now()
	v.lockWait = ""
	switch e.Stage {
	case progress.Lock:
		v.lockWait = e.Detail
		v.refresh()
		return
	case progress.Set:
		v.set = e.Detail
		v.refresh()
		return
	}
	r := v.sources[e.Source]
	if r == nil {
		r = &sourceRow{name: e.Source}
		v.sources[e.Source] = r
		v.sourceOrder = append(v.sourceOrder, e.Source)
	}
	if e.Stage != r.stage || e.Stage == progress.Done {
		// a new stage ends the one before (a queued wait is not a stage of its own)
		if r.stage != "" && r.stage != progress.Queued && r.stage != progress.Done {
			r.done = append(r.done, span{r.stage, now.Sub(r.since)})
		}
		if r.first.IsZero() && e.Stage != progress.Queued {
			r.first = now
		}
		r.stage, r.since, r.bytes, r.total, r.detail = e.Stage, now, 0, 0, ""
	}
	switch e.Stage {
	case progress.Stop:
		r.down = true
	case progress.Done:
		r.down, r.err, r.lastEnd = false, e.Err, now
	}
	if e.Bytes > 0 || e.Total > 0 {
		r.bytes, r.total = e.Bytes, e.Total
	}
	if e.Detail != "" {
		r.detail = e.Detail
	}
	v.refresh()
}

// runningSource is the source whose stage runs now, as "spire: upload" ("" when none).
func (v *View) runningSource() string {
	running := ""
	for _, name := range v.sourceOrder {
		r := v.sources[name]
		if r.stage != progress.Queued && r.stage != progress.Done {
			running = orSet(name) + ": " + r.stage
		}
	}
	return running
}

func orSet(name string) string {
	if name == "" {
		return "set"
	}
	return name
}

// sourceLines renders a row per source: its state, bytes, time; under it the stages done with their times, and
// what the current stage does or waits for, or why it failed.
func (v *View) sourceLines(now time.Time) []string {
	var out []string
	for _, name := range v.sourceOrder {
		r := v.sources[name]
		mark, state := "▸", r.stage
		switch {
		case r.stage == progress.Done && r.err != nil:
			mark, state = "✗", "failed"
		case r.stage == progress.Done:
			mark = "✓"
		case r.stage == progress.Queued:
			mark = "·"
		}
		if r.down {
			state += map[bool]string{true: " (server starting)", false: " (server stopped)"}[r.stage == progress.Start || r.stage == progress.Health]
		}
		var amount string
		switch {
		case r.total > 0 && r.bytes > 0:
			amount = size(r.bytes) + "/" + size(r.total)
		case r.total > 0:
			amount = size(r.total)
		case r.bytes > 0:
			amount = size(r.bytes)
		}
		elapsed := ""
		if !r.first.IsZero() {
			end := now
			if r.stage == progress.Done {
				end = r.lastEnd
			}
			elapsed = dur(end.Sub(r.first))
		}
		out = append(out, strings.TrimRight(fmt.Sprintf("%s %-9s %-24s %7s  %s", mark, orSet(name), state, elapsed, amount), " "))
		var spans []string
		for _, s := range r.done {
			spans = append(spans, s.stage+" "+dur(s.d))
		}
		if len(spans) > 0 {
			out = append(out, "    "+strings.Join(spans, " · "))
		}
		switch {
		case r.err != nil && name == "" && v.sourceFailed():
			// the failed source's row says why
		case r.err != nil:
			out = append(out, "    ↳ "+r.err.Error())
		case r.detail != "" && r.stage != progress.Queued:
			out = append(out, "    ↳ "+r.detail)
		}
	}
	return out
}

// sourceFailed reports whether a source (not the set) failed.
func (v *View) sourceFailed() bool {
	for name, r := range v.sources {
		if name != "" && r.err != nil {
			return true
		}
	}
	return false
}

// size is n bytes for a person: B, KiB, MiB, GiB.
func size(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB"}
	f, u := float64(n), 0
	for f >= 1024 && u < len(units)-1 {
		f, u = f/1024, u+1
	}
	if u == 0 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.1f %s", f, units[u])
}

// Hold returns a writer whose output is held while the view is on screen and written to w after its last frame
// (Close); once the view is closed, it writes straight to w. Commands print their report through it: the view
// redraws in place, then the report follows it.
func (v *View) Hold(w io.Writer) io.Writer {
	v.mu.Lock()
	defer v.mu.Unlock()
	h := &heldWriter{v: v, w: w}
	v.held = append(v.held, h)
	return h
}

type heldWriter struct {
	v   *View
	w   io.Writer
	buf []byte
}

func (h *heldWriter) Write(p []byte) (int, error) {
	h.v.mu.Lock()
	defer h.v.mu.Unlock()
	if h.v.closed {
		return h.w.Write(p)
	}
	h.buf = append(h.buf, p...)
	return len(p), nil
}

// flush writes what h held (the view's lock held).
func (h *heldWriter) flush() {
	if len(h.buf) > 0 {
		h.w.Write(h.buf)
		h.buf = nil
	}
}
