package keycloakrealm_test

import (
	"context"
	"encoding/json"
	"fmt"
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
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/keycloakrealm"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/reach"
)

// run runs keycloak/reachable and keycloak/realm as a fresh process would: a new client and a new counter.
func run(t *testing.T, d keycloakrealm.Declaration, mode steps.Mode) (steps.Result, *steps.Report, *keycloakrealm.Step) {
	t.Helper()
	counter := calls.New()
	return runWith(t, keycloaktest.Dial(t, counter), counter, d, mode)
}

// runWith is run with a given client and its counter.
func runWith(t *testing.T, kc *keycloak.Client, counter *calls.Counter, d keycloakrealm.Declaration, mode steps.Mode) (steps.Result, *steps.Report, *keycloakrealm.Step) {
	return runAfterPlan(t, kc, counter, d, mode, nil)
}

// runAfterPlan is runWith, calling then (when set) once the step has planned, before its plan is applied.
func runAfterPlan(t *testing.T, kc *keycloak.Client, counter *calls.Counter, d keycloakrealm.Declaration, mode steps.Mode, then func()) (steps.Result, *steps.Report, *keycloakrealm.Step) {
	t.Helper()
	st, err := keycloakrealm.New(kc, d)
	testutil.Must(t, err)
	var step steps.Step = st
	if then != nil {
		step = testutil.AfterPlan(st, then)
	}
	probe := reach.New(keycloakrealm.Reachable, "Keycloak", kc.URL(), time.Minute, nil, keycloaktest.Probe(kc))
	rep, err := (&steps.Runner{Steps: []steps.Step{step, probe}, Counter: counter}).Run(context.Background(), mode)
	testutil.Must(t, err)
	return testutil.StepResult(t, rep, keycloakrealm.Name), rep, st
}

func changeStrings(r steps.Result) []string { return testutil.ChangeStrings(r.Changes) }

func hasChange(r steps.Result, prefix string) bool {
	return slices.ContainsFunc(changeStrings(r), func(s string) bool { return strings.HasPrefix(s, prefix) })
}

