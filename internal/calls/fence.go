package calls

import "context"

type fenceKey struct{}

// WithFence returns ctx carrying check, the fence every mutating call made with ctx (or a context derived
// from it) passes first: when check fails, the call is not sent and fails with check's error. The apply lock's
// lease puts its check there, so that a run which lost the lock stops before its next write. A nil check
// removes the fence (the lock's own calls).
func WithFence(ctx context.Context, check func() error) context.Context {
	return context.WithValue(ctx, fenceKey{}, check)
}

// Fence runs the fence ctx carries, if any: nil when a write may go ahead.
func Fence(ctx context.Context) error {
	if check, _ := ctx.Value(fenceKey{}).(func() error); check != nil {
		return check()
	}
	return nil
}
