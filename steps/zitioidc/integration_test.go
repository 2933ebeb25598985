package zitioidc_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/keycloak"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/keycloak/keycloaktest"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/bedziti"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/keycloakrealm"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/reach"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/zitioidc"
)

const password = "Al1ce-pw"

// env is one test's share of the test bed: its own realm, signer and policy names, and a user e-mail unique on
// the controller (externalIds are unique there).
type env struct {
	t     *testing.T
	sfx   string
	realm string
	email string
	zOpts ziti.Options
	admin *ziti.Client     // setup and checks, counted nowhere
	kc    *keycloak.Client // tokens, counted nowhere
	set   zitioidc.Settings
	kcURL *url.URL // where run reaches Keycloak; nil: the test bed's URL
	// afterPlan, when set, runs once ziti/oidc has planned, before its plan is applied
	afterPlan func()
}

func newEnv(t *testing.T, prefix string) *env {
	t.Helper()
	sfx := testutil.RandHex(t, 4)
	e := &env{
		t:     t,
		sfx:   sfx,
		realm: keycloaktest.RealmName(t, prefix),
		email: "alice-" + sfx + "@zb.test",
		zOpts: bedziti.Options(t, nil),
		kc:    keycloaktest.Connect(t, nil),
		set: zitioidc.Settings{
			SignerName:     "zbtest-" + prefix + "-" + sfx,
			AuthPolicyName: "zbtest-" + prefix + "-" + sfx,
		},
	}
	var err error
	e.admin, err = ziti.New(ctx(t), e.zOpts)
	testutil.Must(t, err)
	// Registered before anything is created, so it runs after the identities' cleanups: the policy cannot go
	// while identities use it, nor the signer while the policy names it.
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		deleteNamed(t, c, e.set.AuthPolicyName, e.admin.ListAuthPolicies, func(p ziti.AuthPolicy) string { return p.ID }, e.admin.DeleteAuthPolicy)
		deleteNamed(t, c, e.set.SignerName, e.admin.ListExtJWTSigners, func(s ziti.ExtJWTSigner) string { return s.ID }, e.admin.DeleteExtJWTSigner)
	})
	return e
}

