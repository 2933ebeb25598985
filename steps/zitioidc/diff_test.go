package zitioidc

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

// The diff is a pure function of the settings and what was observed: these tests need no controller.

func settings(t *testing.T, s Settings) Settings {
	t.Helper()
	s, err := withDefaults(s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDiffOfEmptyControllerCreatesAndReferencesIDsUnknownYet(t *testing.T) {
	set := settings(t, Settings{AttachIdentities: []string{"alice"}})
	o := observed{src: source().s, identities: []ziti.Identity{{ID: "a", Name: "alice", AuthPolicyID: "default", ExternalID: "alice@x.test"}}}
	ops, notes, err := diff(set, o)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"create ziti-ext-jwt-signer keycloak: missing",
		"create ziti-auth-policy keycloak-users: missing",
		"update ziti-identity alice (fields: [authPolicyId]): uses auth policy default",
	}
	changes := steps.Changes(ops)
	if got := opStrings(ops); !slices.Equal(got, want) {
		t.Fatalf("changes %q", got)
	}
	if d := changes[2].Diff; !slices.Equal(d, steps.Diff{{Field: FieldIdentityAuthPolicyID, Before: "default", After: steps.Unknown}}) {
		t.Errorf("identity diff %+v", d)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "accepts tokens of http://kc.test/realms/openziti") {
		t.Errorf("notes %q", notes)
	}
}

func TestDiffOfConvergedControllerIsEmpty(t *testing.T) {
	set := settings(t, Settings{AttachIdentities: []string{"alice"}})
	src := source().s
	sg := wantSigner(set.SignerName, src, set.Scopes, map[string]any{"team": "blue"})
	sg.ID = "sid"
	ap := wantPolicy(set.AuthPolicyName, "sid", nil)
	ap.ID = "pid"
	o := observed{src: src, signers: []ziti.ExtJWTSigner{sg}, policies: []ziti.AuthPolicy{ap},
		identities: []ziti.Identity{{ID: "a", Name: "alice", AuthPolicyID: "pid", ExternalID: "alice@x.test"}}}
	if ops, _, err := diff(set, o); err != nil || len(ops) != 0 {
		t.Fatalf("converged: %q, %v", opStrings(ops), err)
	}
}

func TestDiffCarriesBeforeAndAfter(t *testing.T) {
	set := settings(t, Settings{})
	src := source().s
	sg := wantSigner(set.SignerName, src, set.Scopes, nil)
	sg.ID, sg.JWKSEndpoint, sg.TargetToken = "sid", "http://old.test/certs", ""
	ap := wantPolicy(set.AuthPolicyName, "other", nil)
	ap.ID, ap.PrimaryCertAllowed = "pid", true
	ops, _, err := diff(set, observed{src: src, signers: []ziti.ExtJWTSigner{sg}, policies: []ziti.AuthPolicy{ap}})
	if err != nil {
		t.Fatal(err)
	}
	changes := steps.Changes(ops)
	if len(changes) != 2 {
		t.Fatalf("changes %q", opStrings(ops))
	}
	// "" is ACCESS for the controller: not a difference.
	if d := changes[0].Diff; !slices.Equal(d, steps.Diff{{Field: FieldJWKSEndpoint, Before: "http://old.test/certs", After: src.JWKSEndpoint}}) {
		t.Errorf("signer diff %+v", d)
	}
	js, _ := json.Marshal(changes[1])
	for _, w := range []string{`{"field":"primary.cert.allowed","before":true,"after":false}`, `{"field":"primary.extJwt.allowedSigners","before":["other"],"after":["sid"]}`} {
		if !strings.Contains(string(js), w) {
			t.Errorf("policy change %s lacks %s", js, w)
		}
	}
}

func TestDiffRefusesOthersObjectsAtOnce(t *testing.T) {
	set := settings(t, Settings{AttachIdentities: []string{"ghost", "admin"}})
	src := source().s
	o := observed{src: src,
		signers:    []ziti.ExtJWTSigner{{ID: "s1", Name: "keycloak"}, {ID: "s2", Name: "other", Issuer: src.Issuer}},
		policies:   []ziti.AuthPolicy{{ID: "p1", Name: "keycloak-users"}},
		identities: []ziti.Identity{{ID: "i", Name: "admin", IsAdmin: true}},
	}
	_, _, err := diff(set, o)
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{`signer "keycloak" (id s1) exists but is not managed`, `signer "other" (id s2) already accepts issuer`,
		`auth policy "keycloak-users" (id p1) exists but is not managed`, `identity "ghost", to be attached`, `identity "admin" is an administrator`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}

func opStrings(ops []op) []string { return changeStrings(&steps.Plan{Changes: steps.Changes(ops)}) }
