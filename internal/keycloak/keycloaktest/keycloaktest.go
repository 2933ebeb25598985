// Package keycloaktest connects integration tests to the test bed's Keycloak (internal/testbed) and gives them
// throw-away realms.
package keycloaktest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/keycloak"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
)

// Options returns how to reach the test bed's Keycloak as its administrator, counting calls on counter. It skips
// the test with -short and fails it when the test bed has no Keycloak.
func Options(t testing.TB, counter *calls.Counter) keycloak.Options {
	t.Helper()
	in := testbed.Require(t, "keycloak")
	u, err := url.Parse(in.Keycloak.URL)
	if err != nil {
		t.Fatalf("test bed Keycloak URL %q: %v", in.Keycloak.URL, err)
	}
	return keycloak.Options{URL: u, AdminUser: in.Keycloak.AdminUser, AdminPassword: config.NewSecret(in.Keycloak.AdminPassword), Counter: counter}
}

// Connect returns an admin client of the test bed's Keycloak, waiting up to a minute for it.
func Connect(t testing.TB, counter *calls.Counter) *keycloak.Client {
	t.Helper()
	c, _, err := keycloak.Connect(context.Background(), Options(t, counter), wait.Target{Deadline: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// RealmName returns a realm name unique to this test run, "zbtest-PREFIX-RANDOM", and deletes that realm (if it
// was created) when the test ends.
func RealmName(t testing.TB, prefix string) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "zbtest-" + strings.ToLower(prefix) + "-" + hex.EncodeToString(b)
	admin := Connect(t, nil)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := admin.DeleteRealm(ctx, name); err != nil && !keycloak.IsNotFound(err) {
			t.Errorf("cleanup: %v", err)
		}
	})
	return name
}
