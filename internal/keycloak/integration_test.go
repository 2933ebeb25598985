package keycloak_test

import (
	"context"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/invalid"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/keycloak"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/keycloak/keycloaktest"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/redact"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
)

func TestRealKeycloakWrongAdminPassword(t *testing.T) {
	opts := keycloaktest.Options(t, nil)
	opts.AdminPassword = redact.NewSecret("wrong-" + opts.AdminPassword.Value())
	_, err := keycloak.New(context.Background(), opts)
	if !invalid.Is(err) || !strings.Contains(err.Error(), "KEYCLOAK_ADMIN_PASSWORD") {
		t.Fatalf("got %v; want an invalid configuration naming KEYCLOAK_ADMIN_PASSWORD", err)
	}
	if strings.Contains(err.Error(), opts.AdminPassword.Value()) {
		t.Fatalf("error %q reveals the password", err)
	}
}

func TestRealKeycloakPingAndDiscovery(t *testing.T) {
	kc := keycloaktest.Connect(t, nil)
	ctx := context.Background()
	v, err := kc.Ping(ctx)
	if err != nil || !strings.HasPrefix(v, "26.") {
		t.Fatalf("Ping = %q, %v; want a 26.x version", v, err)
	}
	iss, jwks, tok, auth, err := kc.Discovery(ctx, "master")
	if err != nil {
		t.Fatal(err)
	}
	if iss != kc.URL()+"/realms/master" || !strings.HasPrefix(jwks, iss+"/") || !strings.HasSuffix(tok, "/token") || !strings.HasSuffix(auth, "/auth") {
		t.Fatalf("discovery: issuer %s jwks %s token %s auth %s", iss, jwks, tok, auth)
	}
	if _, err := kc.GetRealm(ctx, "zbtest-does-not-exist"); !keycloak.IsNotFound(err) {
		t.Fatalf("GetRealm of a missing realm: %v; want not found", err)
	}
}

