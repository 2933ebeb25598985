package stacks

import (
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/swarm"
)

// Inside the Swarm Keycloak is reached over HTTPS only: the bootstrap job and the converge service send the admin
// password to https://keycloak:8443 and verify it with Keycloak's CA (a config of the stack), the controller
// fetches the JWKS there and trusts that CA alone (SSL_CERT_FILE: OpenZiti's resolver uses Go's system roots), and
// Keycloak serves the certificate and key of the stack. The published listener is the operator's choice.
func TestKeycloakIsReachedOverTLSInsideTheSwarm(t *testing.T) {
	oz := load(t, OpenZiti, fullVars())
	for _, name := range []string{"bootstrap", "converge"} {
		s := service(t, oz, name)
		env := envOf(s)
		for _, k := range []string{"KEYCLOAK_URL", "KEYCLOAK_JWKS_URL"} {
			if !strings.HasPrefix(env[k], "https://keycloak:8443") {
				t.Errorf("%s: %s=%s, want https://keycloak:8443…", name, k, env[k])
			}
		}
		if !mountsConfig(s, "keycloak_ca", env["KEYCLOAK_CA_FILE"]) {
			t.Errorf("%s: KEYCLOAK_CA_FILE=%q is not the stack's config keycloak_ca", name, env["KEYCLOAK_CA_FILE"])
		}
	}
	ctrl := service(t, oz, "ziti-controller")
	if f := envOf(ctrl)["SSL_CERT_FILE"]; !mountsConfig(ctrl, "keycloak_ca", f) || envOf(ctrl)["SSL_CERT_DIR"] != path.Dir(f) {
		t.Errorf("ziti-controller: SSL_CERT_FILE=%q is not the stack's config keycloak_ca, alone in SSL_CERT_DIR=%q", f, envOf(ctrl)["SSL_CERT_DIR"])
	}

	for _, tc := range []struct {
		publish, target, http string
	}{{"", "8080", "true"}, {"https", "8443", "false"}} {
		vars := fullVars()
		if tc.publish != "" {
			vars["KEYCLOAK_PUBLISH"] = tc.publish
			vars["ZB_KEYCLOAK_TARGET_PORT"], vars["ZB_KEYCLOAK_HTTP"] = tc.target, tc.http // as config.LoadStack sets them
		}
		kc := service(t, load(t, Keycloak, vars), "keycloak")
		env := envOf(kc)
		if env["KC_HTTPS_PORT"] != "8443" || !mountsConfig(kc, "keycloak_tls_cert", env["KC_HTTPS_CERTIFICATE_FILE"]) ||
			env["KC_HTTPS_CERTIFICATE_KEY_FILE"] != "/run/secrets/keycloak_tls_key" || !hasSecret(kc, "keycloak_tls_key") {
			t.Errorf("keycloak serves no TLS of the stack: %v", env)
		}
		if env["KC_HTTP_ENABLED"] != tc.http {
			t.Errorf("KEYCLOAK_PUBLISH=%q: KC_HTTP_ENABLED=%s, want %s", tc.publish, env["KC_HTTP_ENABLED"], tc.http)
		}
		if slices.Contains(kc.TaskTemplate.ContainerSpec.Args, "--http-enabled=true") {
			t.Errorf("Keycloak's command enables plain HTTP itself: %v", kc.TaskTemplate.ContainerSpec.Args)
		}
		if p := kc.EndpointSpec.Ports; len(p) != 1 || p[0].TargetPort != uint32(mustAtoi(t, tc.target)) {
			t.Errorf("KEYCLOAK_PUBLISH=%q: published %+v, want target %s", tc.publish, p, tc.target)
		}
	}
}

func mountsConfig(s swarm.ServiceSpec, suffix, path string) bool {
	return path != "" && slices.ContainsFunc(s.TaskTemplate.ContainerSpec.Configs, func(c *swarm.ConfigReference) bool {
		return strings.Contains(c.ConfigName, suffix) && c.File != nil && c.File.Name == path
	})
}

func hasSecret(s swarm.ServiceSpec, suffix string) bool {
	return slices.ContainsFunc(s.TaskTemplate.ContainerSpec.Secrets, func(r *swarm.SecretReference) bool {
		return strings.Contains(r.SecretName, suffix)
	})
}

func mustAtoi(t *testing.T, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
