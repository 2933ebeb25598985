package command

import (
	"context"

	"github.com/ziti-bootstrap/ziti-bootstrap/app"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/policies"
)

// Apply is `apply`: it loads the configuration (with policiesFile, only the policy file is reconciled), takes the apply lock, runs the steps under it, and releases it.
func (c *CLI) Apply(ctx context.Context, policiesFile string) error {
	var only func(string) bool
	if policiesFile != "" {
		c.AddSet("POLICIES_FILE=" + policiesFile)
		only = func(name string) bool { return name == app.ZitiReachable || name == policies.Name }
	}
	cfg, err := c.LoadConfig()
	if err != nil {
		return err
	}
	return c.WithLock(ctx, cfg, func(ctx context.Context) error { return c.Exec(ctx, steps.Apply, c.ApplyBuilder(cfg, only)) })
}