// deleteNamed deletes every object named name that list finds (id gives its id), reporting what fails.
func deleteNamed[T any](t *testing.T, ctx context.Context, name string, list func(context.Context, string) ([]T, error),
	id func(T) string, del func(context.Context, string) error) {
	t.Helper()
	found, err := list(ctx, ziti.FilterEq("name", name))
	if err != nil {
		t.Errorf("cleanup: %v", err)
	}
	for _, o := range found {
		if err := del(ctx, id(o)); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
}

// decl is a realm with the public client allowing the password grant (for the test) and one dev user.
func (e *env) decl() keycloakrealm.Declaration {
	return keycloakrealm.Declaration{
		Realm:    e.realm,
		Public:   keycloakrealm.PublicClient{DirectAccessGrants: true},
		DevUsers: []keycloakrealm.DevUser{{Username: "alice", Password: config.NewSecret(password), Email: e.email}},
	}
}

// identity creates an identity whose externalId is the user's e-mail, on the default auth policy.
// attachedIdentity is identity, named in the settings' AttachIdentities.
func (e *env) attachedIdentity() ziti.Identity {
	e.t.Helper()
	in := e.identity()
	e.set.AttachIdentities = []string{in.Name}
	return in
}

func (e *env) identity() ziti.Identity {
	e.t.Helper()
	in := ziti.Identity{Name: "zbtest-alice-" + e.sfx, ExternalID: e.email}
	id, err := e.admin.CreateIdentity(ctx(e.t), in)
	testutil.Must(e.t, err)
	e.t.Cleanup(func() {
		if err := e.admin.DeleteIdentity(context.Background(), id); err != nil {
			e.t.Errorf("cleanup: %v", err)
		}
	})
	in.ID = id
	return in
}

type runResult struct {
	realm, oidc steps.Result
	rep         *steps.Report
	realmStep   *keycloakrealm.Step
}

// run runs the two reachable steps, keycloak/realm and ziti/oidc as a fresh process would: new clients sharing
// one new counter.
func (e *env) run(d keycloakrealm.Declaration, mode steps.Mode) runResult {
	t := e.t
	t.Helper()
	counter := calls.New()
	zOpts := e.zOpts
	zOpts.Counter = counter
	kcOpts := keycloaktest.Options(t, counter)
	if e.kcURL != nil {
		kcOpts.URL = e.kcURL
	}
	kc, err := keycloak.Dial(kcOpts)
	testutil.Must(t, err)
	z, err := ziti.New(ctx(t), zOpts)
	testutil.Must(t, err)
	rs, err := keycloakrealm.New(kc, d)
	testutil.Must(t, err)
	var oidc steps.Step
	oidc, err = zitioidc.New(rs, z, e.set)
	testutil.Must(t, err)
	if e.afterPlan != nil {
		oidc = testutil.AfterPlan(oidc, e.afterPlan)
	}
	kcReach := reach.New(keycloakrealm.Reachable, "Keycloak", kc.URL(), time.Minute, nil, keycloaktest.Probe(kc))
	zReach := reach.New(zitioidc.ZitiReachable, "OpenZiti controller", z.URL().String(), time.Minute, nil, z.Ping)
	start := time.Now()
	rep, err := (&steps.Runner{Steps: []steps.Step{oidc, zReach, rs, kcReach}, Counter: counter}).Run(ctx(t), mode)
	testutil.Must(t, err)
	out := runResult{rep: rep, realmStep: rs, realm: testutil.StepResult(t, rep, keycloakrealm.Name), oidc: testutil.StepResult(t, rep, zitioidc.Name)}
	t.Logf("run: %v, writes per system %v", time.Since(start).Round(time.Millisecond), rep.CallsBySystem)
	return out
}

func (e *env) token(realm, clientID string) string {
	e.t.Helper()
	tok, err := e.kc.Token(ctx(e.t), realm, clientID, "", "alice", password)
	testutil.Must(e.t, err)
	return tok
}

// login logs in with fresh tokens from newToken until the controller accepts one (it loads a created or
// updated signer asynchronously) or 10 s have passed; it returns the session and the token that worked.
func login(t *testing.T, api ziti.ClientAPI, newToken func() string) (ziti.Session, string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for attempt := 1; ; attempt++ {
		tok := newToken()
		sess, err := api.AuthenticateJWT(ctx(t), tok)
		if err == nil {
			if attempt > 1 {
				t.Logf("login succeeded at attempt %d", attempt)
			}
			return sess, tok
		}
		if time.Now().After(deadline) {
			t.Fatalf("login with a Keycloak token: %v (claims %v)", err, testutil.Claims(t, tok))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// refused checks that the controller refuses tok as an invalid login (401), not for some other reason.
func refused(t *testing.T, api ziti.ClientAPI, what, tok string) {
	t.Helper()
	sess, err := api.AuthenticateJWT(ctx(t), tok)
	var ae *ziti.APIError
	switch {
	case err == nil:
		t.Errorf("%s: logged in as %s", what, sess.IdentityName)
	case !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized:
		t.Errorf("%s: %v; want a refused login (HTTP 401)", what, err)
	default:
		t.Logf("%s: refused: %v", what, err)
	}
}

func changeStrings(r steps.Result) []string { return testutil.ChangeStrings(r.Changes) }

// TestAuthPolicyCreatedSinceThePlanIsTakenOver: an earlier run's create of the auth policy, killed while in
// flight, lands after this run's plan listed the policies: the create takes that policy over (it carries the
// owner tag) and sets it as planned, the user logs in, and the next apply writes nothing.
func TestAuthPolicyCreatedSinceThePlanIsTakenOver(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "oidc-late")
	in := e.attachedIdentity()
	e.afterPlan = func() {
		_, err := e.admin.CreateAuthPolicy(ctx(t), ziti.AuthPolicy{Name: e.set.AuthPolicyName, Tags: map[string]any{zitioidc.OwnerTag: zitioidc.OwnerValue}})
		testutil.Must(t, err)
	}
	r := e.run(e.decl(), steps.Apply)
	testutil.MustStatus(t, r.oidc, steps.Changed)
	e.afterPlan = nil
	sess, _ := login(t, e.admin.ClientAPI(), func() string { return e.token(e.realm, "openziti") })
	if sess.IdentityID != in.ID {
		t.Fatalf("logged in as %s, want %s", sess.IdentityName, in.Name)
	}
	r = e.run(e.decl(), steps.Apply)
	if r.rep.MutatingCalls != 0 {
		t.Fatalf("apply after taking the policy over: %d mutating calls %v", r.rep.MutatingCalls, r.rep.Writes)
	}
}

// TestLoginEndToEnd: both steps applied from scratch, an existing identity attached by name, a Keycloak token
// logs in as that identity, and a second apply writes nothing on either system.
func TestLoginEndToEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "oidc")
	in := e.attachedIdentity()

	r := e.run(e.decl(), steps.Apply)
	testutil.MustStatus(t, r.realm, steps.Changed)
	testutil.MustStatus(t, r.oidc, steps.Changed)
	want := []string{
		"create ziti-ext-jwt-signer " + e.set.SignerName + ": missing",
		"create ziti-auth-policy " + e.set.AuthPolicyName + ": missing",
		"update ziti-identity " + in.Name + " (fields: [authPolicyId]): uses auth policy default",
	}
	if got := changeStrings(r.oidc); !slices.Equal(got, want) {
		t.Fatalf("ziti/oidc changes %q\nwant %q", got, want)
	}
	if r.oidc.MutatingCalls != 4 {
		t.Errorf("ziti/oidc made %d mutating calls, want 4 (signer create + tag update, policy, identity)", r.oidc.MutatingCalls)
	}

	// What the controller now has is what the realm says.
	c := ctx(t)
	src, err := r.realmStep.ZitiSigner(c)
	testutil.Must(t, err)
	ss, err := e.admin.ListExtJWTSigners(c, ziti.FilterEq("name", e.set.SignerName))
	testutil.Must(t, err)
	ps, err := e.admin.ListAuthPolicies(c, ziti.FilterEq("name", e.set.AuthPolicyName))
	testutil.Must(t, err)
	if len(ss) != 1 || len(ps) != 1 {
		t.Fatalf("signers %+v, policies %+v", ss, ps)
	}
	s, p := ss[0], ps[0]
	if s.Issuer != src.Issuer || s.JWKSEndpoint != src.JWKSEndpoint || s.Audience != "openziti" || s.ClaimsProperty != "email" || !s.UseExternalID ||
		!s.Enabled || s.ClientID != "openziti" || s.ExternalAuthURL != src.Issuer || s.TargetToken != "ACCESS" ||
		!slices.Equal(s.Scopes, []string{"openid"}) || s.Tags[zitioidc.OwnerTag] != zitioidc.OwnerValue {
		t.Errorf("signer %+v, source %+v", s, src)
	}
	if !p.PrimaryExtJWTAllowed || !slices.Equal(p.PrimaryExtJWTAllowedSigners, []string{s.ID}) || p.PrimaryCertAllowed || p.PrimaryUpdbAllowed ||
		p.Tags[zitioidc.OwnerTag] != zitioidc.OwnerValue {
		t.Errorf("policy %+v", p)
	}
	got, err := e.admin.GetIdentity(c, in.ID)
	testutil.Must(t, err)
	if got.AuthPolicyID != p.ID || got.ExternalID != e.email {
		t.Errorf("identity %+v, want auth policy %s", got, p.ID)
	}

	// The login, as a tunneler would do it with the public client's token.
	api := e.admin.ClientAPI()
	t0 := time.Now()
	sess, tok := login(t, api, func() string { return e.token(e.realm, "openziti") })
	t.Logf("logged in as %s (%s) in %v; token claims %v", sess.IdentityName, sess.IdentityID, time.Since(t0).Round(time.Millisecond), testutil.Claims(t, tok))
	if sess.IdentityID != in.ID || sess.IdentityName != in.Name || len(sess.AuthQueries) != 0 {
		t.Fatalf("session %+v; want a full session of identity %s (%s)", sess, in.Name, in.ID)
	}

	// Converged: a second apply plans nothing and writes nothing, on either system.
	r = e.run(e.decl(), steps.Apply)
	testutil.MustStatus(t, r.realm, steps.Unchanged)
	testutil.MustStatus(t, r.oidc, steps.Unchanged)
	if r.rep.MutatingCalls != 0 || r.rep.CallsBySystem[keycloak.System] != 0 || r.rep.CallsBySystem[ziti.System] != 0 || !r.rep.Converged() {
		t.Fatalf("second apply: %d mutating calls %v", r.rep.MutatingCalls, r.rep.Writes)
	}
}

// TestRefusals: with the signer in place and a token that logs in, Ziti refuses a token for another audience, a
// token of another issuer, a forged token, and the good token once it has expired.
func TestRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "refuse")
	in := e.attachedIdentity()
	d := e.decl()
	d.AccessTokenLifespan = 3 * time.Second // keeps the wait for an expired token short
	r := e.run(d, steps.Apply)
	testutil.MustStatus(t, r.oidc, steps.Changed)

	// A second realm on the same Keycloak, same user and e-mail, but no Ziti signer for its issuer.
	other := keycloaktest.RealmName(t, "other")
	d2 := e.decl()
	d2.Realm = other
	rs2, err := keycloakrealm.New(e.kc, d2)
	testutil.Must(t, err)
	p2, err := rs2.Plan(ctx(t))
	testutil.Must(t, err)
	testutil.Must(t, p2.Apply(ctx(t)))

	api := e.admin.ClientAPI()
	sess, good := login(t, api, func() string { return e.token(e.realm, "openziti") })
	if sess.IdentityID != in.ID {
		t.Fatalf("session %+v", sess)
	}
	gc := testutil.Claims(t, good)

	// Another audience: a client of the same realm with the e-mail claim but without the audience mapper, so
	// issuer, key and claim are those of a good token.
	noAud, err := e.kc.CreateClient(ctx(t), e.realm, keycloak.OIDCClient{ClientID: "zbtest-no-aud", Enabled: true, Public: true, DirectAccessGrants: true})
	testutil.Must(t, err)
	_, err = e.kc.CreateProtocolMapper(ctx(t), e.realm, noAud, keycloak.ProtocolMapper{Name: "email", Type: "oidc-usermodel-property-mapper",
		Config: map[string]string{"user.attribute": "email", "claim.name": "email", "jsonType.label": "String", "access.token.claim": "true"}})
	testutil.Must(t, err)
	tok := e.token(e.realm, "zbtest-no-aud")
	if c := testutil.Claims(t, tok); c["iss"] != gc["iss"] || c["email"] != e.email || testutil.HasAudience(c["aud"], "openziti") {
		t.Fatalf("token claims %v: want the same iss and email, no audience openziti", c)
	}
	refused(t, api, "token without the audience", tok)

	// Another issuer.
	tok = e.token(other, "openziti")
	if c := testutil.Claims(t, tok); c["iss"] == gc["iss"] || c["email"] != e.email || !testutil.HasAudience(c["aud"], "openziti") {
		t.Fatalf("other realm's token claims %v", c)
	}
	refused(t, api, "token of another issuer", tok)

	// A forgery: the good token's header (kid) and claims, signed with a key that is not Keycloak's.
	refused(t, api, "forged token with Keycloak's kid and issuer", forge(t, good))

	// Expired: the token that logged in above, once its exp has passed.
	exp := time.Unix(int64(gc["exp"].(float64)), 0)
	if wait := time.Until(exp) + 1100*time.Millisecond; wait > 0 {
		t.Logf("waiting %v for the token to expire", wait.Round(time.Millisecond))
		time.Sleep(wait)
	}
	refused(t, api, "expired token", good)
}

