// Package steps runs ziti-bootstrap's configuration steps. A step observes one concern of one system, computes
// its plan (data: what it would create, update or delete, and why), and applies exactly that plan. The runner
// orders steps by their dependencies, stops the dependents of a failed step, and counts mutating API calls.
package steps

import (
	"context"
	"fmt"
)

// Action is what a change does.
type Action string

const (
	Create Action = "create"
	Update Action = "update"
	Delete Action = "delete"
)

// Change is one planned write.
type Change struct {
	Action Action   `json:"action"`
	Kind   string   `json:"kind"`             // e.g. "spire-entry", "ziti-ca"
	Key    string   `json:"key"`              // the object's natural identity
	Reason string   `json:"reason,omitempty"` // why: "missing", "differs", "not declared"
	Fields []string `json:"fields,omitempty"` // for updates: the fields that differ
}

func (c Change) String() string {
	s := fmt.Sprintf("%s %s %s", c.Action, c.Kind, c.Key)
	if len(c.Fields) > 0 {
		s += fmt.Sprintf(" (fields: %v)", c.Fields)
	}
	if c.Reason != "" {
		s += ": " + c.Reason
	}
	return s
}

// Plan is what a step would do. An empty plan does nothing when applied.
type Plan struct {
	Changes []Change
	// Notes are facts observed while planning that the user should see (e.g. a server version).
	Notes []string
	apply func(context.Context) error
}

// NewPlan returns a plan with changes, carried out by apply. apply is not called when changes is empty.
func NewPlan(changes []Change, apply func(context.Context) error) *Plan {
	return &Plan{Changes: changes, apply: apply}
}

// Note adds an observation to the plan and returns it.
func (p *Plan) Note(format string, args ...any) *Plan {
	p.Notes = append(p.Notes, fmt.Sprintf(format, args...))
	return p
}

// Empty reports whether the plan changes nothing.
func (p *Plan) Empty() bool { return p == nil || len(p.Changes) == 0 }

// Apply carries out the plan.
func (p *Plan) Apply(ctx context.Context) error {
	if p.Empty() || p.apply == nil {
		return nil
	}
	return p.apply(ctx)
}

// Step configures one concern of one system.
type Step interface {
	// Name is unique within a run, e.g. "ziti/reachable".
	Name() string
	// DependsOn names the steps that must succeed first.
	DependsOn() []string
	// Plan reads the live state and returns what Apply would change. It must not write.
	Plan(ctx context.Context) (*Plan, error)
}
