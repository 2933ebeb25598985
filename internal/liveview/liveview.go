// Package liveview draws a run's progress on a terminal and redraws it in place: the steps (done, running,
// waiting), and for the stack being waited on each service's tasks running/desired per node, its health and its
// problem, with the time elapsed. It is fed by the runner's events (Step), the convergence checks of
// package taskwatch (Stack) and the waits (Wait); log lines of warnings go above the frame (Log). A backup or a
// restore, which do not go through the runner, feed it their progress events (Progress): a row per source with
// its stage (snapshot, upload, verify; download, stop, restore, start, health), bytes, time and the stages
// done. Off a terminal nothing of this is used: commands log as before.
package liveview

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/taskwatch"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

// View is the live view of one run. Its methods may be called from any goroutine.
type View struct {
	w     io.Writer
	title string
	width func() int // columns of the terminal; 0 = unknown
	now   func() time.Time

	mu          sync.Mutex
	start       time.Time
	order       []string // steps in the order they started
	steps       map[string]*stepLine
	stacks      map[string]taskwatch.Stack // by step name
	waiting     map[string]string          // step → what it waits for (the last wait's message)
	set         string                     // the backup's or restore's set
	sources     map[string]*sourceRow      // by source name ("": the set)
	sourceOrder []string
	held        []*heldWriter // output that follows the last frame (Hold)
	lockWait    string        // the holder of the lock the run waits for; "" once it has it
	lines       int           // lines of the frame on screen
	stop        chan struct{}
	closed      bool
}

type stepLine struct {
	name    string
	started time.Time
	result  *steps.Result
}

// New returns a view that draws on w (a terminal) with title (e.g. "up"); width gives the terminal's columns
// (nil or 0: 120). It redraws every second until Close.
func New(w io.Writer, title string, width func() int) *View {
	v := &View{w: w, title: title, width: width, now: time.Now, steps: map[string]*stepLine{}, stacks: map[string]taskwatch.Stack{},
		waiting: map[string]string{}, sources: map[string]*sourceRow{}, stop: make(chan struct{})}
	v.start = v.now()
	go v.tick()
	return v
}

func (v *View) tick() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-v.stop:
			return
		case <-t.C:
			v.mu.Lock()
			v.refresh()
			v.mu.Unlock()
		}
	}
}

// Step is the runner's observer.
func (v *View) Step(e steps.Event) {
	v.mu.Lock()
	defer v.mu.Unlock()
	s := v.steps[e.Step]
	if s == nil {
		s = &stepLine{name: e.Step, started: v.now()}
		v.steps[e.Step] = s
		v.order = append(v.order, e.Step)
	}
	if e.Result != nil {
		r := *e.Result
		s.result = &r
	}
	v.refresh()
}

// Stack is taskwatch's sink: what the last convergence check of a stack saw.
func (v *View) Stack(s taskwatch.Stack) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.stacks[s.Step] = s
	v.refresh()
}

// Wait is a wait.Progress: the step that runs now waits for what.
func (v *View) Wait(what, where string, attempt int, elapsed time.Duration, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, name := range v.order {
		if v.steps[name].result == nil {
			v.waiting[name] = fmt.Sprintf("waiting for %s (attempt %d)", what, attempt)
		}
	}
	v.refresh()
}

// Log prints a line above the frame (a warning, an error) and redraws the frame below it.
func (v *View) Log(line string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.clear()
	fmt.Fprintln(v.w, line)
	v.refresh()
}

// Close draws the last frame and leaves it on screen; the report follows it.
func (v *View) Close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return
	}
	v.closed = true
	close(v.stop)
	v.redraw()
	v.lines = 0
	for _, h := range v.held {
		h.flush()
	}
}

// clear moves the cursor to the frame's first line and clears to the end of the screen.
func (v *View) clear() {
	if v.lines > 0 {
		fmt.Fprintf(v.w, "\x1b[%dA\r\x1b[J", v.lines)
	}
	v.lines = 0
}

// refresh redraws the frame unless the view is closed.
func (v *View) refresh() {
	if !v.closed {
		v.redraw()
	}
}

