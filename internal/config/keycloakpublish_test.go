package config

import (
	"testing"
)

// KEYCLOAK_PUBLISH chooses Keycloak's published listener: the container port, whether plain HTTP is served at all,
// and the scheme of the default public URL follow it.
func TestKeycloakPublish(t *testing.T) {
	// the variables of the stack files (KEYCLOAK_PUBLISH is not one of them)
	names := []string{"KEYCLOAK_PUBLISHED_PORT", "KEYCLOAK_PUBLIC_URL", "ZB_KEYCLOAK_TARGET_PORT", "ZB_KEYCLOAK_HTTP"}
	for _, tc := range []struct{ publish, target, http, public string }{
		{"", "8080", "true", "http://localhost:28080"},
		{"https", "8443", "false", "https://localhost:28080"},
	} {
		env := map[string]string{"KEYCLOAK_PUBLISHED_PORT": "28080", "KEYCLOAK_PUBLISH": tc.publish}
		st, err := LoadStack(Sources{Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}, names)
		if err != nil {
			t.Fatal(err)
		}
		if st.Vars["ZB_KEYCLOAK_TARGET_PORT"] != tc.target || st.Vars["ZB_KEYCLOAK_HTTP"] != tc.http || st.Vars["KEYCLOAK_PUBLIC_URL"] != tc.public {
			t.Errorf("KEYCLOAK_PUBLISH=%q: %v", tc.publish, st.Vars)
		}
	}
	env := map[string]string{"KEYCLOAK_PUBLISH": "none"}
	if _, err := LoadStack(Sources{Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}, names); !IsInvalid(err) {
		t.Errorf("KEYCLOAK_PUBLISH=none: %v; want an invalid configuration", err)
	}
}
