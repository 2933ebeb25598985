// Package steps runs ziti-bootstrap's configuration steps. A step observes one concern of one system, computes
// its plan (data: what it would create, update or delete, and why), and applies exactly that plan. The runner
// orders steps by their dependencies, runs those that do not depend on each other at once, stops the dependents
// of a failed step, and counts mutating API calls (each step its own).
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
	// Diff is, for updates, each differing field with its value before and after (secrets Redacted), in the
	// order of Fields. Set both with WithDiff.
	Diff Diff `json:"diff,omitempty"`
}

// WithDiff returns c with its fields and their before/after values set from d.
func (c Change) WithDiff(d Diff) Change {
	c.Fields, c.Diff = d.Names(), d
	return c
}

// Redacted stands for a secret's value in a FieldChange; Unknown for a value only known once apply has run
// (e.g. the id of an object an earlier change creates).
const (
	Redacted = "**redacted**"
	Unknown  = "(known after apply)"
)

// FieldChange is one field of an updated object: its value before and after the change.
type FieldChange struct {
	Field  string `json:"field"`
	Before any    `json:"before"`
	After  any    `json:"after"`
}

// Diff collects the fields that differ, in the order they are checked.
type Diff []FieldChange

// Add records field with its values when differs is true.
func (d *Diff) Add(differs bool, field string, before, after any) {
	if differs {
		*d = append(*d, FieldChange{Field: field, Before: before, After: after})
	}
}

// Compare records field in d when before and after differ, each value named once.
func Compare[T comparable](d *Diff, field string, before, after T) {
	d.Add(before != after, field, before, after)
}

// AddSecret records a secret field when differs is true; its values are never shown.
func (d *Diff) AddSecret(differs bool, field string) { d.Add(differs, field, Redacted, Redacted) }

// Names returns the names of the fields, in order.
func (d Diff) Names() []string {
	if len(d) == 0 {
		return nil
	}
	out := make([]string, len(d))
	for i, f := range d {
		out[i] = f.Field
	}
	return out
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
	Notes   []string
	apply   func(context.Context) error
	applied []Change // set by SetApplied
}

// SetApplied records, from within apply, the changes apply carried out when they are not Changes (a step that
// was planned again mid-apply carried out the new plan); the runner reports them instead of Changes.
func (p *Plan) SetApplied(changes []Change) { p.applied = changes }

// Applied returns the changes apply carried out: Changes, unless apply said otherwise (SetApplied).
func (p *Plan) Applied() []Change {
	if p.applied != nil {
		return p.applied
	}
	return p.Changes
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

// AddNotes adds observations, each as it is, to the plan and returns it.
func (p *Plan) AddNotes(notes ...string) *Plan {
	p.Notes = append(p.Notes, notes...)
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
