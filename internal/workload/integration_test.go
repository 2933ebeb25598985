package workload_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spireagent"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spireagent/agenttest"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/bedziti"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/workload"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
)

// The workload gets its SVID from the test bed's real SPIRE agent (an entry selecting this process by uid, with a
// 30 s TTL so that the agent rotates it within the test), enrols through the real SPIRE CA in the real
// controller, and logs in again with each rotated SVID.
func TestWorkloadEnrolsAndLogsInAgainAfterTheAgentRotatesItsSVID(t *testing.T) {
	in := testbed.Require(t, "ziti")
	admin := bedziti.Admin(t)
	app := "zbt-wl-" + testutil.RandHex(t, 3)
	caName, roles, id := bedziti.SpireWorkload(t, admin, "workloads/"+app, 30*time.Second)
	src := agenttest.Source(t, id)

	u, err := url.Parse(in.Ziti.URL)
	testutil.Must(t, err)
	counter := calls.New()
	api, err := ziti.NewClientAPI(testutil.Context(t, time.Minute), ziti.Options{URL: u, CAFile: in.Ziti.CAFile, Counter: counter})
	testutil.Must(t, err)
	out := &testutil.SyncBuffer{}
	w := &workload.Workload{Source: src, Ziti: api, Out: out, Deadline: 2 * time.Minute, Where: in.Ziti.URL}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()

	// wait (up to 4 minutes: the agent rotates at half the TTL and syncs every few seconds) for two logins with
	// SVIDs of different serials
	deadline := time.Now().Add(4 * time.Minute)
	var auths []workload.Event
	for {
		auths = auths[:0]
		for _, e := range parse(t, out.String()) {
			if e.Event == workload.EventAuthenticated {
				auths = append(auths, e)
			}
		}
		if len(auths) >= 2 || time.Now().After(deadline) {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("Run ended: %v\n%s", err, out.String())
		case <-time.After(500 * time.Millisecond):
		}
	}
	healthy := w.Status()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Logf("output:\n%s", out.String())
	if len(auths) < 2 {
		t.Fatalf("%d login(s) in 4 minutes; want one per SVID, two at least", len(auths))
	}

	evs := parse(t, out.String())
	if evs[0].Event != workload.EventEnrolled && !(evs[0].Event == workload.EventFailed && evs[1].Event == workload.EventEnrolled) {
		t.Errorf("the first event is %+v; want the enrolment", evs[0])
	}
	enrolments := 0
	for _, e := range evs {
		if e.Event == workload.EventEnrolled {
			enrolments++
		}
	}
	if enrolments != 1 {
		t.Errorf("%d enrolments; want exactly one (later SVIDs log in as the same identity)", enrolments)
	}

	// the identity in OpenZiti: externalId = the SPIFFE ID, the CA's role attributes, named by the CA's format
	ids, err := admin.ListIdentities(testutil.Context(t, time.Minute), ziti.FilterEq("externalId", id.String()))
	if err != nil || len(ids) != 1 {
		t.Fatalf("identities with externalId %s: %+v, %v; want one", id, ids, err)
	}
	ident := ids[0]
	if want := caName + "-" + workload.DefaultName(id.String()); ident.Name != want || !ziti.EqualSets(ident.RoleAttributes, roles) || ident.IsAdmin {
		t.Errorf("identity %+v; want name %s, roles %v", ident, want, roles)
	}
	serials := map[string]bool{}
	sessions := map[string]bool{}
	for _, a := range auths {
		if a.SpiffeID != id.String() || a.ExternalID != id.String() || a.IdentityID != ident.ID || a.IdentityName != ident.Name ||
			!ziti.EqualSets(a.RoleAttributes, roles) || a.Serial == "" || a.NotAfter == nil {
			t.Errorf("login event %+v; want identity %s (%s) with roles %v", a, ident.ID, ident.Name, roles)
		}
		serials[a.Serial], sessions[a.SessionID] = true, true
	}
	if len(serials) != len(auths) || len(sessions) != len(auths) {
		t.Errorf("%d logins with %d serial(s) and %d session(s); want a new SVID and a new session for each", len(auths), len(serials), len(sessions))
	}
	if healthy.Logins < 2 || healthy.AuthenticatedSerial == "" || healthy.IdentityID != ident.ID {
		t.Errorf("status after the logins: %+v", healthy)
	}
	// writes: the one enrolment, and a logout after each login (logins and reads are not writes)
	_, writes := counter.Snapshot()
	enrols, logouts := 0, 0
	for _, w := range writes {
		switch {
		case strings.HasSuffix(w, "POST /edge/client/v1/enroll"):
			enrols++
		case strings.HasSuffix(w, "DELETE /edge/client/v1/current-api-session"):
			logouts++
		default:
			t.Errorf("unexpected write %s", w)
		}
	}
	if enrols != 1 || logouts != len(auths) {
		t.Errorf("writes %v; want 1 enrolment and %d logouts", writes, len(auths))
	}
}

