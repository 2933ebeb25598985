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

// The stacks always name Keycloak's admin service account: KEYCLOAK_ADMIN_CLIENT_ID when set, else theirs
// (StackAdminClientID); a name that would need quoting is refused.
func TestStackAdminClientID(t *testing.T) {
	names := []string{"KEYCLOAK_ADMIN_CLIENT_ID"}
	for set, want := range map[string]string{"": StackAdminClientID, "  ": StackAdminClientID, "ops-admin": "ops-admin"} {
		env := map[string]string{"KEYCLOAK_ADMIN_CLIENT_ID": set}
		st, err := LoadStack(Sources{Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}, names)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Vars["KEYCLOAK_ADMIN_CLIENT_ID"]; got != want {
			t.Errorf("KEYCLOAK_ADMIN_CLIENT_ID=%q: the stacks get %q, want %q", set, got, want)
		}
	}
	env := map[string]string{"KEYCLOAK_ADMIN_CLIENT_ID": "a b"}
	if _, err := LoadStack(Sources{Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}, names); !IsInvalid(err) {
		t.Errorf("KEYCLOAK_ADMIN_CLIENT_ID=%q: %v; want an invalid configuration", "a b", err)
	}
}
