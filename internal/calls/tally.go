package calls

import (
	"context"
	"sync/atomic"
)

type tallyKey struct{}

// WithTally returns ctx carrying a tally of the mutating calls made with it (or a context derived from it), and
// that tally: the runner gives each step its own, so that steps running at once each count their own writes.
// The Counter still counts every write.
func WithTally(ctx context.Context) (context.Context, *atomic.Int64) {
	n := new(atomic.Int64)
	return context.WithValue(ctx, tallyKey{}, n), n
}

// WriteCtx records one mutating call to system as Write does, and in the tally ctx carries (WithTally).
func (c *Counter) WriteCtx(ctx context.Context, system, what string) {
	c.Write(system, what)
	if n, _ := ctx.Value(tallyKey{}).(*atomic.Int64); n != nil {
		n.Add(1)
	}
}
