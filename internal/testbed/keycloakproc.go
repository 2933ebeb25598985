package testbed

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// KeycloakProcess is how to run a private Keycloak of the cached distribution: the command, the environment
// (secrets are there, never in the arguments) and the readiness probe, for a test that starts, stops and starts
// it again itself (e.g. as a backup.ProcessService).
type KeycloakProcess struct {
	KeycloakInfo          // URL, admin user and password, Home
	Command      []string // kc.sh start --optimized …
	Env          []string // serverEnv, then the administrator's (setEnv)
	HealthURL    string   // the management interface's readiness endpoint
	serverEnv    []string // database, health, heap
}

// PrepareKeycloak copies the cached Keycloak distribution, built for PostgreSQL (scripts/build-servers.sh
// keycloak_testbed), into dir/keycloak and returns how to run it (start --optimized: no Quarkus build at each start;
// plain HTTP, the host name taken from each request and a local cache, as start-dev has them) on
// 127.0.0.1:httpPort (management and health on mgmtPort), with a heap of at most maxHeap (a JVM size, e.g.
// "512m") and its data in the PostgreSQL database pg. It does not start it.
func PrepareKeycloak(ctx context.Context, dir string, pg PostgresInfo, httpPort, mgmtPort int, maxHeap string) (*KeycloakProcess, error) {
	v, err := Versions()
	if err != nil {
		return nil, err
	}
	dist := filepath.Join(CacheDir(), "keycloak-"+v["KEYCLOAK_VERSION"]+"-pg")
	if _, err := os.Stat(filepath.Join(dist, ".done")); err != nil {
		return nil, fmt.Errorf("keycloak %s is not downloaded and built (%s): run scripts/build-servers.sh keycloak_testbed", v["KEYCLOAK_VERSION"], dist)
	}
	home := filepath.Join(dir, "keycloak")
	if err := os.RemoveAll(home); err != nil {
		return nil, err
	}
	if _, err := run(ctx, nil, "cp", "-a", dist, home); err != nil {
		return nil, err
	}
	k := &KeycloakProcess{
		KeycloakInfo: KeycloakInfo{URL: fmt.Sprintf("http://127.0.0.1:%d", httpPort), AdminUser: "admin", AdminPassword: password(),
			AdminClientID: KeycloakAdminClientID, AdminClientSecret: password(), Home: home},
		Command: []string{filepath.Join(home, "bin", "kc.sh"), "start", "--optimized", "--http-enabled=true", "--hostname-strict=false", "--cache=local",
			"--http-host", "127.0.0.1", "--http-port", strconv.Itoa(httpPort), "--http-management-port", strconv.Itoa(mgmtPort)},
		HealthURL: fmt.Sprintf("http://127.0.0.1:%d/health/ready", mgmtPort),
	}
	k.serverEnv = []string{
		"KC_DB=postgres", fmt.Sprintf("KC_DB_URL=jdbc:postgresql://%s:%d/%s", pg.Host, pg.Port, pg.Database),
		"KC_DB_USERNAME=" + pg.User, "KC_DB_PASSWORD=" + pg.Password,
		"KC_HEALTH_ENABLED=true", "JAVA_OPTS_KC_HEAP=-Xms64m -Xmx" + maxHeap,
	}
	k.setEnv()
	return k, nil
}

// setEnv sets Env from serverEnv and the administrator Keycloak creates at its first start.
func (k *KeycloakProcess) setEnv() {
	k.Env = append(slices.Clone(k.serverEnv),
		"KC_BOOTSTRAP_ADMIN_USERNAME="+k.AdminUser, "KC_BOOTSTRAP_ADMIN_PASSWORD="+k.AdminPassword,
		// and an admin service account: ziti-bootstrap's faster login (client credentials, no password hash)
		"KC_BOOTSTRAP_ADMIN_CLIENT_ID="+k.AdminClientID, "KC_BOOTSTRAP_ADMIN_CLIENT_SECRET="+k.AdminClientSecret)
}

// keep makes k use prev's administrator and service account (user, password, client id and secret).
func (k *KeycloakProcess) keep(prev KeycloakInfo) {
	k.AdminUser, k.AdminPassword, k.AdminClientID, k.AdminClientSecret = prev.AdminUser, prev.AdminPassword, prev.AdminClientID, prev.AdminClientSecret
	k.setEnv()
}

// Ready answers nil once Keycloak is ready (its management interface says so).
func (k *KeycloakProcess) Ready(ctx context.Context) error { return httpOK(ctx, k.HealthURL) }
