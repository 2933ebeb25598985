package stacks

import (
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/swarm"
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

// Keycloak makes its admin service account (KEYCLOAK_ADMIN_CLIENT_ID) on its first start with the secret it reads
// from /run/secrets, and the bootstrap job and the converge service log in with the same client and secret: the
// secret reaches each of them as the Docker secret keycloak_admin_client_secret only, never in an environment
// variable or an argument (what `docker inspect` shows).
func TestKeycloakAdminServiceAccountIsASecret(t *testing.T) {
	vars := fullVars()
	vars["KEYCLOAK_ADMIN_CLIENT_ID"] = "zb-admin"
	const file = "/run/secrets/keycloak_admin_client_secret"
	kc := service(t, load(t, Keycloak, vars), "keycloak").TaskTemplate.ContainerSpec
	if !slices.Contains(kc.Env, "KC_BOOTSTRAP_ADMIN_CLIENT_ID=zb-admin") {
		t.Errorf("Keycloak's environment lacks KC_BOOTSTRAP_ADMIN_CLIENT_ID=zb-admin: %v", kc.Env)
	}
	if entry := strings.Join(kc.Command, " "); !strings.Contains(entry, `KC_BOOTSTRAP_ADMIN_CLIENT_SECRET="$(< `+file+`)"`) ||
		!strings.Contains(entry, "export KC_DB_PASSWORD KC_BOOTSTRAP_ADMIN_PASSWORD KC_BOOTSTRAP_ADMIN_CLIENT_SECRET") {
		t.Errorf("Keycloak's entrypoint does not export KC_BOOTSTRAP_ADMIN_CLIENT_SECRET from %s: %s", file, entry)
	}
	// its health check warms the job's path with the same service account (stacks/keycloak.yml): it reads the
	// secret in the container, where Keycloak's entrypoint reads it
	if check := strings.Join(kc.Healthcheck.Test, " "); !strings.Contains(check, "$(< "+file+")") ||
		!strings.Contains(check, "client_id=$id") {
		t.Errorf("Keycloak's health check does not log in with the service account whose secret it reads from %s: %s", file, check)
	}
	oz := load(t, OpenZiti, vars)
	for name, cs := range map[string]*swarm.ContainerSpec{"keycloak": kc,
		"bootstrap": service(t, oz, "bootstrap").TaskTemplate.ContainerSpec, "converge": service(t, oz, "converge").TaskTemplate.ContainerSpec} {
		if !slices.ContainsFunc(cs.Secrets, func(r *swarm.SecretReference) bool {
			return r.File != nil && r.File.Name == "keycloak_admin_client_secret" && strings.Contains(r.SecretName, "_keycloak_admin_client_secret_")
		}) {
			t.Errorf("%s does not get the secret keycloak_admin_client_secret", name)
		}
		if name != "keycloak" && !slices.Contains(cs.Env, "KEYCLOAK_ADMIN_CLIENT_ID=zb-admin") {
			t.Errorf("%s's environment lacks KEYCLOAK_ADMIN_CLIENT_ID=zb-admin: %v", name, cs.Env)
		}
		var check []string
		if cs.Healthcheck != nil {
			check = cs.Healthcheck.Test
		}
		for _, s := range slices.Concat(cs.Env, cs.Args, cs.Command, check) {
			if strings.Contains(s, vars["KEYCLOAK_ADMIN_CLIENT_SECRET"]) {
				t.Errorf("%s shows the service account's secret in %q", name, s)
			}
		}
	}
}
