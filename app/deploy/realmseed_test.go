package deploy

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/swarm"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
)

func keycloakStack() *stacks.Stack {
	spec := swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "zb-keycloak_keycloak"},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Env: []string{"A=1"}}}}
	return &stacks.Stack{Name: stacks.Keycloak, Namespace: "zb-keycloak", Services: []stacks.Service{{Spec: spec}}}
}

// Keycloak gets the realm the bootstrap job declares as a file it imports at its first start, under a config
// name that a changed declaration keeps (so up never restarts Keycloak for a file it ignores once the realm
// exists); a bad declaration is refused naming the variables, before anything is deployed.
func TestRealmSeedShippedToKeycloak(t *testing.T) {
	vars := map[string]string{"KEYCLOAK_REALM": "zt", "KEYCLOAK_CLIENT_ID": "tunnelers",
		"KEYCLOAK_REDIRECT_URIS": "http://localhost:20314/auth/callback", "KEYCLOAK_CONFIDENTIAL_CLIENT_ID": "svc",
		"KEYCLOAK_CONFIDENTIAL_CLIENT_SECRET": "s3cret-value"}
	st := keycloakStack()
	if err := AddRealmSeed(st, vars); err != nil {
		t.Fatal(err)
	}
	if len(st.Configs) != 1 || st.Configs[0].Name != "zb-keycloak_keycloak-realm-seed-zt" || st.Configs[0].Labels[stacks.LabelSeed] != "true" {
		t.Fatalf("configs %+v, want one seed named zb-keycloak_keycloak-realm-seed-zt", st.Configs)
	}
	var file struct {
		Realm   string `json:"realm"`
		Clients []struct {
			ClientID        string            `json:"clientId"`
			RedirectURIs    []string          `json:"redirectUris"`
			ProtocolMappers []json.RawMessage `json:"protocolMappers"`
		} `json:"clients"`
	}
	data := st.Configs[0].Data
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatalf("the realm file is not JSON: %v\n%s", err, data)
	}
	if file.Realm != "zt" || len(file.Clients) != 1 || file.Clients[0].ClientID != "tunnelers" ||
		!slices.Equal(file.Clients[0].RedirectURIs, []string{"http://localhost:20314/auth/callback"}) || len(file.Clients[0].ProtocolMappers) != 2 {
		t.Errorf("realm file: %+v; want realm zt with client tunnelers, its redirect URI and its 2 mappers (the confidential client is left to the job)", file)
	}
	if !strings.Contains(string(data), "org.keycloak.userprofile.UserProfileProvider") || !strings.Contains(string(data), `\"edit\":[\"admin\"]`) {
		t.Errorf("the realm file declares no user profile with the claim's attribute editable by administrators only:\n%s", data)
	}
	for _, leak := range []string{"s3cret-value", "svc"} {
		if strings.Contains(string(data), leak) {
			t.Errorf("the realm file (a config anyone who lists configs may read) holds %q", leak)
		}
	}
	cs := st.Services[0].Spec.TaskTemplate.ContainerSpec
	if len(cs.Configs) != 1 || cs.Configs[0].ConfigName != st.Configs[0].Name || cs.Configs[0].File.Name != "/opt/keycloak/data/import/zt-realm.json" {
		t.Errorf("Keycloak's config references %+v", cs.Configs)
	}
	if !slices.Contains(cs.Env, RealmSeedVar+"=/opt/keycloak/data/import/zt-realm.json") {
		t.Errorf("Keycloak's environment %v lacks %s (its entrypoint adds --import-realm with it)", cs.Env, RealmSeedVar)
	}

	// a changed declaration: the same config name, so the same service spec
	vars["KEYCLOAK_REDIRECT_URIS"] = "https://app.example.org/cb"
	st2 := keycloakStack()
	if err := AddRealmSeed(st2, vars); err != nil {
		t.Fatal(err)
	}
	if st2.Configs[0].Name != st.Configs[0].Name || !strings.Contains(string(st2.Configs[0].Data), "app.example.org") {
		t.Errorf("changed declaration: config %s (data %d bytes), want the same name %s with the new data", st2.Configs[0].Name, len(st2.Configs[0].Data), st.Configs[0].Name)
	}

	// the defaults, as the job reads them: realm openziti, client openziti
	st3 := keycloakStack()
	if err := AddRealmSeed(st3, map[string]string{}); err != nil || !strings.Contains(string(st3.Configs[0].Data), `"realm": "openziti"`) {
		t.Errorf("defaults: %v\n%s", err, st3.Configs)
	}

	// a realm whose name is too long for a config's (Swarm: 64 characters): not seeded (the job creates it)
	st5 := keycloakStack()
	long := strings.Repeat("r", 40)
	if err := AddRealmSeed(st5, map[string]string{"KEYCLOAK_REALM": long}); err != nil || len(st5.Configs) != 0 {
		t.Errorf("KEYCLOAK_REALM=%s: %v, configs %v; want no seed", long, err, st5.Configs)
	}

	// a stack without Keycloak (an external one): nothing
	if err := AddRealmSeed(jobStack(), vars); err != nil {
		t.Errorf("stack without keycloak: %v", err)
	}

	// the master realm is refused, naming the variables; nothing added
	st4 := keycloakStack()
	err := AddRealmSeed(st4, map[string]string{"KEYCLOAK_REALM": "master"})
	var ce *config.Error
	if !errors.As(err, &ce) || !strings.Contains(ce.Problems[0].Var, "KEYCLOAK_REALM") || len(st4.Configs) != 0 {
		t.Errorf("KEYCLOAK_REALM=master: %v, configs %v; want a config.Error naming KEYCLOAK_REALM and nothing added", err, st4.Configs)
	}
}
