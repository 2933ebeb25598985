package app

import (
	"context"

	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

// deferred is a step whose real step can only be built once its dependencies have run (they create the client
// it needs). It was built once at start-up with a nil client to validate its declaration; Plan builds it again.
type deferred struct {
	name  string
	deps  []string
	build func() (steps.Step, error)
}

// deferStep validates build's declaration now and returns a step that rebuilds it when planned.
func deferStep(build func() (steps.Step, error)) (steps.Step, error) {
	s, err := build()
	if err != nil {
		return nil, err
	}
	return &deferred{name: s.Name(), deps: s.DependsOn(), build: build}, nil
}

func (d *deferred) Name() string        { return d.name }
func (d *deferred) DependsOn() []string { return d.deps }

func (d *deferred) Plan(ctx context.Context) (*steps.Plan, error) {
	s, err := d.build()
	if err != nil {
		return nil, err
	}
	return s.Plan(ctx)
}
