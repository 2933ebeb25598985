package spire_test

import (
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spire/spiretest"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
)

// The test bed's agent (attested with a join token) is listed with its ID, attestor and SVID expiry.
func TestListAgents(t *testing.T) {
	c, in := spiretest.Connect(t, nil)
	agents, err := c.ListAgents(testutil.Context(t, time.Minute))
	testutil.Must(t, err)
	for _, a := range agents {
		if a.ID == in.AgentID {
			if a.AttestationType != "join_token" || a.Banned || !a.SVIDExpires.After(time.Now()) {
				t.Errorf("agent %+v: want join_token, not banned, SVID valid", a)
			}
			return
		}
	}
	t.Fatalf("agent %s not among %+v", in.AgentID, agents)
}
