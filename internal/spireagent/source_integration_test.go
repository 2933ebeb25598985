package spireagent_test

import (
	"errors"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spireagent"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spireagent/agenttest"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
)

// A workload that starts before its entry exists (the router and the router enrolment service start before the
// bootstrap job registers theirs) asks the real agent again at least every second, so it has its SVID within a
// second of the agent: in 20 s without an entry, at least 9 attempts (go-spiffe's default, 1, 2, 3, 4, 5 s
// apart, makes 6; a loaded machine slows each attempt, not the count below 9).
func TestOpenAsksTheAgentEverySecondWhileItHasNoEntry(t *testing.T) {
	in := testbed.Require(t, "spire")
	want := "spiffe://" + in.Spire.TrustDomain + "/later-" + testutil.RandHex(t, 3)
	_, err := spireagent.Open(testutil.Context(t, time.Minute), spireagent.Options{Socket: agenttest.Socket(t),
		Want: spiffeid.RequireFromString(want), Deadline: 20 * time.Second})
	var ue *wait.UnreachableError
	if !errors.As(err, &ue) {
		t.Fatalf("Open = %v; want the deadline's unreachable error", err)
	}
	if ue.Attempts < 9 {
		t.Errorf("the agent was asked %d time(s) in %s; want at least 9 (once a second)", ue.Attempts, ue.Waited.Round(time.Second))
	}
	t.Logf("%d attempts in %s: %v", ue.Attempts, ue.Waited.Round(time.Millisecond), ue.Last)
}