func (v *View) redraw() {
	frame := v.Frame()
	v.clear()
	io.WriteString(v.w, frame)
	v.lines = strings.Count(frame, "\n")
}

// Frame renders the view as lines, each cut to the terminal's width (a line that wraps would break the redraw).
func (v *View) Frame() string {
	width := 120
	if v.width != nil && v.width() > 0 {
		width = v.width()
	}
	var lines []string
	now := v.now()
	running := ""
	for _, name := range v.order {
		if v.steps[name].result == nil {
			running = name
		}
	}
	if s := v.runningSource(); s != "" {
		running = s
	}
	head := fmt.Sprintf("%s  %s", v.title, dur(now.Sub(v.start)))
	if v.set != "" {
		head += "  set " + v.set
	}
	if running != "" {
		head += "  step " + running
	}
	if v.lockWait != "" {
		head += "  waiting for the lock, " + v.lockWait
	}
	lines = append(lines, head)
	lines = append(lines, v.sourceLines(now)...)
	for _, name := range v.order {
		s := v.steps[name]
		if r := s.result; r != nil {
			mark := map[steps.Status]string{steps.Failed: "✗", steps.Skipped: "-"}[r.Status]
			if mark == "" {
				mark = "✓"
			}
			l := fmt.Sprintf("%s %-28s %-9s %7s", mark, name, r.Status, dur(r.Duration))
			if r.MutatingCalls > 0 {
				l += fmt.Sprintf("  %d write(s)", r.MutatingCalls)
			}
			lines = append(lines, l)
			if r.Error != "" {
				lines = append(lines, "    "+r.Error)
			}
		} else {
			l := fmt.Sprintf("▸ %-28s %-9s %7s", name, "running", dur(now.Sub(s.started)))
			if w := v.waiting[name]; w != "" {
				l += "  " + w
			}
			lines = append(lines, l)
		}
		if st, ok := v.stacks[name]; ok && (s.result == nil || s.result.Status == steps.Failed || !st.Done) {
			lines = append(lines, stackLines(st)...)
		}
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(cut(strings.ReplaceAll(l, "\n", " "), width-1))
		b.WriteString("\n")
	}
	return b.String()
}

// stackLines renders one stack's services: running/desired, health, per node, the problem.
func stackLines(st taskwatch.Stack) []string {
	svcs := append([]taskwatch.Service(nil), st.Services...)
	sort.Slice(svcs, func(i, j int) bool { return svcs[i].Name < svcs[j].Name })
	var out []string
	for _, s := range svcs {
		health := "waiting"
		switch {
		case s.Converged && s.Job:
			health = "completed"
		case s.Converged:
			health = "healthy"
		case s.Starting > 0:
			health = "starting"
		}
		var nodes []string
		for _, n := range s.Nodes {
			var parts []string
			if n.Running > 0 || (n.Starting == 0 && n.Failed == 0) {
				parts = append(parts, fmt.Sprintf("%d running", n.Running))
			}
			if n.Starting > 0 {
				parts = append(parts, fmt.Sprintf("%d starting", n.Starting))
			}
			if n.Failed > 0 {
				parts = append(parts, fmt.Sprintf("%d failed", n.Failed))
			}
			nodes = append(nodes, n.Node+": "+strings.Join(parts, ", "))
		}
		l := fmt.Sprintf("    %-36s %d/%d %-9s", s.Name, s.Running, s.Desired, health)
		if len(nodes) > 0 {
			l += "  " + strings.Join(nodes, "; ")
		}
		out = append(out, l)
		if !s.Converged && s.Problem != "" {
			out = append(out, "      ↳ "+s.Problem)
		}
	}
	return out
}

func dur(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}

// cut shortens s to n runes, with an ellipsis.
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:max(n-1, 0)]) + "…"
}

// LogWriter is an io.Writer for a log handler: each line written goes above the frame.
func (v *View) LogWriter() io.Writer { return logWriter{v} }

type logWriter struct{ v *View }

func (l logWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		l.v.Log(line)
	}
	return len(p), nil
}
