package testbed

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// StartKeycloak copies the Keycloak distribution to dir/keycloak and runs it in dev mode on 127.0.0.1:8180
// (management and health on 9000), storing its data in PostgreSQL pg.
func StartKeycloak(ctx context.Context, dir string, pg PostgresInfo) (KeycloakInfo, error) {
	v, err := Versions()
	if err != nil {
		return KeycloakInfo{}, err
	}
	dist := filepath.Join(CacheDir(), "keycloak-"+v["KEYCLOAK_VERSION"])
	if _, err := os.Stat(filepath.Join(dist, "bin", "kc.sh")); err != nil {
		return KeycloakInfo{}, fmt.Errorf("keycloak %s is not downloaded (%s): run scripts/build-servers.sh keycloak", v["KEYCLOAK_VERSION"], dist)
	}
	home := filepath.Join(dir, "keycloak")
	if err := os.RemoveAll(home); err != nil {
		return KeycloakInfo{}, err
	}
	if _, err := run(ctx, nil, "cp", "-a", dist, home); err != nil {
		return KeycloakInfo{}, err
	}
	in := KeycloakInfo{URL: "http://127.0.0.1:8180", AdminUser: "admin", AdminPassword: password(), Home: home}
	env := []string{
		"KC_BOOTSTRAP_ADMIN_USERNAME=" + in.AdminUser, "KC_BOOTSTRAP_ADMIN_PASSWORD=" + in.AdminPassword,
		"KC_DB=postgres", fmt.Sprintf("KC_DB_URL=jdbc:postgresql://%s:%d/%s", pg.Host, pg.Port, pg.Database),
		"KC_DB_USERNAME=" + pg.User, "KC_DB_PASSWORD=" + pg.Password,
		"KC_HEALTH_ENABLED=true", "JAVA_OPTS_KC_HEAP=-Xms64m -Xmx768m",
	}
	p, err := start("keycloak", dir, filepath.Join(home, "bin", "kc.sh"), env,
		"start-dev", "--http-host", "127.0.0.1", "--http-port", "8180", "--http-management-port", "9000")
	if err != nil {
		return in, err
	}
	in.PID = p.pid
	err = p.healthy(ctx, in.URL, 4*time.Minute, func(ctx context.Context) error {
		return httpOK(ctx, "http://127.0.0.1:9000/health/ready")
	})
	return in, err
}

func httpOK(ctx context.Context, url string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
