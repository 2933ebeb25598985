// Package spiretest connects integration tests to the test bed's SPIRE server (internal/testbed).
package spiretest

import (
	"context"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spire"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
)

// Dial returns a client of the test bed's SPIRE server, counting calls on counter and closed when the test ends,
// and the test bed's SPIRE section. It skips the test with -short and fails it when the test bed has no SPIRE
// server.
func Dial(t testing.TB, counter *calls.Counter) (*spire.Client, testbed.SpireInfo) {
	t.Helper()
	in := testbed.Require(t, "spire")
	c, err := spire.Dial(context.Background(), in.Spire.Socket, counter)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, in.Spire
}

// Connect is Dial, and waits up to 30 s for the server to be healthy.
func Connect(t testing.TB, counter *calls.Counter) (*spire.Client, testbed.SpireInfo) {
	t.Helper()
	c, in := Dial(t, counter)
	if err := c.WaitHealthy(context.Background(), 30*time.Second, nil); err != nil {
		t.Fatal(err)
	}
	return c, in
}
