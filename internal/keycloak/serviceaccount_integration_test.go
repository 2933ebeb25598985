package keycloak_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/invalid"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/keycloak"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/keycloak/keycloaktest"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/redact"
)

// The admin service account logs in with the client credentials grant, and concurrent first calls share one
// login: one admin token per run.
func TestRealKeycloakServiceAccountOneLogin(t *testing.T) {
	kc, err := keycloak.Dial(keycloaktest.ServiceAccountOptions(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { _, errs[i] = kc.Ping(context.Background()) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := kc.Logins(); n != 1 {
		t.Errorf("%d admin logins for 8 concurrent calls, want 1", n)
	}
	if m := kc.LoginMethod(); !strings.HasPrefix(m, "client credentials of ") {
		t.Errorf("login method %q, want client credentials", m)
	}
	// The service account administers realms: it can read one.
	if _, err := kc.GetRealm(context.Background(), "master"); err != nil {
		t.Fatal(err)
	}
}

// A service account Keycloak does not know (a database older than KC_BOOTSTRAP_ADMIN_CLIENT_ID) falls back to
// the password; without a password the refusal names the variables to fix, without the secret.
func TestRealKeycloakUnknownServiceAccount(t *testing.T) {
	opts := keycloaktest.Options(t, nil)
	opts.AdminClientID, opts.AdminClientSecret = "zb-no-such-client", redact.NewSecret("zb-not-the-secret")
	kc, err := keycloak.New(context.Background(), opts)
	if err != nil {
		t.Fatalf("with the password as fallback: %v", err)
	}
	if m := kc.LoginMethod(); !strings.HasPrefix(m, "password of user ") {
		t.Errorf("login method %q, want the password after the fallback", m)
	}

	opts.AdminPassword = redact.Secret{}
	_, err = keycloak.New(context.Background(), opts)
	if !invalid.Is(err) || !strings.Contains(err.Error(), "KEYCLOAK_ADMIN_CLIENT_SECRET") || strings.Contains(err.Error(), "zb-not-the-secret") {
		t.Fatalf("got %v; want an invalid configuration naming KEYCLOAK_ADMIN_CLIENT_SECRET, without the secret", err)
	}
}
