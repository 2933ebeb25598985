package keycloak_test

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/keycloak"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/keycloak/keycloaktest"
)

// The default user profile an import file carries (keycloak.ImportJSON) is the one the test bed's Keycloak gives a
// new realm: attributes (names, display names, permissions, required, validations) and groups. It fails when the
// Keycloak version changes its default: then the embedded copy must follow.
func TestEmbeddedDefaultUserProfileIsKeycloaks(t *testing.T) {
	opts := keycloaktest.Options(t, nil)
	kc := keycloaktest.Connect(t, nil)
	ctx := context.Background()
	realm := keycloaktest.RealmName(t, "profile")
	if err := kc.CreateRealm(ctx, keycloak.Realm{Name: realm, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	tok, err := kc.Token(ctx, "master", "admin-cli", "", opts.AdminUser, opts.AdminPassword.Value())
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, opts.URL.String()+"/admin/realms/"+realm+"/users/profile", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var live, embedded map[string]any
	if err := json.NewDecoder(res.Body).Decode(&live); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("user profile of a new realm: %s, %v", res.Status, err)
	}
	if err := json.Unmarshal(keycloak.DefaultUserProfile(), &embedded); err != nil {
		t.Fatal(err)
	}
	for _, doc := range []map[string]any{live, embedded} {
		for _, a := range doc["attributes"].([]any) {
			if m := a.(map[string]any); m["multivalued"] == false {
				delete(m, "multivalued") // written out by Keycloak, the default when absent
			}
		}
	}
	for _, k := range []string{"attributes", "groups"} {
		if !reflect.DeepEqual(live[k], embedded[k]) {
			got, _ := json.Marshal(live[k])
			want, _ := json.Marshal(embedded[k])
			t.Errorf("the default user profile's %s differ:\nKeycloak's: %s\nembedded:   %s", k, got, want)
		}
	}
}
