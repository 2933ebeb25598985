package deploy

import (
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/devenv"
)

// WriteSummary writes what to do next once the stacks are up: the URLs, where the generated credentials live, a
// copy-paste OIDC login for a user, and how to enrol a first device or workload. vars are the stack variables
// (their defaults apply when absent; secrets are never printed, only where they are); stateDir is up --dev's
// state directory ("" when the operator supplied the secrets). status can call it with the same inputs.
func WriteSummary(w io.Writer, vars map[string]string, dockerHost, stateDir string) {
	get := func(name, def string) string {
		if v := vars[name]; v != "" {
			return v
		}
		return def
	}
	host := "localhost"
	if u, err := url.Parse(dockerHost); err == nil && u.Scheme == "tcp" && u.Hostname() != "" {
		host = u.Hostname() // ports are published on the nodes; this is the manager up talked to
	}
	ctrl := fmt.Sprintf("https://%s:%s", host, get("ZITI_CTRL_PUBLISHED_PORT", "1280"))
	kcPort := get("KEYCLOAK_PUBLISHED_PORT", "8080")
	kcPublic := strings.TrimRight(get("KEYCLOAK_PUBLIC_URL", "http://localhost:"+kcPort), "/")
	realm, client := get("KEYCLOAK_REALM", "openziti"), get("KEYCLOAK_CLIENT_ID", "openziti")
	oidc := kcPublic + "/realms/" + realm + "/protocol/openid-connect"

	fmt.Fprintln(w, "\nNext steps")
	fmt.Fprintf(w, "  OpenZiti controller API  %s/edge/management/v1 (user %s)\n", ctrl, get("ZITI_USER", "admin"))
	if get("ZITI_CONSOLE", "true") == "true" {
		fmt.Fprintf(w, "  OpenZiti console         %s/zac/\n", ctrl)
	}
	fmt.Fprintf(w, "  Keycloak                 %s/admin/ (user %s; realm %s, client %s)\n", kcPublic, get("KEYCLOAK_ADMIN_USER", "admin"), realm, client)
	if stateDir != "" {
		fmt.Fprintf(w, "  Credentials (generated)  %s: %s, %s (mode 0600); %s lists them as *_FILE variables\n", stateDir,
			devenv.Files[0].Name, devenv.Files[1].Name, filepath.Join(stateDir, devenv.EnvFile))
	} else {
		fmt.Fprintln(w, "  Credentials              the ones you set: ZITI_PWD(_FILE), KEYCLOAK_ADMIN_PASSWORD(_FILE)")
	}
	pwd := "$ZITI_PWD"
	if stateDir != "" {
		pwd = fmt.Sprintf("$(cat %s)", filepath.Join(stateDir, devenv.Files[0].Name))
	}
	claim := get("ZITI_OIDC_CLAIM", "email")
	fmt.Fprintf(w, `
  A user logs in with OIDC (device flow; the user exists in realm %[1]s, and an OpenZiti identity has their %[2]s as
  its external ID, e.g. ziti edge create identity alice --external-id alice@example.org):
    curl -s -d client_id=%[3]s -d scope=openid %[4]s/auth/device     # open verification_uri_complete, log in
    curl -s -d client_id=%[3]s -d grant_type=urn:ietf:params:oauth:grant-type:device_code -d device_code=DEVICE_CODE %[4]s/token
    curl -sk -X POST -H "Authorization: Bearer ACCESS_TOKEN" '%[5]s/edge/client/v1/authenticate?method=ext-jwt'

  Enrol a first device (one-time token) or workload (SPIRE):
    ziti edge login %[6]s -u %[7]s -p "%[8]s" -y
    ziti edge create identity device1 -a devices -o device1.jwt && ziti edge enroll device1.jwt
    workloads: list the Swarm service in SPIRE_ENTRIES_FILE and run it with `+"`ziti-bootstrap workload`"+` (see stacks/README.md)
`, realm, claim, client, oidc, ctrl, strings.TrimPrefix(ctrl, "https://"), get("ZITI_USER", "admin"), pwd)
}

// SummaryStateDir is the directory of --dev's generated credentials, "" without --dev.
func SummaryStateDir(dev *DevOptions) string {
	if !dev.Enabled {
		return ""
	}
	if dev.StateDir != "" {
		return dev.StateDir
	}
	return devenv.DefaultDir()
}
