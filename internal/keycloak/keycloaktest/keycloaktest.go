// Package keycloaktest connects integration tests to the test bed's Keycloak (internal/testbed) and gives them
// throw-away realms.
package keycloaktest

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/keycloak"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
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

// ServiceAccountOptions is Options logging in with the test bed's admin service account
// (testbed.KeycloakAdminClient) instead of the admin user's password.
func ServiceAccountOptions(t testing.TB, counter *calls.Counter) keycloak.Options {
	t.Helper()
	opts := Options(t, counter)
	id, secret, err := testbed.KeycloakAdminClient(testutil.Context(t, 2*time.Minute), testbed.Require(t, "keycloak"))
	if err != nil {
		t.Fatal(err)
	}
	opts.AdminPassword = config.Secret{}
	opts.AdminClientID, opts.AdminClientSecret = id, config.NewSecret(secret)
	return opts
}

// Dial returns an admin client of the test bed's Keycloak that logs in on its first call, as a fresh process
// would (see keycloak.Dial).
func Dial(t testing.TB, counter *calls.Counter) *keycloak.Client {
	t.Helper()
	c, err := keycloak.Dial(Options(t, counter))
	if err != nil {
		t.Fatal(err)
	}
	return c
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

// Probe is the probe of a "keycloak/reachable" step (steps/reach) for c: it pings Keycloak and names its version.
func Probe(c *keycloak.Client) func(ctx context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		v, err := c.Ping(ctx)
		return "Keycloak " + v, err
	}
}

// RealmName returns a realm name unique to this test run, "zbtest-PREFIX-RANDOM", and deletes that realm (if it
// was created) when the test ends.
func RealmName(t testing.TB, prefix string) string {
	t.Helper()
	name := "zbtest-" + strings.ToLower(prefix) + "-" + testutil.RandHex(t, 4)
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