// TestAudienceChange: a new audience in the declaration updates the Keycloak mapper and the Ziti signer in the
// same run; fresh tokens log in, tokens with the old audience no longer do.
func TestAudienceChange(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "aud")
	in := e.attachedIdentity()
	d := e.decl()
	r := e.run(d, steps.Apply)
	testutil.MustStatus(t, r.oidc, steps.Changed)
	api := e.admin.ClientAPI()
	_, old := login(t, api, func() string { return e.token(e.realm, "openziti") })

	oldAudience := cmp.Or(d.Audience, keycloakrealm.DefaultAudience)
	d.Audience = "zbtest-aud-" + e.sfx
	r = e.run(d, steps.PlanOnly)
	testutil.MustStatus(t, r.realm, steps.Planned)
	testutil.MustStatus(t, r.oidc, steps.Planned)
	wantKC := "update keycloak-protocol-mapper " + e.realm + "/openziti/ziti-bootstrap-audience (fields: [config.included.custom.audience]): differs"
	wantZiti := "update ziti-ext-jwt-signer " + e.set.SignerName + " (fields: [audience]): differs"
	if got := changeStrings(r.realm); !slices.Equal(got, []string{wantKC}) {
		t.Errorf("keycloak/realm plan %q, want %q", got, wantKC)
	}
	if got := changeStrings(r.oidc); !slices.Equal(got, []string{wantZiti}) {
		t.Errorf("ziti/oidc plan %q, want %q", got, wantZiti)
	}
	if got := r.oidc.Changes[0].Diff; !slices.Equal(got, steps.Diff{{Field: zitioidc.FieldAudience, Before: oldAudience, After: d.Audience}}) {
		t.Errorf("ziti/oidc diff %+v: want audience %s -> %s as the controller has it", got, oldAudience, d.Audience)
	}
	if r.rep.MutatingCalls != 0 {
		t.Fatalf("planning wrote: %v", r.rep.Writes)
	}

	r = e.run(d, steps.Apply)
	testutil.MustStatus(t, r.realm, steps.Changed)
	testutil.MustStatus(t, r.oidc, steps.Changed)
	if r.rep.CallsBySystem[keycloak.System] != 1 || r.rep.CallsBySystem[ziti.System] != 1 {
		t.Errorf("apply: writes %v, want one on each system", r.rep.Writes)
	}
	sess, fresh := login(t, api, func() string { return e.token(e.realm, "openziti") })
	if c := testutil.Claims(t, fresh); !testutil.HasAudience(c["aud"], d.Audience) || sess.IdentityID != in.ID {
		t.Fatalf("fresh token claims %v, session %+v", c, sess)
	}
	refused(t, api, "token with the old audience", old)

	r = e.run(d, steps.Apply)
	if r.rep.MutatingCalls != 0 || !r.rep.Converged() {
		t.Fatalf("third apply: %d mutating calls %v", r.rep.MutatingCalls, r.rep.Writes)
	}
}

