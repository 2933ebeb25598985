package main

import (
	"context"

	"github.com/ziti-bootstrap/ziti-bootstrap/app/command"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

// The run path of the commands is app/command's; these forward to it for converge.go, which still takes *globals.

func runReport(ctx context.Context, g *globals, mode steps.Mode, build command.Builder) (*steps.Report, error) {
	return g.cli().RunReport(ctx, mode, build)
}

func applyBuilder(g *globals, cfg *config.Config, only func(string) bool) command.Builder {
	return g.cli().ApplyBuilder(cfg, only)
}

func withLock(ctx context.Context, g *globals, cfg *config.Config, fn func(ctx context.Context) error) error {
	return g.cli().WithLock(ctx, cfg, fn)
}

func firstErrors(rep *steps.Report) string { return command.FirstErrors(rep) }
