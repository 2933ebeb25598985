package main

import (
	"log/slog"
	"os"

	"golang.org/x/sys/unix"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/liveview"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/redact"
)

// startLiveView starts the live view of command title on stderr when it is a terminal and the output is text; it
// then takes the log (warnings and errors only, drawn above the frame: the frame shows the rest). Off a terminal,
// or with -o json, it does nothing and the structured logs stay. The returned function closes the view.
func startLiveView(g *globals, title string) func() {
	if g.output != "text" || !isTerminal(g.stderr) {
		return func() {}
	}
	f, _ := redact.Unwrap(g.stderr).(*os.File)
	width := func() int {
		ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
		if err != nil {
			return 0
		}
		return int(ws.Col)
	}
	g.live = liveview.New(g.stderr, title, width)
	g.log = slog.New(slog.NewTextHandler(g.live.LogWriter(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	return g.live.Close
}
