package spireca_test

import (
	"encoding/hex"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

// A real rotation of SPIRE's X.509 signing authority (spire-server localauthority x509 prepare + activate): SVIDs
// are then signed by a new intermediate under the same upstream root, so a fresh SVID still enrols and logs in as
// the same identity, and a re-run of the step writes nothing.
func TestRealSPIREAuthorityRotation(t *testing.T) {
	b := newBed(t)
	_, key, _ := b.realRoot()
	_, id, before, ident := b.boundAndEnrolled(key, "rot-")

	spire := func(args ...string) map[string]map[string]string {
		return testbed.X509Authority(t, b.in.Spire, args...)
	}
	spire("prepare")
	next := spire("show")["prepared"]["authority_id"]
	if next == "" {
		t.Fatal("no prepared X.509 authority after prepare")
	}
	spire("activate", "-authorityID", next)

	after := b.mint(id)
	if got := hex.EncodeToString(after.Leaf.AuthorityKeyId); got != next {
		t.Fatalf("a new SVID is signed by authority %s; want the activated %s", got, next)
	}
	if hex.EncodeToString(before.Leaf.AuthorityKeyId) == next {
		t.Fatal("the first SVID was already signed by the new authority: no rotation happened")
	}
	if rep, res := b.run(steps.Apply, nil, b.settings(key)); res.Status != steps.Unchanged || rep.MutatingCalls != 0 {
		t.Errorf("after the rotation: %s with %d writes %v; want unchanged, 0 writes", res.Status, rep.MutatingCalls, rep.Writes)
	}
	s, err := b.admin.ClientAPI().AuthenticateCert(ctxFor(t), after)
	if err != nil || s.IdentityID != ident.ID {
		t.Fatalf("login with an SVID of the new authority: %+v, %v; want identity %s", s, err, ident.ID)
	}
}
