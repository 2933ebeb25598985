package zitioidc

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/keycloakrealm"
)

// fakeZiti is an in-memory controller: it stores what it is given (sorted scopes, as the controller does)
// and counts writes. Its list calls ignore the filter; the step must pick its objects itself.
type fakeZiti struct {
	signers    []ziti.ExtJWTSigner
	policies   []ziti.AuthPolicy
	identities []ziti.Identity
	writes     []string
	next       int
}

func (f *fakeZiti) id() string { f.next++; return fmt.Sprintf("id%d", f.next) }

func (f *fakeZiti) ListExtJWTSigners(context.Context, string) ([]ziti.ExtJWTSigner, error) {
	return slices.Clone(f.signers), nil
}

func (f *fakeZiti) CreateExtJWTSigner(_ context.Context, s ziti.ExtJWTSigner) (string, error) {
	f.writes = append(f.writes, "create signer "+s.Name)
	s.ID, s.Scopes = f.id(), normalizeScopes(s.Scopes)
	s.Tags = maps.Clone(s.Tags)
	f.signers = append(f.signers, s)
	return s.ID, nil
}

func (f *fakeZiti) UpdateExtJWTSigner(_ context.Context, id string, s ziti.ExtJWTSigner) error {
	f.writes = append(f.writes, "update signer "+s.Name)
	s.ID, s.Scopes, s.Tags = id, normalizeScopes(s.Scopes), maps.Clone(s.Tags)
	return replace(f.signers, s, func(x ziti.ExtJWTSigner) bool { return x.ID == id })
}

func (f *fakeZiti) ListAuthPolicies(context.Context, string) ([]ziti.AuthPolicy, error) {
	return slices.Clone(f.policies), nil
}

func (f *fakeZiti) CreateAuthPolicy(_ context.Context, ap ziti.AuthPolicy) (string, error) {
	f.writes = append(f.writes, "create policy "+ap.Name)
	ap.ID, ap.Tags = f.id(), maps.Clone(ap.Tags)
	f.policies = append(f.policies, ap)
	return ap.ID, nil
}

func (f *fakeZiti) UpdateAuthPolicy(_ context.Context, id string, ap ziti.AuthPolicy) error {
	f.writes = append(f.writes, "update policy "+ap.Name)
	ap.ID, ap.Tags = id, maps.Clone(ap.Tags)
	return replace(f.policies, ap, func(x ziti.AuthPolicy) bool { return x.ID == id })
}

func (f *fakeZiti) ListIdentities(context.Context, string) ([]ziti.Identity, error) {
	return slices.Clone(f.identities), nil
}

func (f *fakeZiti) UpdateIdentity(_ context.Context, id string, in ziti.Identity) error {
	f.writes = append(f.writes, "update identity "+in.Name)
	return replace(f.identities, in, func(x ziti.Identity) bool { return x.ID == id })
}

// replace puts v in place of the item of list that matches, like the controller's update by id.
func replace[T any](list []T, v T, match func(T) bool) error {
	i := slices.IndexFunc(list, match)
	if i < 0 {
		return &ziti.APIError{Status: 404, Code: "NOT_FOUND"}
	}
	list[i] = v
	return nil
}

type fakeSource struct {
	s   keycloakrealm.ZitiSigner
	err error
}

func (f *fakeSource) ZitiSigner(context.Context) (keycloakrealm.ZitiSigner, error) { return f.s, f.err }

func source() *fakeSource {
	return &fakeSource{s: keycloakrealm.ZitiSigner{
		Issuer:          "http://kc.test/realms/openziti",
		JWKSEndpoint:    "http://kc.test/realms/openziti/protocol/openid-connect/certs",
		Audience:        "openziti",
		ClientID:        "openziti",
		ClaimsProperty:  "email",
		UseExternalID:   true,
		ExternalAuthURL: "http://kc.test/realms/openziti",
		TargetToken:     "ACCESS",
	}}
}

