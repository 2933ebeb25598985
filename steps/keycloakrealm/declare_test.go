package keycloakrealm

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/keycloak"
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
