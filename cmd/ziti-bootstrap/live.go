package main

import (
	"context"
	"log/slog"
	"os"

	"golang.org/x/sys/unix"

	"github.com/ziti-bootstrap/ziti-bootstrap/app"
	"github.com/ziti-bootstrap/ziti-bootstrap/app/command"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/liveview"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/progress"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/redact"
)

// startLiveView starts the live view of command title on stderr when it is a terminal and the output is text; it
// then takes the log (warnings and errors only, drawn above the frame: the frame shows the rest), and what the
// command prints to stdout meanwhile is held until the last frame is drawn: the report follows it. Off a terminal, or with -o json, it does nothing
// and the structured logs stay. The returned function closes the view.
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
	g.stdout = g.live.Hold(g.stdout)
	return g.live.Close
}

// startBackupView is startLiveView for backup and restore, which do not go through the step runner: on a
// terminal, env logs to the view and the returned context carries the view as the progress events' receiver
// (package progress); c writes through the view. Off a terminal it returns ctx, c and env unchanged.
func startBackupView(ctx context.Context, g *globals, c *command.CLI, env *app.Backup, title string) (context.Context, func()) {
	done := startLiveView(g, title)
	if g.live == nil {
		return ctx, done
	}
	env.Log = g.log
	c.Stdout, c.Log, c.Live = g.stdout, g.log, g.live // the report is held until the view's last frame
	return progress.With(ctx, g.live.Progress), done
}
