package bedziti

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spire/spiretest"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spireagent/agenttest"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/spireca"
)

// BindSpireRoot claims the test bed's SPIRE root (ClaimSpireRootNoApply) and registers it in the test bed's controller as
// a verified CA with auto-enrolment, through the step spire/ziti-ca under a name prefix of the calling test, with
// the default name format and role attributes "spire-workloads" plus one of the test's own. The CA is deleted when
// the test ends. It returns the CA's name and its role attributes.
func BindSpireRoot(t testing.TB, admin *ziti.Client) (caName string, roles []string) {
	t.Helper()
	in := testbed.Require(t, "spire")
	root := ClaimSpireRootNoApply(t, admin)
	keyPEM, err := os.ReadFile(in.Spire.UpstreamKey)
	testutil.Must(t, err)
	keys, err := spireca.ParseKeys(string(keyPEM))
	testutil.Must(t, err)
	prefix := "t-ca-" + testutil.RandHex(t, 3)
	roles = []string{"spire-workloads", "zbt-" + testutil.RandHex(t, 3)}
	sc, _ := spiretest.Connect(t, nil)
	step := spireca.New(sc, admin, spireca.Settings{NamePrefix: prefix, Roles: roles, NameFormat: spireca.DefaultNameFormat,
		TrustDomain: in.Spire.TrustDomain, Keys: keys})
	ctx := testutil.Context(t, 2*time.Minute)
	plan, err := step.Plan(ctx)
	testutil.Must(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cas, _ := admin.ListCAs(ctx, "")
		for _, ca := range cas {
			if spireca.Owned(prefix, ca) {
				if err := admin.DeleteCA(ctx, ca.ID); err != nil && !ziti.IsNotFound(err) {
					t.Errorf("cleanup: delete CA %s: %v", ca.Name, err)
				}
			}
		}
	})
	testutil.Must(t, plan.Apply(ctx))
	return spireca.CAName(prefix, root), roles
}

// SpireWorkload makes this test process a workload that can enrol in the test bed's controller through SPIRE:
// BindSpireRoot, then an entry for spiffe://TD/path served by the test bed's agent (agenttest.Register, SVIDs of
// ttl; 0: the server's default). The identity the workload enrols as is deleted when the test ends. It returns
// the CA's name and role attributes, and the workload's SPIFFE ID.
func SpireWorkload(t testing.TB, admin *ziti.Client, path string, ttl time.Duration) (caName string, roles []string, id spiffeid.ID) {
	t.Helper()
	caName, roles = BindSpireRoot(t, admin)
	id = agenttest.Register(t, path, ttl)
	DeleteIdentityAtEnd(t, admin, id.String())
	return caName, roles, id
}

// DeleteIdentityAtEnd deletes, when the test ends, the identities whose externalId is externalID (a workload the
// test enrolled through the SPIRE CA).
func DeleteIdentityAtEnd(t testing.TB, admin *ziti.Client, externalID string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		ids, err := admin.ListIdentities(ctx, ziti.FilterEq("externalId", externalID))
		if err != nil {
			t.Errorf("cleanup: %v", err)
		}
		for _, i := range ids {
			if err := admin.DeleteIdentity(ctx, i.ID); err != nil && !ziti.IsNotFound(err) {
				t.Errorf("cleanup: delete identity %s: %v", i.Name, err)
			}
		}
	})
}
