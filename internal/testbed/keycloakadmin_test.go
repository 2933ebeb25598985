package testbed

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
)

// Keycloak 26 makes the admin service account of KC_BOOTSTRAP_ADMIN_CLIENT_ID/SECRET on its first start (an empty
// database), next to the admin user: a private Keycloak, started as the test bed starts its own, accepts the
// client credentials grant of that account at once.
func TestKeycloakBootstrapServiceAccount(t *testing.T) {
	in := Load(t)
	if in.Postgres.Port == 0 {
		t.Fatal("the test bed has no PostgreSQL: run `task testbed:up`")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	db := fmt.Sprintf("zbboot%d", time.Now().UnixNano()%1e9)
	psql := func(ctx context.Context, sql string) {
		t.Helper()
		if _, err := run(ctx, []string{"PGPASSWORD=" + in.Postgres.Password}, "/usr/bin/psql", "-h", in.Postgres.Host, "-p", strconv.Itoa(in.Postgres.Port),
			"-U", in.Postgres.User, "-d", "postgres", "-tAc", sql); err != nil {
			t.Fatal(err)
		}
	}
	psql(ctx, "CREATE DATABASE "+db)
	pg := in.Postgres
	pg.Database = db
	dir := t.TempDir()
	k, err := PrepareKeycloak(ctx, dir, pg, testutil.FreePort(t), testutil.FreePort(t), "512m")
	if err != nil {
		t.Fatal(err)
	}
	p, err := start("keycloak", dir, k.Command[0], k.Env, k.Command[1:]...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop(p.pid, 30*time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		psql(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)")
	})
	if err := p.healthy(ctx, k.URL, 5*time.Minute, k.Ready); err != nil {
		t.Fatal(err)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {k.AdminClientID}, "client_secret": {k.AdminClientSecret}}
	if err := kcToken(ctx, k.URL, form); err != nil {
		t.Fatalf("client credentials of the bootstrap admin service account %s: %v", k.AdminClientID, err)
	}
	form.Set("client_secret", "not-"+k.AdminClientSecret)
	if err := kcToken(ctx, k.URL, form); err == nil {
		t.Fatal("a wrong secret was accepted")
	}
}
