package stacks

import (
	"slices"
	"strings"
	"testing"
)

// Keycloak trusts X-Forwarded headers only when the operator says a proxy in front sets them: by default a
// client reaching the published port cannot choose the address Keycloak sees, nor its back-channel URLs.
func TestKeycloakTrustsForwardedHeadersOnlyBehindAProxy(t *testing.T) {
	for _, tc := range []struct{ set, want string }{{"", ""}, {"xforwarded", "xforwarded"}} {
		vars := fullVars()
		if tc.set != "" {
			vars["KEYCLOAK_PROXY_HEADERS"] = tc.set
		}
		cs := service(t, load(t, Keycloak, vars), "keycloak").TaskTemplate.ContainerSpec
		if slices.ContainsFunc(cs.Args, func(a string) bool { return strings.HasPrefix(a, "--proxy-headers") }) {
			t.Errorf("KEYCLOAK_PROXY_HEADERS=%q: Keycloak's command sets the option itself: %v", tc.set, cs.Args)
		}
		if !slices.Contains(cs.Env, "ZB_PROXY_HEADERS="+tc.want) {
			t.Errorf("KEYCLOAK_PROXY_HEADERS=%q: environment %v, want ZB_PROXY_HEADERS=%s", tc.set, cs.Env, tc.want)
		}
	}
}
