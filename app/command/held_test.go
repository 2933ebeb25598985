package command

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// A held copy logs nothing until replay, which writes its records in order, with their attributes and groups;
// a dropped one never logs.
func TestHeldLogs(t *testing.T) {
	var out bytes.Buffer
	c := &CLI{Log: slog.New(slog.NewTextHandler(&out, nil))}
	held, replay := c.Held()
	held.Log.Info("step start", "step", "stack/spire")
	held.Log.With("run", "r1").WithGroup("g").Info("step done", "status", "unchanged")
	held.Log.Debug("not enabled")
	if out.Len() != 0 {
		t.Fatalf("logged before replay: %s", out.String())
	}
	replay()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "msg=\"step start\" step=stack/spire") ||
		!strings.Contains(lines[1], "msg=\"step done\" run=r1 g.status=unchanged") {
		t.Fatalf("replayed:\n%s", out.String())
	}
	out.Reset()
	dropped, _ := c.Held()
	dropped.Log.Info("step start", "step", "stack/keycloak")
	replay() // the first copy's records are out already
	if out.Len() != 0 {
		t.Fatalf("a dropped copy logged: %s", out.String())
	}
}