// TestRealKeycloakObjects drives every object type through create, read, masked update and token issue, and checks
// that masked updates leave the rest alone.
func TestRealKeycloakObjects(t *testing.T) {
	realm := keycloaktest.RealmName(t, "adapter")
	counter := calls.New()
	kc := keycloaktest.Connect(t, counter)
	ctx := context.Background()

	if err := kc.CreateRealm(ctx, keycloak.Realm{Name: realm, Enabled: true, DisplayName: "before", Attributes: map[string]string{"keep": "me"}}); err != nil {
		t.Fatal(err)
	}
	want := keycloak.Realm{Name: realm, DisplayName: "after", AccessTokenLifespan: 7 * time.Minute, Attributes: map[string]string{"added": "yes"}}
	if err := kc.UpdateRealm(ctx, want, keycloak.RealmAccessTokenLifespan, keycloak.AttributeField("added")); err != nil {
		t.Fatal(err)
	}
	got, err := kc.GetRealm(ctx, realm)
	if err != nil {
		t.Fatal(err)
	}
	if got.DisplayName != "before" || got.AccessTokenLifespan != 7*time.Minute || !got.Enabled ||
		got.Attributes["keep"] != "me" || got.Attributes["added"] != "yes" {
		t.Fatalf("after a masked update: %+v; want only the lifespan and the new attribute changed", got)
	}

	// user profile: an attribute only administrators may edit
	if err := kc.PutUserProfileAttribute(ctx, realm, keycloak.UserProfileAttribute{Name: "ziti_id", DisplayName: "Ziti ID", ViewRoles: []string{"admin", "user"}, EditRoles: []string{"admin"}}); err != nil {
		t.Fatal(err)
	}
	attrs, err := kc.UserProfileAttributes(ctx, realm)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(attrs, func(a keycloak.UserProfileAttribute) bool { return a.Name == "ziti_id" })
	if i < 0 || !slices.Equal(attrs[i].EditRoles, []string{"admin"}) || slices.IndexFunc(attrs, func(a keycloak.UserProfileAttribute) bool { return a.Name == "email" }) < 0 {
		t.Fatalf("user profile attributes %+v", attrs)
	}

	// a confidential client with direct grants, then a masked update
	secret := redact.NewSecret("cl13nt-s3cret")
	id, err := kc.CreateClient(ctx, realm, keycloak.OIDCClient{ClientID: "svc", Enabled: true, DirectAccessGrants: true, Secret: secret,
		RedirectURIs: []string{"http://localhost/cb"}, Attributes: map[string]string{"a": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kc.GetClient(ctx, realm, "svc")
	if err != nil || cl.ID != id || cl.Public || cl.Secret.Value() != secret.Value() || cl.Attributes["a"] != "1" {
		t.Fatalf("GetClient = %+v, %v", cl, err)
	}
	cl.Attributes = map[string]string{keycloak.AttrDeviceGrant: "true"}
	cl.WebOrigins = []string{"+"}
	if err := kc.UpdateClient(ctx, realm, *cl, keycloak.AttributeField(keycloak.AttrDeviceGrant), keycloak.ClientWebOrigins); err != nil {
		t.Fatal(err)
	}
	cl, _ = kc.GetClient(ctx, realm, "svc")
	if cl.Attributes["a"] != "1" || cl.Attributes[keycloak.AttrDeviceGrant] != "true" || !slices.Equal(cl.WebOrigins, []string{"+"}) || !cl.DirectAccessGrants {
		t.Fatalf("after masked client update: %+v", cl)
	}
	if _, err := kc.GetClient(ctx, realm, "nope"); !keycloak.IsNotFound(err) {
		t.Fatalf("missing client: %v", err)
	}

	// mappers: audience and a user attribute claim
	aud := keycloak.ProtocolMapper{Name: "aud", Type: "oidc-audience-mapper", Config: map[string]string{"included.custom.audience": "first", "access.token.claim": "true"}}
	audID, err := kc.CreateProtocolMapper(ctx, realm, id, aud)
	if err != nil {
		t.Fatal(err)
	}
	claim := keycloak.ProtocolMapper{Name: "ziti_id", Type: "oidc-usermodel-attribute-mapper", Config: map[string]string{
		"user.attribute": "ziti_id", "claim.name": "ziti_id", "jsonType.label": "String", "access.token.claim": "true"}}
	if _, err := kc.CreateProtocolMapper(ctx, realm, id, claim); err != nil {
		t.Fatal(err)
	}
	aud.ID, aud.Config = audID, map[string]string{"included.custom.audience": "openziti"}
	if err := kc.UpdateProtocolMapper(ctx, realm, id, aud, keycloak.ConfigPrefix+"included.custom.audience"); err != nil {
		t.Fatal(err)
	}
	ms, err := kc.ProtocolMappers(ctx, realm, id)
	if err != nil || len(ms) != 2 {
		t.Fatalf("mappers %+v %v", ms, err)
	}
	for _, m := range ms {
		if m.Name == "aud" && (m.Config["included.custom.audience"] != "openziti" || m.Config["access.token.claim"] != "true") {
			t.Fatalf("audience mapper after masked update: %+v", m)
		}
	}

	// a user whose attribute survives (declared in the user profile) and who can log in
	pw := redact.NewSecret("us3r-Passw0rd")
	uid, err := kc.CreateUser(ctx, realm, keycloak.User{Username: "alice", Email: "alice@example.test", FirstName: "Alice", LastName: "Test",
		Enabled: true, EmailVerified: true, Attributes: map[string][]string{"ziti_id": {"alice-1"}}}, pw)
	if err != nil {
		t.Fatal(err)
	}
	u, err := kc.GetUser(ctx, realm, "alice")
	if err != nil || u.ID != uid || u.Attributes["ziti_id"][0] != "alice-1" {
		t.Fatalf("GetUser = %+v, %v", u, err)
	}
	u.FirstName = "Alicia"
	if err := kc.UpdateUser(ctx, realm, *u, keycloak.UserFirstName); err != nil {
		t.Fatal(err)
	}
	u, _ = kc.GetUser(ctx, realm, "alice")
	if u.FirstName != "Alicia" || u.Attributes["ziti_id"][0] != "alice-1" || u.Email != "alice@example.test" {
		t.Fatalf("after masked user update: %+v", u)
	}
	tok, err := kc.Token(ctx, realm, "svc", secret.Value(), "alice", pw.Value())
	if err != nil {
		t.Fatal(err)
	}
	claims := testutil.Claims(t, tok)
	if claims["ziti_id"] != "alice-1" || !testutil.HasAudience(claims["aud"], "openziti") {
		t.Fatalf("token claims %v; want ziti_id alice-1 and audience openziti", claims)
	}
	if _, err := kc.Token(ctx, realm, "svc", secret.Value(), "alice", "wrong"); !keycloak.IsInvalidCredentials(err) {
		t.Fatalf("wrong user password: %v; want invalid credentials", err)
	}
	if err := kc.SetPassword(ctx, realm, uid, redact.NewSecret("n3w-Passw0rd")); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.Token(ctx, realm, "admin-cli", "", "alice", "n3w-Passw0rd"); err != nil {
		t.Fatalf("login with the new password through the realm's admin-cli: %v", err)
	}

	per, log := counter.Snapshot()
	t.Logf("mutating calls: %d %v", per[keycloak.System], log)
	if per[keycloak.System] == 0 || slices.ContainsFunc(log, func(s string) bool { return strings.HasSuffix(s, "/token") }) {
		t.Fatalf("counted writes %v: want the writes and no token request", log)
	}
}

// The tool's Keycloak client trusts KEYCLOAK_CA_FILE alone (as the bootstrap job and the converge service do
// inside the Swarm): the test bed's Keycloak behind a TLS endpoint answers the admin login when that file holds
// the endpoint's CA; with the system's CA bundle in it the login fails on the certificate, and a file without a
// certificate is an invalid KEYCLOAK_CA_FILE.
func TestKeycloakClientTrustsItsCAFileOnly(t *testing.T) {
	opts := keycloaktest.Options(t, nil)
	front := httptest.NewTLSServer(httputil.NewSingleHostReverseProxy(opts.URL))
	t.Cleanup(front.Close)
	u, err := url.Parse(front.URL)
	testutil.Must(t, err)
	opts.URL = u
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		testutil.Must(t, os.WriteFile(p, []byte(data), 0o600))
		return p
	}
	ctx := testutil.Context(t, time.Minute)

	opts.CAFile = write("ca.pem", testutil.CertPEM(front.Certificate()))
	if _, err := keycloak.New(ctx, opts); err != nil {
		t.Fatalf("admin login over TLS with KEYCLOAK_CA_FILE holding its CA: %v", err)
	}

	opts.CAFile = "/etc/ssl/certs/ca-certificates.crt"
	if _, err := keycloak.New(ctx, opts); err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Errorf("with another CA bundle: %v; want the certificate refused", err)
	}

	opts.CAFile = write("empty.pem", "no certificate\n")
	if _, err := keycloak.Dial(opts); !invalid.Is(err) || !strings.Contains(err.Error(), "KEYCLOAK_CA_FILE") {
		t.Errorf("a CA file without a certificate: %v; want an invalid KEYCLOAK_CA_FILE", err)
	}
}

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
