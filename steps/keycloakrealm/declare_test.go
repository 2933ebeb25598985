package keycloakrealm

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/keycloak"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

func TestDefaults(t *testing.T) {
	d, err := withDefaults(Declaration{Realm: "openziti", DevUsers: []DevUser{{Username: "Alice", Email: "Alice@Example.test", Password: config.NewSecret("pw")}}})
	if err != nil {
		t.Fatal(err)
	}
	if d.Public.ClientID != "openziti" || d.Audience != "openziti" || d.IdentityClaim != "email" ||
		!slices.Equal(d.Public.RedirectURIs, DefaultRedirectURIs) || d.Public.WebOrigins != nil {
		t.Fatalf("defaults: %+v", d)
	}
	u := d.DevUsers[0]
	if u.Username != "alice" || u.Email != "alice@example.test" || u.FirstName != "alice" || u.LastName != "Dev" {
		t.Fatalf("dev user defaults: %+v (Keycloak lower-cases usernames and e-mails; first and last name are needed to log in)", u)
	}
	if got := d.profileAttributes(); !slices.Equal(got, []string{"email"}) {
		t.Fatalf("profile attributes %v: the email claim, only administrators editing it", got)
	}
	d, _ = withDefaults(Declaration{Realm: "r", IdentityClaim: "ziti_id", DevUsers: []DevUser{{Username: "bob", Email: "bob@x.test", Password: config.NewSecret("pw"), Attributes: map[string]string{"ziti_id": "b", "team": "x"}}}})
	if got := d.profileAttributes(); !slices.Equal(got, []string{"team", "ziti_id"}) {
		t.Fatalf("profile attributes %v", got)
	}
}

func TestDeclarationProblemsAllReported(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    Declaration
		want []string
	}{
		{"no realm", Declaration{}, []string{"Realm: required"}},
		{"master", Declaration{Realm: "Master"}, []string{"administration realm"}},
		{"bad realm", Declaration{Realm: "a/b"}, []string{"Realm: \"a/b\""}},
		{"claim Keycloak sets", Declaration{Realm: "r", IdentityClaim: "sub"}, []string{"IdentityClaim: \"sub\""}},
		{"claim with dot", Declaration{Realm: "r", IdentityClaim: "a.b"}, []string{"IdentityClaim"}},
		{"lifespan", Declaration{Realm: "r", AccessTokenLifespan: 1500 * time.Millisecond}, []string{"AccessTokenLifespan"}},
		{"confidential", Declaration{Realm: "r", Confidential: &ConfidentialClient{ClientID: "openziti"}}, []string{"public client's ID", "at least one of"}},
		{"users", Declaration{Realm: "r", IdentityClaim: "ziti_id", DevUsers: []DevUser{
			{Username: "al"}, {Username: "bob", Password: config.NewSecret("x"), Attributes: map[string]string{"email": "x"}}, {Username: "BOB", Password: config.NewSecret("x"), Attributes: map[string]string{"ziti_id": "b"}},
		}}, []string{"DevUsers[0].Username", "DevUsers[0].Password", "DevUsers[0].Attributes: \"al\" needs attribute \"ziti_id\"", "DevUsers[1].Attributes: \"email\"", "DevUsers[2].Username: \"bob\" declared twice"}},
		{"users need email", Declaration{Realm: "r", IdentityClaim: "ziti_id", DevUsers: []DevUser{{Username: "carol", Password: config.NewSecret("x"), Attributes: map[string]string{"ziti_id": "c"}}}}, []string{"DevUsers[0].Email: required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(nil, tc.d)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), Name+": declaration:") {
				t.Errorf("error %q does not name the step", err)
			}
		})
	}
}