// A workload that no entry selects gets no SVID: Open waits until its deadline and names the agent's answer.
func TestOpenWithoutAnEntryTimesOutNamingTheAgent(t *testing.T) {
	in := testbed.Require(t, "spire")
	want := "spiffe://" + in.Spire.TrustDomain + "/nobody-" + testutil.RandHex(t, 3)
	_, err := spireagent.Open(testutil.Context(t, time.Minute), spireagent.Options{Socket: agenttest.Socket(t),
		Want: spiffeid.RequireFromString(want), Deadline: 5 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "SPIRE agent Workload API") || !strings.Contains(err.Error(), in.Spire.AgentSocket) {
		t.Fatalf("Open = %v; want an unreachable error naming the agent's socket", err)
	}
	t.Logf("Open: %v", err)
}

func parse(t *testing.T, s string) []workload.Event {
	t.Helper()
	var out []workload.Event
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		if line == "" {
			continue
		}
		var e workload.Event
		testutil.Must(t, json.Unmarshal([]byte(line), &e))
		out = append(out, e)
	}
	return out
}

// raced is the real client API, except that its first login is refused as if no identity existed yet: the
// workload then enrols while another replica of it has enrolled already.
type raced struct {
	ziti.ClientAPI
	refused bool
}

func (r *raced) AuthenticateCert(ctx context.Context, cert tls.Certificate) (ziti.Session, error) {
	if !r.refused {
		r.refused = true
		return ziti.Session{}, &ziti.APIError{Status: 401, Code: "INVALID_AUTH", Message: "injected"}
	}
	return r.ClientAPI.AuthenticateCert(ctx, cert)
}

// Two replicas of a workload (one SPIFFE ID) enrol at once: the controller refuses the second enrolment as a
// duplicate, which the workload counts as enrolled; it logs in as the one identity.
func TestEnrolmentRaceWithAnotherReplica(t *testing.T) {
	in := testbed.Require(t, "ziti")
	admin := bedziti.Admin(t)
	_, roles, id := bedziti.SpireWorkload(t, admin, "workloads/zbt-race-"+testutil.RandHex(t, 3), 0)
	src := agenttest.Source(t, id)
	svid, err := src.GetX509SVID()
	testutil.Must(t, err)
	api := admin.ClientAPI()
	testutil.Must(t, api.EnrollWithCA(testutil.Context(t, time.Minute), spireagent.Certificate(svid), "other-replica")) // the other replica

	out := &testutil.SyncBuffer{}
	w := &workload.Workload{Source: src, Ziti: &raced{ClientAPI: api}, Out: out, Deadline: time.Minute, Where: in.Ziti.URL}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	deadline := time.Now().Add(2 * time.Minute)
	for !w.Status().Healthy && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	testutil.Must(t, <-done)
	t.Logf("output:\n%s", out)
	evs := parse(t, out.String())
	if len(evs) != 1 || evs[0].Event != workload.EventAuthenticated || evs[0].ExternalID != id.String() || !ziti.EqualSets(evs[0].RoleAttributes, roles) {
		t.Fatalf("events %+v; want one login (the refused enrolment is not a failure)", evs)
	}
	ids, err := admin.ListIdentities(testutil.Context(t, time.Minute), ziti.FilterEq("externalId", id.String()))
	if err != nil || len(ids) != 1 || ids[0].ID != evs[0].IdentityID {
		t.Errorf("identities %+v, %v; want the one the other replica enrolled", ids, err)
	}
}