func newStep(t *testing.T, src SignerSource, z ZitiAPI, s Settings) *Step {
	t.Helper()
	st, err := New(src, z, s)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func plan(t *testing.T, st *Step) *steps.Plan {
	t.Helper()
	p, err := st.Plan(context.Background())
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	return p
}

func changeStrings(p *steps.Plan) []string { return testutil.ChangeStrings(p.Changes) }

// wantPlan fails the test at once unless the changes of p are want.
func wantPlan(t *testing.T, p *steps.Plan, want ...string) {
	t.Helper()
	if got := changeStrings(p); !slices.Equal(got, want) {
		t.Fatalf("plan %q\nwant %q", got, want)
	}
}

func mustApply(t *testing.T, p *steps.Plan) {
	t.Helper()
	if err := p.Apply(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// converged returns a step with src and s on a fake controller it has converged.
func converged(t *testing.T, src SignerSource, s Settings) (*Step, *fakeZiti) {
	t.Helper()
	z := &fakeZiti{}
	st := newStep(t, src, z, s)
	mustApply(t, plan(t, st))
	return st, z
}

// onlyField reports whether fields is exactly field, or empty when field is "".
func onlyField(fields []string, field string) bool {
	if field == "" {
		return len(fields) == 0
	}
	return slices.Equal(fields, []string{field})
}

func TestFreshConvergesAndSecondPlanIsEmpty(t *testing.T) {
	z := &fakeZiti{identities: []ziti.Identity{{ID: "alice-id", Name: "alice", ExternalID: "alice@example.test", AuthPolicyID: "default",
		RoleAttributes: []string{"people"}, Tags: map[string]any{"team": "blue"}}}}
	src := source()
	st := newStep(t, src, z, Settings{AttachIdentities: []string{"alice"}})
	p := plan(t, st)
	wantPlan(t, p,
		"create ziti-ext-jwt-signer keycloak: missing",
		"create ziti-auth-policy keycloak-users: missing",
		"update ziti-identity alice (fields: [authPolicyId]): uses auth policy default",
	)
	if len(z.writes) != 0 {
		t.Fatalf("planning wrote: %v", z.writes)
	}
	mustApply(t, p)
	s := z.signers[0]
	if s.Issuer != src.s.Issuer || s.JWKSEndpoint != src.s.JWKSEndpoint || s.Audience != "openziti" || s.ClaimsProperty != "email" ||
		!s.UseExternalID || !s.Enabled || s.ClientID != "openziti" || s.ExternalAuthURL != src.s.Issuer || s.TargetToken != "ACCESS" ||
		!slices.Equal(s.Scopes, []string{"openid"}) || s.CertPEM != "" || s.Kid != "" || s.Tags[OwnerTag] != OwnerValue {
		t.Errorf("signer %+v", s)
	}
	ap := z.policies[0]
	if !ap.PrimaryExtJWTAllowed || !slices.Equal(ap.PrimaryExtJWTAllowedSigners, []string{s.ID}) || ap.PrimaryCertAllowed || ap.PrimaryUpdbAllowed ||
		ap.SecondaryRequireTOTP || ap.SecondaryRequireExtJWTSigner != "" || ap.Tags[OwnerTag] != OwnerValue {
		t.Errorf("policy %+v", ap)
	}
	in := z.identities[0]
	if in.AuthPolicyID != ap.ID || in.ExternalID != "alice@example.test" || !slices.Equal(in.RoleAttributes, []string{"people"}) || in.Tags["team"] != "blue" {
		t.Errorf("identity %+v: only authPolicyId may change", in)
	}

	z.writes = nil
	p = plan(t, st)
	if !p.Empty() {
		t.Fatalf("second plan: %q", changeStrings(p))
	}
	if err := p.Apply(context.Background()); err != nil || len(z.writes) != 0 {
		t.Fatalf("second apply: %v, writes %v", err, z.writes)
	}
}

func TestDriftListsFieldsAndKeepsOtherTags(t *testing.T) {
	src := source()
	st, z := converged(t, src, Settings{})
	// Someone edits both objects by hand and adds a tag of their own.
	z.signers[0].Audience = "other"
	z.signers[0].Scopes = []string{"email", "openid"}
	z.signers[0].Enabled = false
	z.signers[0].Tags["note"] = "keep me"
	z.policies[0].PrimaryUpdbAllowed = true
	z.policies[0].PrimaryExtJWTAllowedSigners = nil
	z.policies[0].Tags["note"] = "keep me too"
	// And the declaration's audience changes.
	src.s.Audience = "ziti-prod"

	p := plan(t, st)
	wantPlan(t, p,
		"update ziti-ext-jwt-signer keycloak (fields: [audience enabled scopes]): differs",
		"update ziti-auth-policy keycloak-users (fields: [primary.extJwt.allowedSigners primary.updb.allowed]): differs",
	)
	z.writes = nil
	mustApply(t, p)
	if len(z.writes) != 2 {
		t.Errorf("writes %v, want one update each", z.writes)
	}
	if s := z.signers[0]; s.Audience != "ziti-prod" || !s.Enabled || s.Tags["note"] != "keep me" || s.Tags[OwnerTag] != OwnerValue {
		t.Errorf("signer after repair %+v", s)
	}
	if ap := z.policies[0]; ap.PrimaryUpdbAllowed || ap.Tags["note"] != "keep me too" || !slices.Equal(ap.PrimaryExtJWTAllowedSigners, []string{z.signers[0].ID}) {
		t.Errorf("policy after repair %+v", ap)
	}
	if p := plan(t, st); !p.Empty() {
		t.Fatalf("after repair: %q", changeStrings(p))
	}
}

func TestIssuerChangeIsNoted(t *testing.T) {
	src := source()
	st, _ := converged(t, src, Settings{})
	src.s.Issuer = "https://login.example.test/realms/openziti"
	p := plan(t, st)
	wantPlan(t, p, "update ziti-ext-jwt-signer keycloak (fields: [issuer]): differs")
	if !slices.ContainsFunc(p.Notes, func(n string) bool { return strings.Contains(n, "keeps accepting tokens of the old issuer") }) {
		t.Errorf("notes %q lack the restart advice", p.Notes)
	}
}

func TestSignerRecreatedUpdatesPolicy(t *testing.T) {
	st, z := converged(t, source(), Settings{})
	z.signers = nil // deleted by hand (after removing it from the policy)
	z.policies[0].PrimaryExtJWTAllowedSigners = nil
	p := plan(t, st)
	wantPlan(t, p,
		"create ziti-ext-jwt-signer keycloak: missing",
		"update ziti-auth-policy keycloak-users (fields: [primary.extJwt.allowedSigners]): differs",
	)
	mustApply(t, p)
	if !slices.Equal(z.policies[0].PrimaryExtJWTAllowedSigners, []string{z.signers[0].ID}) {
		t.Fatalf("policy names %v, signer is %s", z.policies[0].PrimaryExtJWTAllowedSigners, z.signers[0].ID)
	}
}

func TestForeignObjectsFailThePlan(t *testing.T) {
	src := source()
	z := &fakeZiti{
		signers: []ziti.ExtJWTSigner{
			{ID: "s1", Name: "keycloak", Issuer: "https://elsewhere.test", Tags: map[string]any{"owner": "ops"}},
			{ID: "s2", Name: "legacy-kc", Issuer: src.s.Issuer},
			{ID: "s3", Name: "unrelated", Issuer: "https://unrelated.test"},
		},
		policies:   []ziti.AuthPolicy{{ID: "p1", Name: "keycloak-users", Tags: map[string]any{OwnerTag: "something-else"}}},
		identities: []ziti.Identity{{ID: "i1", Name: "bob"}, {ID: "i2", Name: "Default Admin", IsAdmin: true}},
	}
	st := newStep(t, src, z, Settings{AttachIdentities: []string{"bob", "carol", "Default Admin"}})
	_, err := st.Plan(context.Background())
	if err == nil {
		t.Fatal("plan succeeded")
	}
	for _, want := range []string{
		`external JWT signer "keycloak" (id s1) exists but is not managed by ziti-bootstrap`,
		"set ZITI_JWT_SIGNER_NAME to another name, or hand it over by adding that tag",
		`external JWT signer "legacy-kc" (id s2) already accepts issuer ` + src.s.Issuer,
		`auth policy "keycloak-users" (id p1) exists but is not managed by ziti-bootstrap`,
		`identity "carol", to be attached to auth policy "keycloak-users", does not exist`,
		`identity "Default Admin" is an administrator: auth policy "keycloak-users" allows only Keycloak logins`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "unrelated") || strings.Contains(err.Error(), `"bob"`) {
		t.Errorf("error names objects that are fine:\n%v", err)
	}
	if len(z.writes) != 0 {
		t.Fatalf("wrote %v", z.writes)
	}
}

func TestOtherNamesAreOtherObjects(t *testing.T) {
	_, z := converged(t, source(), Settings{})
	// A second declaration (another realm, other names) is independent of the first.
	src2 := source()
	src2.s.Issuer, src2.s.JWKSEndpoint = "http://kc.test/realms/other", "http://kc.test/realms/other/certs"
	p := plan(t, newStep(t, src2, z, Settings{SignerName: "kc-other", AuthPolicyName: "other-users", Scopes: []string{"openid", "email", "openid"}}))
	wantPlan(t, p, "create ziti-ext-jwt-signer kc-other: missing", "create ziti-auth-policy other-users: missing")
	mustApply(t, p)
	if !slices.Equal(z.signers[1].Scopes, []string{"email", "openid"}) {
		t.Errorf("scopes %v", z.signers[1].Scopes)
	}
}

func TestSourceErrors(t *testing.T) {
	boom := errors.New("boom")
	st := newStep(t, &fakeSource{err: boom}, &fakeZiti{}, Settings{})
	if _, err := st.Plan(context.Background()); !errors.Is(err, boom) {
		t.Errorf("source error not wrapped: %v", err)
	}
	src := source()
	src.s.JWKSEndpoint, src.s.Audience = "", ""
	st = newStep(t, src, &fakeZiti{}, Settings{})
	if _, err := st.Plan(context.Background()); err == nil || !strings.Contains(err.Error(), "no audience") || !strings.Contains(err.Error(), "JWKS endpoint") {
		t.Errorf("incomplete source: %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	st, err := New(source(), &fakeZiti{}, Settings{})
	if err != nil {
		t.Fatal(err)
	}
	if s := st.Settings(); s.SignerName != DefaultSignerName || s.AuthPolicyName != DefaultAuthPolicyName || !slices.Equal(s.Scopes, DefaultScopes) {
		t.Errorf("defaults %+v", s)
	}
	if st.Name() != "ziti/oidc" || !slices.Equal(st.DependsOn(), []string{"keycloak/realm", "ziti/reachable"}) {
		t.Errorf("name %s deps %v", st.Name(), st.DependsOn())
	}
	_, err = New(source(), &fakeZiti{}, Settings{Scopes: []string{"openid email"}, AttachIdentities: []string{"a", "", "a"}})
	for _, want := range []string{`Scopes: "openid email"`, "AttachIdentities[1]: empty name", `AttachIdentities[2]: "a" listed twice`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	if _, err := New(nil, &fakeZiti{}, Settings{}); err == nil {
		t.Error("nil source accepted")
	}
	// Built before ziti/reachable has a client: valid, but cannot plan.
	st, err = FromConfig(source(), nil, config.OIDC{SignerName: "kc", AuthPolicyName: "people"})
	if err != nil || st.Settings().SignerName != "kc" || st.Settings().AuthPolicyName != "people" {
		t.Fatalf("FromConfig: %+v, %v", st, err)
	}
	if _, err := st.Plan(context.Background()); err == nil || !strings.Contains(err.Error(), "ziti/reachable must run first") {
		t.Errorf("plan without a client: %v", err)
	}
}

func TestSignerFields(t *testing.T) {
	base := wantSigner("kc", source().s, DefaultScopes, nil)
	for _, tc := range []struct {
		field  string
		modify func(*ziti.ExtJWTSigner)
	}{
		{FieldIssuer, func(s *ziti.ExtJWTSigner) { s.Issuer = "x" }},
		{FieldAudience, func(s *ziti.ExtJWTSigner) { s.Audience = "x" }},
		{FieldJWKSEndpoint, func(s *ziti.ExtJWTSigner) { s.JWKSEndpoint = "x" }},
		{FieldCertPEM, func(s *ziti.ExtJWTSigner) { s.CertPEM = "pem" }},
		{FieldKid, func(s *ziti.ExtJWTSigner) { s.Kid = "k" }},
		{FieldClaimsProperty, func(s *ziti.ExtJWTSigner) { s.ClaimsProperty = "" }}, // "" is sub
		{FieldUseExternalID, func(s *ziti.ExtJWTSigner) { s.UseExternalID = false }},
		{FieldEnabled, func(s *ziti.ExtJWTSigner) { s.Enabled = false }},
		{FieldClientID, func(s *ziti.ExtJWTSigner) { s.ClientID = "x" }},
		{FieldExternalAuthURL, func(s *ziti.ExtJWTSigner) { s.ExternalAuthURL = "x" }},
		{FieldScopes, func(s *ziti.ExtJWTSigner) { s.Scopes = nil }},
		{FieldTargetToken, func(s *ziti.ExtJWTSigner) { s.TargetToken = "ID" }},
		{"", func(s *ziti.ExtJWTSigner) { s.TargetToken = "" }}, // "" is ACCESS
		{"", func(s *ziti.ExtJWTSigner) { s.Tags = map[string]any{"other": "x"}; s.ID = "id" }},
	} {
		have := base
		have.Scopes = slices.Clone(base.Scopes)
		tc.modify(&have)
		if got := signerDiff(base, have); !onlyField(got.Names(), tc.field) {
			t.Errorf("%s: fields %v", tc.field, got)
		}
	}
}

func TestPolicyFields(t *testing.T) {
	base := wantPolicy("p", "sid", nil)
	for _, tc := range []struct {
		field  string
		modify func(*ziti.AuthPolicy)
	}{
		{FieldCertAllowed, func(p *ziti.AuthPolicy) { p.PrimaryCertAllowed = true }},
		{FieldCertAllowExpired, func(p *ziti.AuthPolicy) { p.PrimaryCertAllowExpiredCerts = true }},
		{FieldExtJWTAllowed, func(p *ziti.AuthPolicy) { p.PrimaryExtJWTAllowed = false }},
		{FieldExtJWTSigners, func(p *ziti.AuthPolicy) { p.PrimaryExtJWTAllowedSigners = nil }}, // empty would allow every signer
		{FieldExtJWTSigners, func(p *ziti.AuthPolicy) { p.PrimaryExtJWTAllowedSigners = []string{"sid", "other"} }},
		{FieldUpdbAllowed, func(p *ziti.AuthPolicy) { p.PrimaryUpdbAllowed = true }},
		{FieldUpdbMinLength, func(p *ziti.AuthPolicy) { p.PrimaryUpdbMinPasswordLength = 12 }},
		{"", func(p *ziti.AuthPolicy) { p.PrimaryUpdbMinPasswordLength = 0 }}, // the controller stores 5
		{FieldUpdbSpecialChar, func(p *ziti.AuthPolicy) { p.PrimaryUpdbRequireSpecialChar = true }},
		{FieldUpdbNumberChar, func(p *ziti.AuthPolicy) { p.PrimaryUpdbRequireNumberChar = true }},
		{FieldUpdbMixedCase, func(p *ziti.AuthPolicy) { p.PrimaryUpdbRequireMixedCase = true }},
		{FieldUpdbMaxAttempts, func(p *ziti.AuthPolicy) { p.PrimaryUpdbMaxAttempts = 3 }},
		{FieldUpdbLockout, func(p *ziti.AuthPolicy) { p.PrimaryUpdbLockoutDurationMinutes = 5 }},
		{FieldSecondaryTOTP, func(p *ziti.AuthPolicy) { p.SecondaryRequireTOTP = true }},
		{FieldSecondaryExtJWT, func(p *ziti.AuthPolicy) { p.SecondaryRequireExtJWTSigner = "sid" }},
	} {
		have := base
		tc.modify(&have)
		if got := policyDiff(base, have); !onlyField(got.Names(), tc.field) {
			t.Errorf("%s: fields %v", tc.field, got)
		}
	}
}

func TestFilterNameIn(t *testing.T) {
	if got := ziti.FilterIn("name", []string{"alice", `b"ob`}); got != `name in ["alice", "b\"ob"]` {
		t.Errorf("filter %s", got)
	}
}

// A run that died between the two writes of a signer create left it under its unfinished name, untagged: the
// next plan finishes it (name, tags, settings) instead of refusing it as someone else's, and then converges.
func TestUnfinishedSignerCreateIsFinished(t *testing.T) {
	src := source()
	want := wantSigner(DefaultSignerName, src.s, DefaultScopes, nil)
	want.ID, want.Name, want.Tags = "half", DefaultSignerName+ziti.CreatingSuffix, nil
	z := &fakeZiti{signers: []ziti.ExtJWTSigner{want}}
	st := newStep(t, src, z, Settings{})
	p := plan(t, st)
	wantPlan(t, p,
		"update ziti-ext-jwt-signer keycloak (fields: [name tags]): an earlier run created it as keycloak.zb-creating (id half) and stopped before naming and tagging it",
		"create ziti-auth-policy keycloak-users: missing",
	)
	mustApply(t, p)
	if s := z.signers[0]; len(z.signers) != 1 || s.ID != "half" || s.Name != DefaultSignerName || !owned(s.Tags) {
		t.Fatalf("signers %+v", z.signers)
	}
	if ap := z.policies[0]; !slices.Equal(ap.PrimaryExtJWTAllowedSigners, []string{"half"}) {
		t.Fatalf("policy allows %v", ap.PrimaryExtJWTAllowedSigners)
	}
	if p := plan(t, st); !p.Empty() {
		t.Fatalf("second plan: %q", changeStrings(p))
	}
}