func TestRealmFields(t *testing.T) {
	d, _ := withDefaults(Declaration{Realm: "r", DisplayName: "Ziti", AccessTokenLifespan: 10 * time.Minute})
	ok := &keycloak.Realm{Name: "r", Enabled: true, DisplayName: "Ziti", AccessTokenLifespan: 10 * time.Minute,
		Attributes: map[string]string{ManagedAttribute: "true", "cibaInterval": "5"}}
	if f := realmDiff(d, ok); len(f) != 0 {
		t.Fatalf("converged realm differs in %v", f)
	}
	bad := &keycloak.Realm{Name: "r", DisplayName: "Other", AccessTokenLifespan: time.Minute, DuplicateEmailsAllowed: true, Attributes: map[string]string{}}
	want := []string{"enabled", "displayName", "accessTokenLifespan", "duplicateEmailsAllowed", "attributes.ziti-bootstrap.managed"}
	if f := realmDiff(d, bad); !slices.Equal(f.Names(), want) {
		t.Fatalf("fields %v, want %v", f, want)
	}
	// Undeclared settings are not managed; duplicate e-mails only matter when e-mail identifies users.
	d2, _ := withDefaults(Declaration{Realm: "r", IdentityClaim: "ziti_id"})
	other := &keycloak.Realm{Name: "r", Enabled: true, DisplayName: "Anything", AccessTokenLifespan: time.Hour, DuplicateEmailsAllowed: true,
		Attributes: map[string]string{ManagedAttribute: "true"}}
	if f := realmDiff(d2, other); len(f) != 0 {
		t.Fatalf("unmanaged settings reported: %v", f)
	}
}

func TestClientFields(t *testing.T) {
	d, _ := withDefaults(Declaration{Realm: "r", Public: PublicClient{RequirePKCE: true}, Confidential: &ConfidentialClient{ClientID: "svc", Secret: config.NewSecret("s"), ServiceAccounts: true}})
	cs := d.wantClients()
	pub, conf := cs[0], cs[1]
	have := pub
	have.ID = "uuid"
	have.RedirectURIs = []string{DefaultRedirectURIs[1], DefaultRedirectURIs[0]} // order does not matter
	have.WebOrigins = []string{"http://x"}                                       // not declared: not managed
	have.Attributes = map[string]string{ManagedAttribute: "true", keycloak.AttrDeviceGrant: "true", keycloak.AttrPKCEMethod: "S256", "other": "kept"}
	if f := clientDiff(pub, have); len(f) != 0 {
		t.Fatalf("converged public client differs in %v", f)
	}
	have.DirectAccessGrants, have.RedirectURIs = true, []string{"http://evil/*"}
	delete(have.Attributes, keycloak.AttrPKCEMethod)
	want := []string{"directAccessGrantsEnabled", "redirectUris", "attributes." + keycloak.AttrPKCEMethod}
	if f := clientDiff(pub, have); !slices.Equal(f.Names(), want) {
		t.Fatalf("fields %v, want %v", f, want)
	}
	hc := conf
	hc.Secret = config.NewSecret("other")
	hc.Public = true
	if f := clientDiff(conf, hc); !slices.Equal(f.Names(), []string{"publicClient", "secret"}) {
		t.Fatalf("confidential fields %v", f)
	}
	conf.Secret = config.Secret{} // generated by Keycloak: not managed
	if f := clientDiff(conf, keycloak.OIDCClient{Enabled: true, ServiceAccounts: true, Secret: config.NewSecret("gen"), Attributes: map[string]string{ManagedAttribute: "true"}}); len(f) != 0 {
		t.Fatalf("unmanaged secret reported: %v", f)
	}
}

func TestMapperFields(t *testing.T) {
	d, _ := withDefaults(Declaration{Realm: "r", Audience: "zt"})
	ms := d.wantMappers()
	aud, claim := ms[0], ms[1]
	if aud.Config["included.custom.audience"] != "zt" || claim.Type != "oidc-usermodel-property-mapper" || claim.Config["claim.name"] != "email" {
		t.Fatalf("mappers %+v", ms)
	}
	have := keycloak.ProtocolMapper{ID: "1", Name: aud.Name, Type: aud.Type, Config: map[string]string{"included.custom.audience": "old", "access.token.claim": "true",
		"id.token.claim": "true", "introspection.token.claim": "true", "lightweight.claim": "false"}}
	f, replace := mapperDiff(aud, have)
	if replace || !slices.Equal(f.Names(), []string{"config.included.custom.audience"}) {
		t.Fatalf("fields %v replace %v", f, replace)
	}
	d2, _ := withDefaults(Declaration{Realm: "r", IdentityClaim: "ziti_id"})
	attr := d2.wantMappers()[1]
	if _, replace := mapperDiff(attr, keycloak.ProtocolMapper{Type: claim.Type}); !replace {
		t.Fatal("a mapper of another type must be replaced")
	}
}

