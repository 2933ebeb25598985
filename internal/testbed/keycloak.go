package testbed

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// StartKeycloak runs the test bed's Keycloak (PrepareKeycloak) on 127.0.0.1:8180 (management and
// health on 9000), storing its data in PostgreSQL pg, and waits until it is ready. prev is the Keycloak that ran on
// the same database before (zero when the database is new): its administrator exists there, so its credentials
// are kept (Keycloak creates the bootstrap administrator only in a database without one).
func StartKeycloak(ctx context.Context, dir string, pg PostgresInfo, prev KeycloakInfo) (KeycloakInfo, error) {
	k, err := PrepareKeycloak(ctx, dir, pg, 8180, 9000, "768m")
	if err != nil {
		return KeycloakInfo{}, err
	}
	if prev.AdminPassword != "" {
		k.keep(prev)
	}
	p, err := start("keycloak", dir, k.Command[0], k.Env, k.Command[1:]...)
	if err != nil {
		return k.KeycloakInfo, err
	}
	k.PID = p.pid
	err = p.healthy(ctx, k.URL, 4*time.Minute, k.Ready)
	return k.KeycloakInfo, err
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
