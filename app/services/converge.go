package services

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"

	"github.com/ziti-bootstrap/ziti-bootstrap/app/command"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/converge"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/lock"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spire"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

// Converge runs the converge loop (internal/converge) until SIGTERM: a pass of apply at start, every interval and
// at once when SPIRE's trust bundle changes, serving /metrics, /healthz and /status.
func Converge(ctx context.Context, c *command.CLI) error {
	cc, err := config.LoadConverge(c.Sources())
	if err != nil {
		return err
	}
	cfg, err := c.LoadConfig() // checked once at start: a service with a bad configuration fails at once
	if err != nil {
		return err
	}
	c.AddSet("ZB_LOCK_WAIT=0") // never wait for a run that holds the lock: skip the pass
	bundle, err := spire.Dial(ctx, cfg.Spire.Socket, nil)
	if err != nil {
		return &config.Error{Problems: []config.Problem{{Var: "SPIRE_SERVER_ADDRESS", Msg: err.Error()}}}
	}
	defer bundle.Close()
	loop, err := converge.New(converge.Config{
		StartAfter: cc.StartAfter,
		Pass:       func(ctx context.Context, _ string) converge.Outcome { return convergePass(ctx, c) },
		Bundle:     converge.BundleFingerprint(bundle),
		Interval:   cc.Interval, BundlePoll: cc.BundlePoll, Backoff: cc.Backoff, Log: c.Log,
	})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	return loop.Serve(ctx, cc.Listen)
}

// convergePass is one pass of the loop: apply under the lock, taken only if no other run holds it.
func convergePass(ctx context.Context, c *command.CLI) converge.Outcome {
	cfg, err := c.LoadConfig()
	if err != nil {
		return converge.Outcome{Err: err}
	}
	var rep *steps.Report
	err = c.WithLock(ctx, cfg, func(ctx context.Context) error {
		rep, err = c.RunReport(ctx, steps.Apply, c.ApplyBuilder(cfg, nil))
		return err
	})
	if errors.Is(err, lock.ErrHeld) {
		return converge.Outcome{Busy: true, Err: err}
	}
	return converge.FromReport(rep, err)
}