func TestUserFields(t *testing.T) {
	want := wantUser(DevUser{Username: "bob", Email: "bob@x.test", FirstName: "bob", LastName: "Dev", Attributes: map[string]string{"ziti_id": "b"}})
	have := want
	have.Attributes = map[string][]string{"ziti_id": {"b"}, "undeclared": {"kept"}}
	if f := userDiff(want, have); len(f) != 0 {
		t.Fatalf("converged user differs in %v", f)
	}
	have.Attributes = map[string][]string{"ziti_id": {"c"}}
	have.Enabled, have.EmailVerified = false, false
	if f := userDiff(want, have); !slices.Equal(f.Names(), []string{"enabled", "emailVerified", "attributes.ziti_id"}) {
		t.Fatalf("fields %v", f)
	}
}

func TestProfileFields(t *testing.T) {
	if f := profileDiff(keycloak.UserProfileAttribute{Name: "ziti_id", EditRoles: []string{"admin", "user"}}); !slices.Equal(f.Names(), []string{"permissions.edit"}) {
		t.Fatalf("a user-editable identity attribute must be fixed: %v", f)
	}
	if f := profileDiff(keycloak.UserProfileAttribute{Name: "ziti_id", EditRoles: []string{"admin"}, ViewRoles: []string{"admin"}}); len(f) != 0 {
		t.Fatalf("fields %v", f)
	}
}

// The diff is a pure function of the declaration and the observed realm: these tests need no server.

func diffDecl(t *testing.T) Declaration {
	t.Helper()
	d, err := withDefaults(Declaration{Realm: "r", DisplayName: "Ziti", AccessTokenLifespan: 10 * time.Minute, IdentityClaim: "ziti_id",
		Confidential: &ConfidentialClient{ClientID: "svc", Secret: config.NewSecret("client-secret-value"), ServiceAccounts: true},
		DevUsers:     []DevUser{{Username: "alice", Email: "alice@x.test", Password: config.NewSecret("alice-password"), Attributes: map[string]string{"ziti_id": "alice"}}}})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// convergedState is what Keycloak holds after a successful apply of d.
func convergedState(d Declaration) observed {
	realm := d.wantRealm()
	o := observed{realm: &realm, users: map[string]observedUser{}}
	for _, n := range d.profileAttributes() {
		o.profile = append(o.profile, wantProfileAttribute(n))
	}
	for i, c := range d.wantClients() {
		c.ID = "uuid-" + c.ClientID
		for j, m := range d.wantMappers() {
			m.ID = fmt.Sprintf("m%d.%d", i, j)
			c.ProtocolMappers = append(c.ProtocolMappers, m)
		}
		o.clients = append(o.clients, c)
	}
	for _, u := range d.DevUsers {
		ku := wantUser(u)
		ku.ID = "id-" + u.Username
		o.users[u.Username] = observedUser{user: &ku}
	}
	return o
}

func TestDiffOfMissingRealmCreatesEverything(t *testing.T) {
	ops, notes := diff(diffDecl(t), observed{})
	want := []string{
		"create keycloak-realm r: missing",
		"create keycloak-user-profile-attribute r/ziti_id: missing",
		"create keycloak-client r/openziti: missing: created with the realm",
		"create keycloak-protocol-mapper r/openziti/ziti-bootstrap-audience: missing: created with the client",
		"create keycloak-protocol-mapper r/openziti/ziti-bootstrap-identity-claim: missing: created with the client",
		"create keycloak-client r/svc: missing: created with the realm",
		"create keycloak-protocol-mapper r/svc/ziti-bootstrap-audience: missing: created with the client",
		"create keycloak-protocol-mapper r/svc/ziti-bootstrap-identity-claim: missing: created with the client",
		"create keycloak-user r/alice: missing (development user)",
	}
	if got := testutil.ChangeStrings(steps.Changes(ops)); !slices.Equal(got, want) || len(notes) != 0 {
		t.Fatalf("changes:\n%s\nnotes %v", strings.Join(got, "\n"), notes)
	}
}

func TestDiffOfConvergedRealmIsEmpty(t *testing.T) {
	d := diffDecl(t)
	if ops, notes := diff(d, convergedState(d)); len(ops) != 0 || len(notes) != 0 {
		t.Fatalf("converged realm: %q, notes %v", testutil.ChangeStrings(steps.Changes(ops)), notes)
	}
}

func TestDiffCarriesBeforeAndAfterWithSecretsRedacted(t *testing.T) {
	d := diffDecl(t)
	o := convergedState(d)
	o.realm.DisplayName = "Old name"
	o.clients[1].Secret = config.NewSecret("stale-secret")
	o.clients[0].ProtocolMappers[0].Config["included.custom.audience"] = "other"
	u := o.users["alice"]
	u.user.Email, u.wrongPassword = "old@x.test", true
	u.note = ""
	o.users["alice"] = u

	ops, _ := diff(d, o)
	got := map[string]steps.Diff{}
	for _, c := range steps.Changes(ops) {
		if c.Action != steps.Update || !slices.Equal(c.Fields, c.Diff.Names()) {
			t.Fatalf("change %s: fields %v, diff %+v", c, c.Fields, c.Diff)
		}
		got[c.Kind+" "+c.Key] = c.Diff
	}
	want := map[string]steps.Diff{
		"keycloak-realm r":      {{Field: "displayName", Before: "Old name", After: "Ziti"}},
		"keycloak-client r/svc": {{Field: "secret", Before: steps.Redacted, After: steps.Redacted}},
		"keycloak-protocol-mapper r/openziti/ziti-bootstrap-audience": {{Field: "config.included.custom.audience", Before: "other", After: "openziti"}},
		"keycloak-user r/alice": {{Field: "email", Before: "old@x.test", After: "alice@x.test"}, {Field: "password", Before: steps.Redacted, After: steps.Redacted}},
	}
	if len(got) != len(want) {
		t.Fatalf("changes %+v", got)
	}
	for k, w := range want {
		if !slices.Equal(got[k], w) {
			t.Errorf("%s: diff %+v, want %+v", k, got[k], w)
		}
	}
	js, err := json.Marshal(steps.Changes(ops))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"client-secret-value", "stale-secret", "alice-password"} {
		if strings.Contains(string(js), secret) {
			t.Errorf("plan JSON shows a secret: %s", js)
		}
	}
	if !strings.Contains(string(js), `{"field":"displayName","before":"Old name","after":"Ziti"}`) {
		t.Errorf("plan JSON: %s", js)
	}
}

