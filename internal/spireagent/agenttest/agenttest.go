// Package agenttest gives integration tests X509-SVIDs from the test bed's real SPIRE agent: it registers entries
// that select the test process (or a child of another group) by uid and gid (the agent's unix workload
// attestor), parented to the agent's ID, and opens Workload API sources for them.
package agenttest

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spire"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spire/spiretest"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spireagent"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
)

// Socket is the test bed agent's Workload API address.
func Socket(t testing.TB) string {
	t.Helper()
	_, in := spiretest.Dial(t, nil)
	return "unix://" + in.AgentSocket
}

// Register creates an entry for spiffe://TD/path that selects this test process (unix:uid and unix:gid, the
// agent's unix workload attestor), served by the test bed's agent, with X509-SVIDs of ttl (0: the server's
// default); it is deleted when the test ends. The entry ID starts with "zbt-agenttest-".
func Register(t testing.TB, path string, ttl time.Duration) spiffeid.ID {
	t.Helper()
	return RegisterGID(t, path, ttl, os.Getgid())
}

// RegisterGID is Register for a process of this test's uid running with group gid: a child process started
// with that gid gets this SVID, and neither this process nor children of other gids do. gid must be named in
// /etc/group: the test bed's static spire-agent crashes looking up the name of a group that is not.
func RegisterGID(t testing.TB, path string, ttl time.Duration, gid int) spiffeid.ID {
	t.Helper()
	c, in := spiretest.Connect(t, nil)
	id := spiffeid.RequireFromString(fmt.Sprintf("spiffe://%s/%s", in.TrustDomain, path))
	e := spire.Entry{ID: "zbt-agenttest-" + testutil.RandHex(t, 6), SpiffeID: id.String(), ParentID: in.AgentID,
		Selectors:   []spire.Selector{{Type: "unix", Value: fmt.Sprintf("uid:%d", os.Getuid())}, {Type: "unix", Value: fmt.Sprintf("gid:%d", gid)}},
		X509SVIDTTL: int32(ttl / time.Second)}
	ctx := testutil.Context(t, time.Minute)
	if errs := c.BatchCreate(ctx, []spire.Entry{e}); errs[0] != nil {
		t.Fatalf("register %s: %v", id, errs[0])
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if errs := c.BatchDelete(ctx, []string{e.ID}); errs[0] != nil {
			t.Errorf("delete entry %s: %v", e.ID, errs[0])
		}
	})
	return id
}

// Source opens a Workload API source holding the SVID of id from the test bed's agent (which may take a few
// seconds after Register: the agent syncs its entries periodically), closed when the test ends.
func Source(t testing.TB, id spiffeid.ID) *workloadapi.X509Source {
	t.Helper()
	src, err := spireagent.Open(testutil.Context(t, 3*time.Minute), spireagent.Options{Socket: Socket(t), Want: id, Deadline: 2 * time.Minute})
	if err != nil {
		t.Fatalf("X509-SVID of %s from the test bed's agent: %v", id, err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}