// TestForeignObjects: a signer or policy of the configured name without the ownership tag, or another signer
// for the realm's issuer, fails the plan; nothing is written on Ziti.
func TestForeignObjects(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "foreign")
	c := ctx(t)
	// The controller fetches the JWKS at once: keep it on loopback (nothing listens on port 9).
	foreign := ziti.ExtJWTSigner{Name: e.set.SignerName, Issuer: "https://foreign.zb.test/" + e.sfx, Audience: "theirs",
		JWKSEndpoint: "http://127.0.0.1:9/" + e.sfx + "/certs", Enabled: true}
	sid, err := e.admin.CreateExtJWTSigner(c, foreign)
	testutil.Must(t, err)
	pid, err := e.admin.CreateAuthPolicy(c, ziti.AuthPolicy{Name: e.set.AuthPolicyName, PrimaryCertAllowed: true, PrimaryExtJWTAllowed: true})
	testutil.Must(t, err)

	r := e.run(e.decl(), steps.Apply)
	testutil.MustStatus(t, r.realm, steps.Changed)
	testutil.MustStatus(t, r.oidc, steps.Failed)
	for _, want := range []string{
		`external JWT signer "` + e.set.SignerName + `" (id ` + sid + `) exists but is not managed by ziti-bootstrap (no tag ziti-bootstrap=oidc)`,
		"set ZITI_JWT_SIGNER_NAME to another name, or hand it over by adding that tag",
		`auth policy "` + e.set.AuthPolicyName + `" (id ` + pid + `) exists but is not managed by ziti-bootstrap`,
	} {
		if !strings.Contains(r.oidc.Error, want) {
			t.Errorf("error lacks %q:\n%s", want, r.oidc.Error)
		}
	}
	if r.oidc.MutatingCalls != 0 || r.rep.CallsBySystem[ziti.System] != 0 {
		t.Fatalf("ziti writes %v", r.rep.Writes)
	}
	ss, err := e.admin.ListExtJWTSigners(c, ziti.FilterEq("id", sid))
	testutil.Must(t, err)
	if len(ss) != 1 || ss[0].Issuer != foreign.Issuer || ss[0].Audience != "theirs" || len(ss[0].Tags) != 0 {
		t.Fatalf("foreign signer changed: %+v", ss)
	}

	// Names free, but another signer already accepts the realm's issuer.
	testutil.Must(t, e.admin.DeleteAuthPolicy(c, pid))
	testutil.Must(t, e.admin.DeleteExtJWTSigner(c, sid))
	src, err := r.realmStep.ZitiSigner(c)
	testutil.Must(t, err)
	legacy := ziti.ExtJWTSigner{Name: "zbtest-legacy-" + e.sfx, Issuer: src.Issuer, Audience: src.Audience, JWKSEndpoint: src.JWKSEndpoint, Enabled: true}
	lid, err := e.admin.CreateExtJWTSigner(c, legacy)
	testutil.Must(t, err)
	t.Cleanup(func() { _ = e.admin.DeleteExtJWTSigner(context.Background(), lid) })
	r = e.run(e.decl(), steps.Apply)
	testutil.MustStatus(t, r.oidc, steps.Failed)
	if want := `external JWT signer "` + legacy.Name + `" (id ` + lid + `) already accepts issuer ` + src.Issuer; !strings.Contains(r.oidc.Error, want) {
		t.Errorf("error lacks %q:\n%s", want, r.oidc.Error)
	}
	if r.rep.CallsBySystem[ziti.System] != 0 {
		t.Fatalf("ziti writes %v", r.rep.Writes)
	}

	// Once the conflict is gone, the step converges.
	testutil.Must(t, e.admin.DeleteExtJWTSigner(c, lid))
	r = e.run(e.decl(), steps.Apply)
	testutil.MustStatus(t, r.oidc, steps.Changed)
}

