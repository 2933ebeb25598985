package keycloak

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/redact"
)

// An import file is the body CreateRealm sends: the realm, its key providers, its clients and their mappers;
// a client with a secret is refused (the file is a Swarm config), and so is a bad realm name.
func TestImportJSONIsTheCreateBody(t *testing.T) {
	r := Realm{Name: "zt", Enabled: true, KeyProviders: SigningKeys(), Clients: []OIDCClient{{ClientID: "tunnelers", Public: true,
		RedirectURIs: []string{"http://localhost/cb"}, ProtocolMappers: []ProtocolMapper{{Name: "aud",
			Type: "oidc-audience-mapper", Config: map[string]string{"included.custom.audience": "zt"}}}}}}
	data, err := ImportJSON(r)
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]any
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(realmRep(r))
	got, _ := json.Marshal(file)
	var wantMap map[string]any
	_ = json.Unmarshal(want, &wantMap)
	wantJSON, _ := json.Marshal(wantMap)
	if string(got) != string(wantJSON) {
		t.Errorf("import file\n%s\nis not the create body\n%s", got, wantJSON)
	}
	for _, s := range []string{`"realm": "zt"`, `"clientId": "tunnelers"`, `"oidc-audience-mapper"`, `"rsa-generated"`} {
		if !strings.Contains(string(data), s) {
			t.Errorf("import file lacks %s:\n%s", s, data)
		}
	}

	r.Clients = append(r.Clients, OIDCClient{ClientID: "svc", Secret: redact.NewSecret("s3cret")})
	if _, err := ImportJSON(r); err == nil || !strings.Contains(err.Error(), "svc") {
		t.Errorf("a client with a secret: %v, want an error naming it", err)
	}
	if _, err := ImportJSON(Realm{Name: "a/b"}); err == nil {
		t.Error("realm a/b: no error")
	}
}
