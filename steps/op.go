package steps

import (
	"context"
	"errors"
	"fmt"
)

// Op is one planned change and how to carry it out against an API of type A. A step's diff returns its ops as
// data (a pure function of observed and desired state, no call made); OpsPlan binds them to the API.
type Op[A any] struct {
	Change Change
	Run    func(ctx context.Context, api A) error
}

// Changes returns the changes of ops, in order.
func Changes[A any](ops []Op[A]) []Change {
	out := make([]Change, len(ops))
	for i, o := range ops {
		out[i] = o.Change
	}
	return out
}

// OpsPlan returns the plan that carries out ops in order against api. A failed op is recorded and the next ones
// still run, unless stop reports that its failure ends the apply (e.g. the container every later object lives
// in); stop may be nil. The errors are joined, each prefixed with its change.
func OpsPlan[A any](api A, ops []Op[A], stop func(Change) bool) *Plan {
	return NewPlan(Changes(ops), func(ctx context.Context) error {
		var errs []error
		for _, o := range ops {
			if err := o.Run(ctx, api); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", o.Change, err))
				if stop != nil && stop(o.Change) {
					break
				}
			}
		}
		return errors.Join(errs...)
	})
}

// Ref is the id of an object that exists already or that an earlier op of the same plan creates.
type Ref struct {
	what, id string
}

// NewRef returns a reference to the object described by what (e.g. "client openziti"); id is its id when it
// exists, "" when an op of the plan creates it (that op then calls Set).
func NewRef(what, id string) *Ref { return &Ref{what: what, id: id} }

// Set records the id of the created object.
func (r *Ref) Set(id string) { r.id = id }

// ID is the object's id, "" while it is not known (not created yet).
func (r *Ref) ID() string { return r.id }

// Known reports whether the id is known.
func (r *Ref) Known() bool { return r.id != "" }

// After returns an op's Run that calls fn with r's id; it fails without calling fn when the object was not
// created.
func After[A any](r *Ref, fn func(ctx context.Context, api A, id string) error) func(context.Context, A) error {
	return func(ctx context.Context, api A) error {
		if r.id == "" {
			return fmt.Errorf("%s was not created", r.what)
		}
		return fn(ctx, api, r.id)
	}
}
