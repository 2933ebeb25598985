package zitioidc_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/keycloak"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

// TestJWKSEndpointIsTheControllersSetting: the signer's JWKS endpoint is where the controller reaches Keycloak
// (KEYCLOAK_JWKS_URL), not where the process that plans reaches it. As in the Swarm (Keycloak's hostname fixes
// the issuer; back-channel URLs such as the JWKS follow the address a request came in on), the bootstrap job
// applies at one address of Keycloak (here localhost) and an operator plans at another (127.0.0.1): the
// operator's plan changes nothing, and logins work with the keys the controller fetches at its own address.
func TestJWKSEndpointIsTheControllersSetting(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "jwks")
	in := e.identity()
	e.set.AttachIdentities = []string{in.Name}
	bedURL, err := url.Parse(e.kc.URL())
	testutil.Must(t, err)
	other := *bedURL
	other.Host = strings.Replace(other.Host, "127.0.0.1", "localhost", 1)
	if other.Host == bedURL.Host {
		t.Fatalf("the test bed's Keycloak is not at 127.0.0.1: %s", bedURL)
	}
	jwks := other.String() + "/realms/" + e.realm + "/protocol/openid-connect/certs"
	e.set.JWKSEndpoint = jwks

	// the realm with its frontend URL fixed (KC_HOSTNAME in the stack), then the job's apply at its address
	d := e.decl()
	e.kcURL = &other
	r := e.run(d, steps.Apply)
	testutil.MustStatus(t, r.realm, steps.Changed)
	c := ctx(t)
	testutil.Must(t, e.kc.UpdateRealm(c, keycloak.Realm{Name: e.realm, Attributes: map[string]string{"frontendUrl": bedURL.String()}},
		keycloak.AttributeField("frontendUrl")))
	r = e.run(d, steps.Apply)
	ss, err := e.admin.ListExtJWTSigners(c, ziti.FilterEq("name", e.set.SignerName))
	testutil.Must(t, err)
	if len(ss) != 1 || ss[0].JWKSEndpoint != jwks || !strings.HasPrefix(ss[0].Issuer, bedURL.String()+"/") {
		t.Fatalf("signers %+v; want one with the JWKS endpoint %s and the issuer under %s", ss, jwks, bedURL)
	}

	// the operator's plan, at the other address: nothing to change
	e.kcURL = bedURL
	r = e.run(d, steps.PlanOnly)
	if got := changeStrings(r.oidc); len(got) != 0 || r.oidc.Status != steps.Unchanged {
		t.Errorf("the plan at %s wants %q (%s); want no change to the signer the job configured", bedURL, got, r.oidc.Status)
	}
	// the controller fetches the keys at its own address: a login works
	sess, _ := login(t, e.admin.ClientAPI(), func() string { return e.token(e.realm, "openziti") })
	if sess.IdentityID != in.ID {
		t.Errorf("logged in as %s, want %s", sess.IdentityName, in.Name)
	}
}
