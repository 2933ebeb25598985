// Package reach provides the "reachable" step of each system: it waits, with backoff and a deadline, until the
// system answers an authenticated read, and reports what it found. It never writes.
package reach

import (
	"context"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

// Names of the reachable steps, one per system: the other steps name them in DependsOn.
const (
	Ziti     = "ziti/reachable"
	Spire    = "spire/reachable"
	Keycloak = "keycloak/reachable"
	S3       = "s3/reachable"
	Docker   = "docker/reachable"
)

// Probe makes one attempt to reach the system; it returns a short description of what answered.
// Errors wrapped with wait.Permanent (bad credentials) stop the waiting at once.
type Probe func(ctx context.Context) (found string, err error)

// Step waits for one system.
type Step struct {
	name   string
	target wait.Target
	probe  Probe
	deps   []string
}

// New returns the reachable step called name for the system what at where.
func New(name, what, where string, deadline time.Duration, progress wait.Progress, probe Probe) *Step {
	return &Step{name: name, target: wait.Target{What: what, Where: where, Deadline: deadline, Progress: progress}, probe: probe}
}

func (s *Step) Name() string        { return s.name }
func (s *Step) DependsOn() []string { return s.deps }

// Plan waits for the system and returns an empty plan noting what answered.
func (s *Step) Plan(ctx context.Context) (*steps.Plan, error) {
	var found string
	err := wait.For(ctx, s.target, func(ctx context.Context) error {
		f, err := s.probe(ctx)
		found = f
		return err
	})
	if err != nil {
		return nil, err
	}
	return steps.NewPlan(nil, nil).Note("%s at %s: %s", s.target.What, s.target.Where, found), nil
}