func TestDiffReplacesMapperOfAnotherTypeAndKeepsOthers(t *testing.T) {
	d := diffDecl(t)
	o := convergedState(d)
	o.clients[0].ProtocolMappers[1].Type = "oidc-usermodel-property-mapper"
	o.clients[0].ProtocolMappers = append(o.clients[0].ProtocolMappers,
		keycloak.ProtocolMapper{ID: "x", Name: "someone-elses", Type: "oidc-audience-mapper"},
		keycloak.ProtocolMapper{ID: "y", Name: MapperPrefix + "old", Type: "oidc-audience-mapper"})
	o.clients = append(o.clients, keycloak.OIDCClient{ID: "z", ClientID: "gone", Attributes: map[string]string{ManagedAttribute: managed}},
		keycloak.OIDCClient{ID: "w", ClientID: "theirs"})
	ops, _ := diff(d, o)
	want := []string{
		"delete keycloak-protocol-mapper r/openziti/ziti-bootstrap-identity-claim: type oidc-usermodel-property-mapper, want oidc-usermodel-attribute-mapper: replaced",
		"create keycloak-protocol-mapper r/openziti/ziti-bootstrap-identity-claim: type oidc-usermodel-property-mapper, want oidc-usermodel-attribute-mapper: replaced",
		"delete keycloak-protocol-mapper r/openziti/ziti-bootstrap-old: managed by ziti-bootstrap, no longer wanted",
		"delete keycloak-client r/gone: managed by ziti-bootstrap, no longer declared",
	}
	if got := testutil.ChangeStrings(steps.Changes(ops)); !slices.Equal(got, want) {
		t.Fatalf("changes:\n%s", strings.Join(got, "\n"))
	}
}

func TestDiffNotesUnverifiedPassword(t *testing.T) {
	d := diffDecl(t)
	o := convergedState(d)
	u := o.users["alice"]
	u.note = "password of development user r/alice not verified: account disabled"
	o.users["alice"] = u
	if ops, notes := diff(d, o); len(ops) != 0 || !slices.Equal(notes, []string{u.note}) {
		t.Fatalf("ops %d notes %v", len(ops), notes)
	}
}