// TestPlanBeforeTheRealmExists: on a fresh system the plan shows the Ziti side with the issuer predicted from
// the Keycloak URL (the realm's discovery document does not exist yet), says so, and writes nothing.
func TestPlanBeforeTheRealmExists(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "fresh")
	r := e.run(e.decl(), steps.PlanOnly)
	testutil.MustStatus(t, r.realm, steps.Planned)
	testutil.MustStatus(t, r.oidc, steps.Planned)
	if !strings.Contains(strings.Join(r.oidc.Notes, "\n"), "predicted") {
		t.Errorf("notes %q do not say the issuer is predicted", r.oidc.Notes)
	}
	creates := 0
	for _, c := range r.oidc.Changes {
		if c.Action == steps.Create {
			creates++
		}
	}
	if creates != 2 {
		t.Errorf("plan %v: want a create of the signer and of the auth policy", r.oidc.Changes)
	}
	if r.rep.MutatingCalls != 0 {
		t.Fatalf("plan wrote: %v", r.rep.Writes)
	}
}

func ctx(t *testing.T) context.Context { return testutil.Context(t, 2*time.Minute) }

// forge re-signs jwt's header and payload with a fresh RSA key (RS256, like Keycloak's).
func forge(t *testing.T, jwt string) string {
	t.Helper()
	parts := strings.Split(jwt, ".")
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	testutil.Must(t, err)
	input := parts[0] + "." + parts[1]
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	testutil.Must(t, err)
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// TestJWKSEndpointIsTheControllersSetting: the signer's JWKS endpoint is where the controller reaches Keycloak
// (KEYCLOAK_JWKS_URL), not where the process that plans reaches it. As in the Swarm (Keycloak's hostname fixes
// the issuer; back-channel URLs such as the JWKS follow the address a request came in on), the bootstrap job
// applies at one address of Keycloak (here localhost) and an operator plans at another (127.0.0.1): the
// operator's plan changes nothing, and logins work with the keys the controller fetches at its own address.
func TestJWKSEndpointIsTheControllersSetting(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "jwks")
	in := e.attachedIdentity()
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

// TestEmailChangeTakesNoIdentity: with the default identity claim (email), a user who sets their own e-mail
// address to the externalId of an identity that is not theirs (one no Keycloak user holds yet) through Keycloak's
// account API is refused, and their next token still logs in as nobody: the realm lets only administrators set
// the claim.
func TestEmailChangeTakesNoIdentity(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "takeover")
	victim := e.identity() // externalId e.email; no Keycloak user has that address
	e.set.AttachIdentities = []string{victim.Name}
	mallory, malloryMail := "mallory", "mallory-"+e.sfx+"@zb.test"
	d := keycloakrealm.Declaration{Realm: e.realm, Public: keycloakrealm.PublicClient{DirectAccessGrants: true},
		DevUsers: []keycloakrealm.DevUser{{Username: mallory, Password: config.NewSecret(password), Email: malloryMail}}}
	r := e.run(d, steps.Apply)
	testutil.MustStatus(t, r.oidc, steps.Changed)

	c := ctx(t)
	tok, err := e.kc.Token(c, e.realm, "openziti", "", mallory, password)
	testutil.Must(t, err)
	// the account console's own call: the user's profile with another e-mail address
	body, _ := json.Marshal(map[string]any{"username": mallory, "email": e.email, "firstName": mallory, "lastName": "Dev"})
	req, err := http.NewRequestWithContext(c, http.MethodPost, e.kc.URL()+"/realms/"+e.realm+"/account/", bytes.NewReader(body))
	testutil.Must(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	testutil.Must(t, err)
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	t.Logf("account API: e-mail change to %s: HTTP %d %s", e.email, resp.StatusCode, answer)

	u, err := e.kc.GetUser(c, e.realm, mallory)
	testutil.Must(t, err)
	if u.Email != malloryMail {
		t.Errorf("mallory changed their e-mail address to %s (account API: HTTP %d %s); want it to stay %s", u.Email, resp.StatusCode, answer, malloryMail)
	}
	tok, err = e.kc.Token(c, e.realm, "openziti", "", mallory, password)
	testutil.Must(t, err)
	if sess, err := e.admin.ClientAPI().AuthenticateJWT(c, tok); err == nil {
		t.Errorf("mallory logged in as %s (%s)", sess.IdentityName, describe(sess))
	}
}

func describe(s ziti.Session) string { return fmt.Sprintf("identity %s", s.IdentityID) }
