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