// TestEmailClaim: the default declaration (identity claim email) with a public client that allows the password
// grant for the test, and one dev user.
func TestEmailClaim(t *testing.T) {
	realm := keycloaktest.RealmName(t, "email")
	d := keycloakrealm.Declaration{
		Realm:       realm,
		DisplayName: "OpenZiti test",
		Public:      keycloakrealm.PublicClient{DirectAccessGrants: true},
		DevUsers:    []keycloakrealm.DevUser{{Username: "alice", Password: config.NewSecret("Al1ce-pw"), Email: "Alice@Example.test"}},
	}
	r, _, st := run(t, d, steps.Apply)
	testutil.MustStatus(t, r, steps.Changed)
	for _, want := range []string{
		"create keycloak-realm " + realm,
		"create keycloak-user-profile-attribute " + realm + "/email",
		"create keycloak-client " + realm + "/openziti",
		"create keycloak-protocol-mapper " + realm + "/openziti/ziti-bootstrap-audience",
		"create keycloak-protocol-mapper " + realm + "/openziti/ziti-bootstrap-identity-claim",
		"create keycloak-user " + realm + "/alice",
	} {
		if !hasChange(r, want) {
			t.Errorf("first apply lacks %q: %v", want, changeStrings(r))
		}
	}
	if r.MutatingCalls != 3 {
		t.Errorf("first apply made %d mutating calls, want 3 (the realm with its client and the client's 2 mappers, e-mail editable by administrators only, user)", r.MutatingCalls)
	}

	kc := keycloaktest.Connect(t, nil)
	ctx := context.Background()
	tok, err := kc.Token(ctx, realm, "openziti", "", "alice", "Al1ce-pw")
	testutil.Must(t, err)
	claims, kid := testutil.DecodeJWT(t, tok)
	signer, err := st.ZitiSigner(ctx)
	testutil.Must(t, err)
	t.Logf("Ziti signer: %+v", signer)
	if claims["email"] != "alice@example.test" || !testutil.HasAudience(claims["aud"], "openziti") {
		t.Fatalf("token claims %v: want email alice@example.test and audience openziti", claims)
	}
	// The two sides cannot drift: what Ziti is told is what the tokens carry.
	if claims["iss"] != signer.Issuer || claims[signer.ClaimsProperty] != "alice@example.test" || !testutil.HasAudience(claims["aud"], signer.Audience) ||
		claims["azp"] != signer.ClientID || signer.ExternalAuthURL != signer.Issuer || !signer.UseExternalID {
		t.Fatalf("signer %+v does not match token claims %v", signer, claims)
	}
	if !jwksHasKid(t, signer.JWKSEndpoint, kid) {
		t.Fatalf("token key %s not published at %s", kid, signer.JWKSEndpoint)
	}

	// The public client serves the device authorization grant.
	resp, err := http.PostForm(signer.Issuer+"/protocol/openid-connect/auth/device", url.Values{"client_id": {"openziti"}})
	testutil.Must(t, err)
	var dev struct {
		DeviceCode      string `json:"device_code"`
		VerificationURI string `json:"verification_uri"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&dev)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || dev.DeviceCode == "" || dev.VerificationURI == "" {
		t.Fatalf("device authorization: %s %+v", resp.Status, dev)
	}
	// Converged: a second apply plans nothing and writes nothing.
	r, rep, _ := run(t, d, steps.Apply)
	testutil.MustStatus(t, r, steps.Unchanged)
	if rep.MutatingCalls != 0 || !rep.Converged() {
		t.Fatalf("second apply: %d mutating calls %v", rep.MutatingCalls, rep.Writes)
	}
}

// TestAttributeClaimAndConfidentialClient: identity claim from the user attribute ziti_id, a confidential client
// with its own secret, and drift repaired field by field.
func TestAttributeClaimAndConfidentialClient(t *testing.T) {
	realm := keycloaktest.RealmName(t, "attr")
	secret := config.NewSecret("svc-S3cret")
	d := keycloakrealm.Declaration{
		Realm:               realm,
		AccessTokenLifespan: 10 * time.Minute,
		Audience:            "ziti-test-aud",
		IdentityClaim:       "ziti_id",
		Public:              keycloakrealm.PublicClient{ClientID: "ziti-tunnelers", RequirePKCE: true},
		Confidential:        &keycloakrealm.ConfidentialClient{ClientID: "ziti-svc", Secret: secret, DirectAccessGrants: true},
		DevUsers:            []keycloakrealm.DevUser{{Username: "bob", Email: "bob@example.test", Password: config.NewSecret("B0b-pw"), Attributes: map[string]string{"ziti_id": "bob-ziti-1"}}},
	}
	r, _, st := run(t, d, steps.Apply)
	testutil.MustStatus(t, r, steps.Changed)
	if !hasChange(r, "create keycloak-user-profile-attribute "+realm+"/ziti_id") {
		t.Fatalf("no user-profile attribute planned: %v", changeStrings(r))
	}
	kc := keycloaktest.Connect(t, nil)
	ctx := context.Background()
	tok, err := kc.Token(ctx, realm, "ziti-svc", secret.Value(), "bob", "B0b-pw")
	testutil.Must(t, err)
	claims, _ := testutil.DecodeJWT(t, tok)
	if claims["ziti_id"] != "bob-ziti-1" || !testutil.HasAudience(claims["aud"], "ziti-test-aud") {
		t.Fatalf("token claims %v: want ziti_id bob-ziti-1 and audience ziti-test-aud", claims)
	}
	if exp, iat := claims["exp"].(float64), claims["iat"].(float64); exp-iat != 600 {
		t.Fatalf("token lifetime %v s, want 600", exp-iat)
	}
	signer, err := st.ZitiSigner(ctx)
	if err != nil || signer.ClaimsProperty != "ziti_id" || signer.ClientID != "ziti-tunnelers" || signer.Audience != "ziti-test-aud" {
		t.Fatalf("signer %+v %v", signer, err)
	}
	// PKCE is required: on the authorization endpoint, and (Keycloak's choice) on the device endpoint too.
	const challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	authURL := signer.Issuer + "/protocol/openid-connect/auth?response_type=code&scope=openid&client_id=ziti-tunnelers&redirect_uri=" +
		url.QueryEscape(keycloakrealm.DefaultRedirectURIs[0])
	resp, err := noRedirect.Get(authURL)
	testutil.Must(t, err)
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); !strings.Contains(loc, "code_challenge") {
		t.Fatalf("authorization request without PKCE: %s, Location %q; want a redirect with an error about code_challenge", resp.Status, loc)
	}
	resp, err = noRedirect.Get(authURL + "&code_challenge_method=S256&code_challenge=" + challenge)
	testutil.Must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("authorization request with PKCE: %s; want the login page", resp.Status)
	}
	device := signer.Issuer + "/protocol/openid-connect/auth/device"
	resp, err = http.PostForm(device, url.Values{"client_id": {"ziti-tunnelers"}})
	testutil.Must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("device authorization without PKCE: %s; want 400", resp.Status)
	}
	resp, err = http.PostForm(device, url.Values{"client_id": {"ziti-tunnelers"}, "code_challenge_method": {"S256"}, "code_challenge": {challenge}})
	testutil.Must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("device authorization with PKCE: %s; want 200", resp.Status)
	}

	attrs, err := kc.UserProfileAttributes(ctx, realm)
	testutil.Must(t, err)
	if i := slices.IndexFunc(attrs, func(a keycloak.UserProfileAttribute) bool { return a.Name == "ziti_id" }); i < 0 || slices.Contains(attrs[i].EditRoles, "user") {
		t.Fatalf("ziti_id must be declared and not user-editable: %+v", attrs)
	}

	r, rep, _ := run(t, d, steps.Apply)
	testutil.MustStatus(t, r, steps.Unchanged)
	if rep.MutatingCalls != 0 {
		t.Fatalf("second apply: %d mutating calls %v", rep.MutatingCalls, rep.Writes)
	}

	// Drift made by hand: a redirect URI, the audience, the user's attribute and password, a user-editable
	// ziti_id. The plan names each field; apply repairs exactly those.
	pub, err := kc.GetClient(ctx, realm, "ziti-tunnelers")
	testutil.Must(t, err)
	pub.RedirectURIs = append(pub.RedirectURIs, "https://evil.example/*")
	testutil.Must(t, kc.UpdateClient(ctx, realm, *pub, keycloak.ClientRedirectURIs))
	for _, m := range pub.ProtocolMappers {
		if m.Name == keycloakrealm.AudienceMapper {
			m.Config["included.custom.audience"] = "someone-else"
			testutil.Must(t, kc.UpdateProtocolMapper(ctx, realm, pub.ID, m, keycloak.ConfigPrefix+"included.custom.audience"))
		}
	}
	u, err := kc.GetUser(ctx, realm, "bob")
	testutil.Must(t, err)
	u.Attributes["ziti_id"] = []string{"alice-ziti-1"}
	testutil.Must(t, kc.UpdateUser(ctx, realm, *u, keycloak.AttributeField("ziti_id")))
	testutil.Must(t, kc.SetPassword(ctx, realm, u.ID, config.NewSecret("changed-by-hand")))
	testutil.Must(t, kc.PutUserProfileAttribute(ctx, realm, keycloak.UserProfileAttribute{Name: "ziti_id", ViewRoles: []string{"admin", "user"}, EditRoles: []string{"admin", "user"}}))

	r, _, _ = run(t, d, steps.PlanOnly)
	testutil.MustStatus(t, r, steps.Planned)
	want := []string{
		"update keycloak-user-profile-attribute " + realm + "/ziti_id (fields: [permissions.edit])",
		"update keycloak-client " + realm + "/ziti-tunnelers (fields: [redirectUris])",
		"update keycloak-protocol-mapper " + realm + "/ziti-tunnelers/ziti-bootstrap-audience (fields: [config.included.custom.audience])",
		"update keycloak-user " + realm + "/bob (fields: [attributes.ziti_id password])",
	}
	for _, w := range want {
		if !hasChange(r, w) {
			t.Errorf("plan lacks %q: %v", w, changeStrings(r))
		}
	}
	if len(r.Changes) != len(want) {
		t.Errorf("plan has %d changes, want %d: %v", len(r.Changes), len(want), changeStrings(r))
	}
	r, _, _ = run(t, d, steps.Apply)
	testutil.MustStatus(t, r, steps.Changed)
	if r.MutatingCalls != 5 {
		t.Errorf("repair made %d mutating calls, want 5 (profile, client, mapper, user, password)", r.MutatingCalls)
	}
	r, rep, _ = run(t, d, steps.Apply)
	testutil.MustStatus(t, r, steps.Unchanged)
	if rep.MutatingCalls != 0 {
		t.Fatalf("after repair: %d mutating calls %v", rep.MutatingCalls, rep.Writes)
	}
	if _, err := kc.Token(ctx, realm, "ziti-svc", secret.Value(), "bob", "B0b-pw"); err != nil {
		t.Fatalf("declared password not restored: %v", err)
	}
}

// TestExistingRealmAdopted: a realm made by hand with other settings is shown as an update naming the fields,
// then converges.
func TestExistingRealmAdopted(t *testing.T) {
	realm := keycloaktest.RealmName(t, "adopt")
	kc := keycloaktest.Connect(t, nil)
	ctx := context.Background()
	testutil.Must(t, kc.CreateRealm(ctx, keycloak.Realm{Name: realm, Enabled: true, DisplayName: "Made by hand", AccessTokenLifespan: time.Minute, DuplicateEmailsAllowed: true,
		Attributes: map[string]string{"mine": "keep"}}))
	d := keycloakrealm.Declaration{Realm: realm, DisplayName: "OpenZiti", AccessTokenLifespan: 5 * time.Minute}

	r, rep, _ := run(t, d, steps.PlanOnly)
	testutil.MustStatus(t, r, steps.Planned)
	want := fmt.Sprintf("update keycloak-realm %s (fields: [displayName accessTokenLifespan duplicateEmailsAllowed attributes.ziti-bootstrap.managed]): exists, not managed by ziti-bootstrap: adopting it", realm)
	if got := changeStrings(r); len(got) < 1 || got[0] != want {
		t.Fatalf("plan %v; want first %q", got, want)
	}
	if rep.MutatingCalls != 0 {
		t.Fatalf("planning wrote: %v", rep.Writes)
	}
	// The update shows each field as Keycloak has it and as it will be.
	wantDiff := steps.Diff{{Field: "displayName", Before: "Made by hand", After: "OpenZiti"}, {Field: "accessTokenLifespan", Before: "1m0s", After: "5m0s"},
		{Field: "duplicateEmailsAllowed", Before: true, After: false}, {Field: "attributes.ziti-bootstrap.managed", Before: "", After: "true"}}
	if d := r.Changes[0].Diff; !slices.Equal(d, wantDiff) {
		t.Fatalf("diff %+v\nwant %+v", d, wantDiff)
	}

	r, _, _ = run(t, d, steps.Apply)
	testutil.MustStatus(t, r, steps.Changed)
	got, err := kc.GetRealm(ctx, realm)
	testutil.Must(t, err)
	if got.DisplayName != "OpenZiti" || got.AccessTokenLifespan != 5*time.Minute || got.DuplicateEmailsAllowed ||
		got.Attributes[keycloakrealm.ManagedAttribute] != "true" || got.Attributes["mine"] != "keep" {
		t.Fatalf("realm after apply: %+v", got)
	}
	r, rep, _ = run(t, d, steps.Apply)
	testutil.MustStatus(t, r, steps.Unchanged)
	if rep.MutatingCalls != 0 {
		t.Fatalf("second apply: %d mutating calls %v", rep.MutatingCalls, rep.Writes)
	}
}

// TestCreatesCollidingWithAnEarlierRunsCreates: the client and the dev user appear after the plan listed them, as
// the creates of a run killed mid-call that Keycloak finished after its caller was gone: Keycloak answers 409,
// the apply succeeds, the next one converges what differs from the declaration, and the one after writes nothing.
func TestCreatesCollidingWithAnEarlierRunsCreates(t *testing.T) {
	realm := keycloaktest.RealmName(t, "late")
	kc := keycloaktest.Connect(t, nil)
	ctx := context.Background()
	testutil.Must(t, kc.CreateRealm(ctx, keycloak.Realm{Name: realm, Enabled: true}))
	d := keycloakrealm.Declaration{Realm: realm, DevUsers: []keycloakrealm.DevUser{{Username: "dave", Email: "dave@example.test", Password: config.NewSecret("D4ve-pw")}}}
	earlier := func() {
		_, err := kc.CreateClient(ctx, realm, keycloak.OIDCClient{ClientID: "openziti", Enabled: true, Public: true})
		testutil.Must(t, err)
		_, err = kc.CreateUser(ctx, realm, keycloak.User{Username: "dave", Email: "dave@example.test", Enabled: true}, config.Secret{})
		testutil.Must(t, err)
	}
	counter := calls.New()
	r, _, _ := runAfterPlan(t, keycloaktest.Dial(t, counter), counter, d, steps.Apply, earlier)
	testutil.MustStatus(t, r, steps.Changed)
	if !hasChange(r, "create keycloak-client "+realm+"/openziti") || !hasChange(r, "create keycloak-user "+realm+"/dave") {
		t.Fatalf("the apply did not plan the two creates: %v", changeStrings(r))
	}
	r, _, _ = run(t, d, steps.Apply)
	testutil.MustStatus(t, r, steps.Changed)
	t.Logf("the next apply converged what the earlier creates left different: %v", changeStrings(r))
	r, rep, _ := run(t, d, steps.Apply)
	testutil.MustStatus(t, r, steps.Unchanged)
	if rep.MutatingCalls != 0 {
		t.Fatalf("third apply: %d mutating calls %v", rep.MutatingCalls, rep.Writes)
	}
}

// TestOwnership: only what carries ziti-bootstrap's marks is deleted.
func TestOwnership(t *testing.T) {
	realm := keycloaktest.RealmName(t, "own")
	d := keycloakrealm.Declaration{Realm: realm, Confidential: &keycloakrealm.ConfidentialClient{ClientID: "ziti-svc", ServiceAccounts: true}}
	r, _, _ := run(t, d, steps.Apply)
	testutil.MustStatus(t, r, steps.Changed)

	kc := keycloaktest.Connect(t, nil)
	ctx := context.Background()
	// Someone else's client, and someone else's mapper on our client: never touched.
	_, err := kc.CreateClient(ctx, realm, keycloak.OIDCClient{ClientID: "other-app", Enabled: true, Public: true, StandardFlow: true, RedirectURIs: []string{"http://app/*"}})
	testutil.Must(t, err)
	pub, err := kc.GetClient(ctx, realm, "openziti")
	testutil.Must(t, err)
	_, err = kc.CreateProtocolMapper(ctx, realm, pub.ID, keycloak.ProtocolMapper{Name: "their-mapper", Type: "oidc-hardcoded-claim-mapper",
		Config: map[string]string{"claim.name": "team", "claim.value": "blue", "access.token.claim": "true"}})
	testutil.Must(t, err)
	// A stale mapper of ours: deleted.
	_, err = kc.CreateProtocolMapper(ctx, realm, pub.ID, keycloak.ProtocolMapper{Name: keycloakrealm.MapperPrefix + "old", Type: "oidc-hardcoded-claim-mapper",
		Config: map[string]string{"claim.name": "old", "claim.value": "x"}})
	testutil.Must(t, err)

	// The confidential client is no longer declared: it is ours, so it goes.
	d.Confidential = nil
	r, _, _ = run(t, d, steps.PlanOnly)
	want := []string{
		"delete keycloak-protocol-mapper " + realm + "/openziti/ziti-bootstrap-old: managed by ziti-bootstrap, no longer wanted",
		"delete keycloak-client " + realm + "/ziti-svc: managed by ziti-bootstrap, no longer declared",
	}
	if got := changeStrings(r); !slices.Equal(got, want) {
		t.Fatalf("plan %v; want %v", got, want)
	}
	r, _, _ = run(t, d, steps.Apply)
	testutil.MustStatus(t, r, steps.Changed)
	if _, err := kc.GetClient(ctx, realm, "other-app"); err != nil {
		t.Fatalf("someone else's client: %v", err)
	}
	if _, err := kc.GetClient(ctx, realm, "ziti-svc"); !keycloak.IsNotFound(err) {
		t.Fatalf("undeclared managed client: %v", err)
	}
	pub, _ = kc.GetClient(ctx, realm, "openziti")
	var names []string
	for _, m := range pub.ProtocolMappers {
		names = append(names, m.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"their-mapper", keycloakrealm.AudienceMapper, keycloakrealm.ClaimMapper}) {
		t.Fatalf("mappers after prune: %v", names)
	}
}

func TestWrongAdminPasswordFailsTheStepAsInvalidConfig(t *testing.T) {
	opts := keycloaktest.Options(t, nil)
	opts.AdminPassword = config.NewSecret("wrong-" + opts.AdminPassword.Value())
	kc, err := keycloak.Dial(opts)
	testutil.Must(t, err)
	st, err := keycloakrealm.New(kc, keycloakrealm.Declaration{Realm: "zbtest-never-created"})
	testutil.Must(t, err)
	_, err = st.Plan(context.Background())
	if !config.IsInvalid(err) || !strings.Contains(err.Error(), "KEYCLOAK_ADMIN_PASSWORD") || strings.Contains(err.Error(), opts.AdminPassword.Value()) {
		t.Fatalf("got %v; want an invalid configuration naming KEYCLOAK_ADMIN_PASSWORD without the password", err)
	}
}

// jwk is a key of a JSON Web Key Set, with the members the tests look at.
type jwk struct {
	Kid string `json:"kid"`
	Alg string `json:"alg"`
}

// jwks returns the keys of the JSON Web Key Set at url.
func jwks(t *testing.T, url string) []jwk {
	t.Helper()
	resp, err := http.Get(url)
	testutil.Must(t, err)
	defer resp.Body.Close()
	var set struct {
		Keys []jwk `json:"keys"`
	}
	testutil.Must(t, json.NewDecoder(resp.Body).Decode(&set))
	return set.Keys
}

func jwksHasKid(t *testing.T, jwksURL, kid string) bool {
	t.Helper()
	return kid != "" && slices.ContainsFunc(jwks(t, jwksURL), func(k jwk) bool { return k.Kid == kid })
}

// TestServiceAccountCreatesRealm: logged in as the admin service account (client credentials), the step creates a
// realm and goes on writing in it (Keycloak judges a service account by the roles in its token, which must be
// renewed after the create), then finds it converged.
func TestServiceAccountCreatesRealm(t *testing.T) {
	realm := keycloaktest.RealmName(t, "svcacct")
	d := keycloakrealm.Declaration{Realm: realm, DevUsers: []keycloakrealm.DevUser{{Username: "carol", Email: "carol@example.test", Password: config.NewSecret("C4rol-pw")}}}
	for i, want := range []steps.Status{steps.Changed, steps.Unchanged} {
		counter := calls.New()
		kc, err := keycloak.Dial(keycloaktest.ServiceAccountOptions(t, counter))
		testutil.Must(t, err)
		r, rep, _ := runWith(t, kc, counter, d, steps.Apply)
		testutil.MustStatus(t, r, want)
		if writes := map[int]int64{0: 3, 1: 0}[i]; rep.MutatingCalls != writes {
			t.Errorf("apply %d made %d mutating calls, want %d: %v", i+1, rep.MutatingCalls, writes, rep.Writes)
		}
		if m := kc.LoginMethod(); !strings.HasPrefix(m, "client credentials") {
			t.Errorf("apply %d logged in by %s", i+1, m)
		}
	}
	// Made with one RSA key pair (RS256 signing), not Keycloak's default second one for RSA-OAEP encryption.
	keys := jwks(t, keycloaktest.Options(t, nil).URL.String()+"/realms/"+realm+"/protocol/openid-connect/certs")
	if len(keys) != 1 || keys[0].Alg != "RS256" {
		t.Errorf("published keys %+v, want one RS256 key", keys)
	}
}
