package ziti

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openziti/edge-api/rest_management_api_client/current_api_session"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/invalid"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/redact"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
)

func TestLoginPingAndReadsCountNoWrites(t *testing.T) {
	c, counter := login(t)
	ctx := ctxFor(t)
	v, err := c.Ping(ctx)
	if err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if v == "" {
		t.Error("Ping returned an empty version")
	}
	t.Logf("controller version %q", v)
	for name, list := range map[string]func() error{
		"CAs":           func() error { _, err := c.ListCAs(ctx, ""); return err },
		"identities":    func() error { _, err := c.ListIdentities(ctx, ""); return err },
		"signers":       func() error { _, err := c.ListExtJWTSigners(ctx, ""); return err },
		"auth policies": func() error { _, err := c.ListAuthPolicies(ctx, ""); return err },
	} {
		if err := list(); err != nil {
			t.Errorf("list %s: %v", name, err)
		}
	}
	ids, err := c.ListIdentities(ctx, "isDefaultAdmin = true")
	if err != nil || len(ids) != 1 || !ids[0].IsAdmin {
		t.Errorf("ListIdentities(isDefaultAdmin) = %+v, %v; want the one default admin", ids, err)
	}
	pols, err := c.ListAuthPolicies(ctx, FilterEq("id", DefaultAuthPolicyID))
	if err != nil || len(pols) != 1 || !pols[0].PrimaryUpdbAllowed {
		t.Errorf("ListAuthPolicies(default) = %+v, %v", pols, err)
	}
	if n := counter.Writes(); n != 0 {
		_, log := counter.Snapshot()
		t.Errorf("login, ping and lists counted %d writes, want 0: %v", n, log)
	}
	if !slices.Contains(counter.Systems(), System) {
		t.Errorf("counter saw systems %v, want %q", counter.Systems(), System)
	}
}

func TestWrongPasswordIsInvalidConfigAndPermanent(t *testing.T) {
	z := bed(t)
	opts := optionsFor(t, z, nil)
	const wrong = "Not-The-Password-7c1e"
	opts.Password = redact.NewSecret(wrong)
	start := time.Now()
	var attempts int
	err := wait.For(ctxFor(t), wait.Target{What: "OpenZiti controller", Where: z.URL, Deadline: 30 * time.Second},
		func(ctx context.Context) error {
			attempts++
			_, err := New(ctx, opts)
			return err
		})
	if err == nil {
		t.Fatal("login with a wrong password succeeded")
	}
	if !invalid.Is(err) || !errors.Is(err, ErrLoginRejected) {
		t.Fatalf("want an invalid-configuration error caused by ErrLoginRejected, got %T: %v", err, err)
	}
	if attempts != 1 || time.Since(start) > 10*time.Second {
		t.Errorf("wrong password was retried (%d attempts, %s); want one permanent failure", attempts, time.Since(start))
	}
	msg := err.Error()
	if strings.Contains(msg, wrong) || strings.Contains(msg, z.Password) {
		t.Errorf("error reveals a password: %s", msg)
	}
	for _, want := range []string{"ZITI_PWD", "ZITI_USER"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not name %s", msg, want)
		}
	}
	t.Logf("error: %v", err)
}

// With DEBUG set, the go-openapi runtime would dump requests, the login's password included, to stderr.
func TestDebugEnvDoesNotDumpPassword(t *testing.T) {
	z := bed(t)
	t.Setenv("DEBUG", "1")
	t.Setenv("SWAGGER_DEBUG", "1")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := os.Stderr
	os.Stderr = w
	done := make(chan string)
	go func() { b, _ := io.ReadAll(r); done <- string(b) }()
	c, err := New(ctxFor(t), optionsFor(t, z, nil))
	if err == nil {
		_, err = c.ListCAs(ctxFor(t), "")
	}
	os.Stderr = stderr
	w.Close()
	out := <-done
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, z.Password) || strings.Contains(out, "zt-session") {
		t.Errorf("stderr shows credentials:\n%s", out)
	}
}

func TestWrongCAFileIsInvalidConfig(t *testing.T) {
	z := bed(t)
	other := newCert(t, nil, "unrelated root", nil, true)
	file := filepath.Join(t.TempDir(), "other.pem")
	if err := os.WriteFile(file, []byte(other.pem()), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := optionsFor(t, z, nil)
	opts.CAFile = file
	_, err := New(ctxFor(t), opts)
	if !invalid.Is(err) || !strings.Contains(err.Error(), "ZITI_CA_FILE") {
		t.Fatalf("New with an unrelated CA: want invalid configuration naming ZITI_CA_FILE, got %v", err)
	}
	if _, err := Probe(ctxFor(t), opts); !invalid.Is(err) {
		t.Errorf("Probe with an unrelated CA: want invalid configuration, got %v", err)
	}

	empty := filepath.Join(t.TempDir(), "empty.pem")
	_ = os.WriteFile(empty, []byte("not a certificate\n"), 0o600)
	opts.CAFile = empty
	if _, err := New(ctxFor(t), opts); !invalid.Is(err) {
		t.Errorf("New with a CA file without certificates: want invalid configuration, got %v", err)
	}
	opts.CAFile, opts.TOFU = "", false
	if _, err := New(ctxFor(t), opts); !invalid.Is(err) {
		t.Errorf("New without CA file and TOFU: want invalid configuration, got %v", err)
	}
}

func TestTOFU(t *testing.T) {
	z := bed(t)
	opts := optionsFor(t, z, calls.New())
	opts.CAFile, opts.TOFU = "", true
	c, err := New(ctxFor(t), opts)
	if err != nil {
		t.Fatalf("New with TOFU: %v", err)
	}
	if _, err := c.ListCAs(ctxFor(t), ""); err != nil {
		t.Errorf("ListCAs over the TOFU pool: %v", err)
	}
	v, err := Probe(ctxFor(t), opts)
	if err != nil || v == "" {
		t.Errorf("Probe with TOFU = %q, %v", v, err)
	}
}

func TestUnreachableIsRetryable(t *testing.T) {
	addr := testutil.FreeAddr(t) // nothing listens here now
	opts := optionsFor(t, bed(t), nil)
	opts.URL = &url.URL{Scheme: "https", Host: addr}
	_, err := New(ctxFor(t), opts)
	if err == nil || invalid.Is(err) {
		t.Fatalf("New against a closed port: want a plain (retryable) error, got %v", err)
	}
	err = wait.For(ctxFor(t), wait.Target{What: "OpenZiti controller", Where: addr, Deadline: time.Second},
		func(ctx context.Context) error { _, err := New(ctx, opts); return err })
	var ue *wait.UnreachableError
	if !errors.As(err, &ue) || ue.Attempts < 2 {
		t.Errorf("wait.For(New) against a closed port = %v; want UnreachableError after several attempts", err)
	}

	opts.URL = &url.URL{Scheme: "http", Host: addr}
	if _, err := New(ctxFor(t), opts); !invalid.Is(err) {
		t.Errorf("http:// URL: want invalid configuration, got %v", err)
	}
}

func TestRelogin(t *testing.T) {
	c, _ := login(t)
	ctx := ctxFor(t)
	// log the session out behind the client's back
	if _, err := c.mgmt.CurrentAPISession.DeleteCurrentAPISession(current_api_session.NewDeleteCurrentAPISessionParamsWithContext(ctx), c.session()); err != nil {
		t.Fatalf("log out: %v", err)
	}
	if _, err := c.ListCAs(ctx, ""); err != nil {
		t.Fatalf("ListCAs after the session ended: %v", err)
	}
	if c.logins != 2 {
		t.Errorf("logins = %d, want 2 (one re-login)", c.logins)
	}
}

func TestCARoundTrip(t *testing.T) {
	c, counter := login(t)
	ctx := ctxFor(t)
	m := &writeMeter{c: counter}
	sfx := suffix(t)
	root := newCert(t, nil, "zb test root "+sfx, nil, true)
	name := "zb-test-ca-" + sfx

	id, err := c.CreateCA(ctx, CA{
		Name: name, CertPEM: root.pem(), IdentityRoles: []string{"zb-test"},
		IsAuthEnabled: true, IsAutoCaEnrollmentEnabled: true, Tags: map[string]any{"managedBy": "zb-test"},
	})
	if err != nil {
		t.Fatalf("CreateCA: %v", err)
	}
	t.Cleanup(func() { _ = c.DeleteCA(context.Background(), id) })
	if d := m.delta(); d != 1 {
		t.Errorf("CreateCA counted %d writes, want 1", d)
	}

	ca := onlyNamed(t, ctx, name, c.ListCAs)
	if ca.ID != id || ca.IsVerified || ca.VerificationToken == "" || !ca.IsAuthEnabled || !ca.IsAutoCaEnrollmentEnabled ||
		ca.IsOttCaEnrollmentEnabled || !slices.Equal(ca.IdentityRoles, []string{"zb-test"}) || ca.Tags["managedBy"] != "zb-test" ||
		ca.IdentityNameFormat != DefaultIdentityNameFormat || ca.Fingerprint == "" || ca.ExternalIDClaim != nil {
		t.Errorf("listed CA = %+v", ca)
	}
	if strings.TrimSpace(ca.CertPEM) != strings.TrimSpace(root.pem()) {
		t.Errorf("CertPEM differs from the registered one")
	}
	if d := m.delta(); d != 0 {
		t.Errorf("ListCAs counted %d writes, want 0", d)
	}

	// duplicate name refused, with the controller's code in the error
	_, err = c.CreateCA(ctx, CA{Name: name, CertPEM: newCert(t, nil, "other", nil, true).pem()})
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status < 400 || !strings.Contains(err.Error(), "create CA "+name) {
		t.Errorf("duplicate CreateCA: want an *APIError naming the operation, got %v", err)
	} else {
		t.Logf("duplicate CreateCA: %v", err)
	}
	m.delta()

	claim := &ExternalIDClaim{Location: ClaimLocationSANURI, Matcher: ClaimMatcherScheme, MatcherCriteria: "spiffe", Parser: ClaimParserNone}
	upd := ca
	upd.IdentityRoles = []string{"zb-test", "zb-test-2"}
	upd.IdentityNameFormat = "[caName]-[requestedName]"
	upd.ExternalIDClaim = claim
	upd.Tags = map[string]any{"managedBy": "zb-test", "rev": "2"}
	if err := c.UpdateCA(ctx, id, upd); err != nil {
		t.Fatalf("UpdateCA: %v", err)
	}
	got, err := c.GetCA(ctx, id)
	if err != nil {
		t.Fatalf("GetCA: %v", err)
	}
	if !slices.Equal(got.IdentityRoles, upd.IdentityRoles) || got.IdentityNameFormat != upd.IdentityNameFormat ||
		got.ExternalIDClaim == nil || *got.ExternalIDClaim != *claim || got.Tags["rev"] != "2" || !got.IsAuthEnabled {
		t.Errorf("after UpdateCA: %+v (claim %+v)", got, got.ExternalIDClaim)
	}
	upd.ExternalIDClaim = nil
	if err := c.UpdateCA(ctx, id, upd); err != nil {
		t.Fatalf("UpdateCA without claim: %v", err)
	}
	if got, _ := c.GetCA(ctx, id); got.ExternalIDClaim != nil {
		t.Errorf("UpdateCA with nil ExternalIDClaim left %+v", got.ExternalIDClaim)
	}
	if d := m.delta(); d != 2 {
		t.Errorf("two UpdateCA counted %d writes, want 2", d)
	}

	// a verification cert with the wrong CN is refused
	bad, err := VerificationCert("not-the-token", root.cert, root.key)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.VerifyCA(ctx, id, bad); err == nil {
		t.Error("VerifyCA with a wrong CN succeeded")
	} else if !errors.As(err, &apiErr) {
		t.Errorf("VerifyCA with a wrong CN: want *APIError, got %v", err)
	} else {
		t.Logf("VerifyCA with a wrong CN: %v", err)
	}
	// one signed by another key is refused
	other := newCert(t, nil, "zb other root "+sfx, nil, true)
	forged, _ := VerificationCert(ca.VerificationToken, other.cert, other.key)
	if err := c.VerifyCA(ctx, id, forged); err == nil {
		t.Error("VerifyCA with a certificate from another CA succeeded")
	}
	good, err := VerificationCert(ca.VerificationToken, root.cert, root.key)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.VerifyCA(ctx, id, good); err != nil {
		t.Fatalf("VerifyCA: %v", err)
	}
	if got, err := c.GetCA(ctx, id); err != nil || !got.IsVerified {
		t.Errorf("after VerifyCA: IsVerified=%v, %v", got.IsVerified, err)
	}
	if d := m.delta(); d != 3 {
		t.Errorf("three VerifyCA counted %d writes, want 3", d)
	}

	if err := c.DeleteCA(ctx, id); err != nil {
		t.Fatalf("DeleteCA: %v", err)
	}
	if _, err := c.GetCA(ctx, id); !IsNotFound(err) {
		t.Errorf("GetCA after delete: want not found, got %v", err)
	}
	if cas, err := c.ListCAs(ctx, FilterEq("name", name)); err != nil || len(cas) != 0 {
		t.Errorf("ListCAs after delete = %+v, %v", cas, err)
	}
	if err := c.DeleteCA(ctx, id); !IsNotFound(err) {
		t.Errorf("second DeleteCA: want not found, got %v", err)
	}
	if d := m.delta(); d != 2 {
		t.Errorf("two DeleteCA counted %d writes, want 2", d)
	}
}

// registerCA creates, verifies and schedules the removal of a CA for root, and of the identities enrolled by it.
func registerCA(t *testing.T, c *Client, ca CA, root keyPair) CA {
	t.Helper()
	ctx := ctxFor(t)
	ca.CertPEM = root.pem()
	id, err := c.CreateCA(ctx, ca)
	if err != nil {
		t.Fatalf("CreateCA: %v", err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		ids, _ := c.ListIdentities(ctx, `name contains `+Quote(ca.Name))
		for _, i := range ids {
			_ = c.DeleteIdentity(ctx, i.ID)
		}
		_ = c.DeleteCA(ctx, id)
	})
	got, err := c.GetCA(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	proof, err := VerificationCert(got.VerificationToken, root.cert, root.key)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.VerifyCA(ctx, id, proof); err != nil {
		t.Fatalf("VerifyCA: %v", err)
	}
	got.IsVerified = true
	return got
}

func TestEnrollAndAuthenticateWithCommonName(t *testing.T) {
	c, counter := login(t)
	ctx := ctxFor(t)
	sfx := suffix(t)
	root := newCert(t, nil, "zb test root "+sfx, nil, true)
	ca := registerCA(t, c, CA{
		Name: "zb-cn-" + sfx, IdentityRoles: []string{"zb-devices"}, IdentityNameFormat: "[caName]-[commonName]",
		IsAuthEnabled: true, IsAutoCaEnrollmentEnabled: true,
	}, root)
	api := c.ClientAPI()

	leaf := newCert(t, &root, "device-1", nil, false)
	m := &writeMeter{c: counter, last: counter.Writes()}
	if err := api.EnrollWithCA(ctx, tlsCert(leaf), ""); err != nil {
		t.Fatalf("EnrollWithCA: %v", err)
	}
	if d := m.delta(); d != 1 {
		t.Errorf("EnrollWithCA counted %d writes, want 1", d)
	}
	want := ca.Name + "-device-1"
	enrolled := onlyNamed(t, ctx, want, c.ListIdentities)
	if !slices.Equal(enrolled.RoleAttributes, []string{"zb-devices"}) || enrolled.IsAdmin || enrolled.ExternalID != "" {
		t.Errorf("enrolled identity = %+v", enrolled)
	}

	s, err := api.AuthenticateCert(ctx, tlsCert(leaf))
	if err != nil {
		t.Fatalf("AuthenticateCert: %v", err)
	}
	if s.IdentityID != enrolled.ID || s.IdentityName != want || s.ID == "" || !s.Token.IsSet() {
		t.Errorf("session = %+v, want identity %s (%s)", s, enrolled.ID, want)
	}
	if d := m.delta(); d != 0 {
		t.Errorf("AuthenticateCert counted %d writes, want 0 (logins are reads)", d)
	}

	// enrolling the same certificate again is refused
	if err := api.EnrollWithCA(ctx, tlsCert(leaf), ""); err == nil {
		t.Error("second enrollment of the same certificate succeeded")
	} else {
		t.Logf("second enrollment: %v", err)
	}

	// a certificate from an unrelated CA is refused for enrollment and login
	stranger := newCert(t, nil, "stranger root "+sfx, nil, true)
	alien := newCert(t, &stranger, "device-1", nil, false)
	if err := api.EnrollWithCA(ctx, tlsCert(alien), ""); err == nil {
		t.Error("enrollment with a certificate from an unregistered CA succeeded")
	} else {
		t.Logf("enroll with unrelated CA: %v", err)
	}
	if _, err := api.AuthenticateCert(ctx, tlsCert(alien)); err == nil {
		t.Error("login with a certificate from an unregistered CA succeeded")
	} else {
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != 401 {
			t.Errorf("login with unrelated CA: want HTTP 401 *APIError, got %v", err)
		}
		t.Logf("login with unrelated CA: %v", err)
	}

	// once the CA's auth is disabled, its certificates no longer log in
	ca.IsAuthEnabled = false
	if err := c.UpdateCA(ctx, ca.ID, ca); err != nil {
		t.Fatal(err)
	}
	if _, err := api.AuthenticateCert(ctx, tlsCert(leaf)); err == nil {
		t.Error("login succeeded through a CA with auth disabled")
	}
}

func TestEnrollAndAuthenticateWithSPIFFEExternalID(t *testing.T) {
	c, _ := login(t)
	ctx := ctxFor(t)
	sfx := suffix(t)
	// like SPIRE with a disk UpstreamAuthority: root registered in Ziti, SVID issued by an intermediate, no CN
	root := newCert(t, nil, "zb upstream root "+sfx, nil, true)
	inter := newCert(t, &root, "zb spire intermediate "+sfx, nil, true)
	ca := registerCA(t, c, CA{
		Name: "zb-spiffe-" + sfx, IdentityRoles: []string{"spire-devices"}, IdentityNameFormat: "[caName]-[requestedName]",
		IsAuthEnabled: true, IsAutoCaEnrollmentEnabled: true,
		ExternalIDClaim: &ExternalIDClaim{Location: ClaimLocationSANURI, Matcher: ClaimMatcherScheme, MatcherCriteria: "spiffe", Parser: ClaimParserNone},
	}, root)
	api := c.ClientAPI()

	spiffeID := "spiffe://zb.test/device/gw-" + sfx
	svid := newCert(t, &inter, "", []string{spiffeID}, false)
	if err := api.EnrollWithCA(ctx, tlsCert(svid, inter), "gw-"+sfx); err != nil {
		t.Fatalf("EnrollWithCA: %v", err)
	}
	ids, err := c.ListIdentities(ctx, FilterEq("externalId", spiffeID))
	if err != nil || len(ids) != 1 {
		t.Fatalf("ListIdentities(externalId) = %+v, %v", ids, err)
	}
	if want := ca.Name + "-gw-" + sfx; ids[0].Name != want || ids[0].ExternalID != spiffeID ||
		!slices.Equal(ids[0].RoleAttributes, []string{"spire-devices"}) {
		t.Errorf("enrolled identity = %+v, want name %s", ids[0], want)
	}

	// a rotated SVID (new key, same SPIFFE ID) logs in as the same identity
	rotated := newCert(t, &inter, "", []string{spiffeID}, false)
	s, err := api.AuthenticateCert(ctx, tlsCert(rotated, inter))
	if err != nil {
		t.Fatalf("AuthenticateCert with a rotated SVID: %v", err)
	}
	if s.IdentityID != ids[0].ID {
		t.Errorf("session identity %s (%s), want %s", s.IdentityID, s.IdentityName, ids[0].ID)
	}
	// without the intermediate the chain does not reach the registered root
	if _, err := api.AuthenticateCert(ctx, tlsCert(rotated)); err == nil {
		t.Error("login without the intermediate succeeded")
	}
	// an SVID from an unrelated trust chain is refused
	stranger := newCert(t, nil, "stranger "+sfx, nil, true)
	if _, err := api.AuthenticateCert(ctx, tlsCert(newCert(t, &stranger, "", []string{spiffeID}, false))); err == nil {
		t.Error("login with an SVID of an unregistered CA succeeded")
	}
}

func TestIdentityCRUD(t *testing.T) {
	c, counter := login(t)
	ctx := ctxFor(t)
	m := &writeMeter{c: counter, last: counter.Writes()}
	sfx := suffix(t)
	name := "zb-test-identity-" + sfx
	id, err := c.CreateIdentity(ctx, Identity{Name: name, ExternalID: "ext-" + sfx, RoleAttributes: []string{"a", "b"}, Tags: map[string]any{"k": "v"}})
	if err != nil {
		t.Fatalf("CreateIdentity: %v", err)
	}
	t.Cleanup(func() { _ = c.DeleteIdentity(context.Background(), id) })
	got, err := c.GetIdentity(ctx, id)
	if err != nil || got.Name != name || got.ExternalID != "ext-"+sfx || !slices.Equal(got.RoleAttributes, []string{"a", "b"}) ||
		got.AuthPolicyID != DefaultAuthPolicyID || got.IsAdmin || got.Tags["k"] != "v" {
		t.Errorf("GetIdentity = %+v, %v", got, err)
	}
	got.RoleAttributes = []string{"c"}
	got.ExternalID = ""
	got.Tags = map[string]any{"x": "y"}
	if err := c.UpdateIdentity(ctx, id, got); err != nil {
		t.Fatalf("UpdateIdentity: %v", err)
	}
	after, err := c.GetIdentity(ctx, id)
	if err != nil || !slices.Equal(after.RoleAttributes, []string{"c"}) || after.ExternalID != "" || after.Name != name ||
		len(after.Tags) != 1 || after.Tags["x"] != "y" {
		t.Errorf("after UpdateIdentity: %+v, %v", after, err)
	}
	// role attributes come back as a sorted set; empty attributes and nil tags
	after.RoleAttributes = []string{"z", "a", "z"}
	after.Tags = nil
	if err := c.UpdateIdentity(ctx, id, after); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.GetIdentity(ctx, id); !slices.Equal(got.RoleAttributes, []string{"a", "z"}) || got.Tags["x"] != "y" {
		t.Errorf("after second UpdateIdentity: %+v", got)
	}
	after.RoleAttributes = nil
	if err := c.UpdateIdentity(ctx, id, after); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.GetIdentity(ctx, id); len(got.RoleAttributes) != 0 {
		t.Errorf("UpdateIdentity with no role attributes left %v", got.RoleAttributes)
	}
	if err := c.DeleteIdentity(ctx, id); err != nil {
		t.Fatalf("DeleteIdentity: %v", err)
	}
	if d := m.delta(); d != 5 {
		t.Errorf("create+3 updates+delete counted %d writes, want 5", d)
	}
}

func TestPagingListsEverything(t *testing.T) {
	c, _ := login(t)
	ctx := ctxFor(t)
	sfx := suffix(t)
	const n = 7
	var ids []string
	t.Cleanup(func() {
		for _, id := range ids {
			_ = c.DeleteIdentity(context.Background(), id)
		}
	})
	for i := range n {
		id, err := c.CreateIdentity(ctx, Identity{Name: fmt.Sprintf("zb-page-%s-%d", sfx, i)})
		if err != nil {
			t.Fatalf("CreateIdentity %d: %v", i, err)
		}
		ids = append(ids, id)
	}
	c.pageSize = 3 // three pages
	got, err := c.ListIdentities(ctx, `name contains `+Quote("zb-page-"+sfx))
	if err != nil || len(got) != n {
		t.Fatalf("ListIdentities = %d identities, %v; want %d", len(got), err, n)
	}
	seen := map[string]bool{}
	for _, i := range got {
		seen[i.ID] = true
	}
	if len(seen) != n {
		t.Errorf("paging returned %d distinct identities, want %d", len(seen), n)
	}
}

func TestExtJWTSignerAuthPolicyAndLogin(t *testing.T) {
	c, counter := login(t)
	ctx := ctxFor(t)
	m := &writeMeter{c: counter, last: counter.Writes()}
	sfx := suffix(t)
	signerKey := newCert(t, nil, "zb jwt signer "+sfx, nil, true)
	issuer := "https://idp.zb.test/" + sfx
	kid := "kid-" + sfx

	sid, err := c.CreateExtJWTSigner(ctx, ExtJWTSigner{
		Name: "zb-signer-" + sfx, Issuer: issuer, Audience: "ziti", CertPEM: signerKey.pem(), Kid: kid,
		ClaimsProperty: "email", UseExternalID: true, Enabled: true,
		ClientID: "ziti-client", ExternalAuthURL: "https://idp.zb.test/auth", Scopes: []string{"openid", "email"},
		Tags: map[string]any{"managedBy": "zb-test"},
	})
	if err != nil {
		t.Fatalf("CreateExtJWTSigner: %v", err)
	}
	t.Cleanup(func() { _ = c.DeleteExtJWTSigner(context.Background(), sid) })
	s := onlyNamed(t, ctx, "zb-signer-"+sfx, c.ListExtJWTSigners)
	if s.ID != sid || s.Issuer != issuer || s.Audience != "ziti" || s.Kid != kid || s.ClaimsProperty != "email" || !s.UseExternalID ||
		!s.Enabled || s.ClientID != "ziti-client" || !EqualSets(s.Scopes, []string{"openid", "email"}) || s.JWKSEndpoint != "" ||
		s.Tags["managedBy"] != "zb-test" {
		t.Errorf("listed signer = %+v", s)
	}

	pid, err := c.CreateAuthPolicy(ctx, AuthPolicy{
		Name: "zb-policy-" + sfx, PrimaryExtJWTAllowed: true, PrimaryExtJWTAllowedSigners: []string{sid},
		Tags: map[string]any{"managedBy": "zb-test"},
	})
	if err != nil {
		t.Fatalf("CreateAuthPolicy: %v", err)
	}
	t.Cleanup(func() { _ = c.DeleteAuthPolicy(context.Background(), pid) })
	pol := onlyNamed(t, ctx, "zb-policy-"+sfx, c.ListAuthPolicies)
	if !pol.PrimaryExtJWTAllowed || !slices.Equal(pol.PrimaryExtJWTAllowedSigners, []string{sid}) || pol.PrimaryUpdbAllowed ||
		pol.PrimaryCertAllowed || pol.PrimaryUpdbMinPasswordLength != MinPasswordLength {
		t.Errorf("listed policy = %+v", pol)
	}

	email := "user-" + sfx + "@zb.test"
	iid, err := c.CreateIdentity(ctx, Identity{Name: "zb-user-" + sfx, ExternalID: email, AuthPolicyID: pid})
	if err != nil {
		t.Fatalf("CreateIdentity: %v", err)
	}
	t.Cleanup(func() { _ = c.DeleteIdentity(context.Background(), iid) })
	if d := m.delta(); d != 4 {
		t.Errorf("3 creates counted %d writes, want 4 (a signer with tags takes two)", d)
	}

	claims := func(aud string) map[string]any {
		now := time.Now()
		return map[string]any{"iss": issuer, "aud": aud, "sub": "whoever", "email": email,
			"iat": now.Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(5 * time.Minute).Unix()}
	}
	api := c.ClientAPI()
	sess, err := api.AuthenticateJWT(ctx, signJWT(t, signerKey.key, kid, claims("ziti")))
	if err != nil {
		t.Fatalf("AuthenticateJWT: %v", err)
	}
	if sess.IdentityID != iid || sess.IdentityName != "zb-user-"+sfx || len(sess.AuthQueries) != 0 {
		t.Errorf("session = %+v, want identity %s", sess, iid)
	}
	if _, err := api.AuthenticateJWT(ctx, signJWT(t, signerKey.key, kid, claims("someone-else"))); err == nil {
		t.Error("a token for another audience logged in")
	}
	other := newCert(t, nil, "forger", nil, true)
	if _, err := api.AuthenticateJWT(ctx, signJWT(t, other.key, kid, claims("ziti"))); err == nil {
		t.Error("a token signed by another key logged in")
	}
	if d := m.delta(); d != 0 {
		t.Errorf("JWT logins counted %d writes, want 0", d)
	}

	// updates
	s.Audience = "ziti-2"
	s.Enabled = false
	if err := c.UpdateExtJWTSigner(ctx, sid, s); err != nil {
		t.Fatalf("UpdateExtJWTSigner: %v", err)
	}
	if got, err := c.ListExtJWTSigners(ctx, FilterEq("id", sid)); err != nil || len(got) != 1 || got[0].Audience != "ziti-2" || got[0].Enabled ||
		got[0].CertPEM == "" || got[0].Kid != kid {
		t.Errorf("after UpdateExtJWTSigner: %+v, %v", got, err)
	}
	if _, err := api.AuthenticateJWT(ctx, signJWT(t, signerKey.key, kid, claims("ziti-2"))); err == nil {
		t.Error("a disabled signer's token logged in")
	}
	p := pol
	p.PrimaryCertAllowed = true
	p.PrimaryUpdbAllowed = true
	p.PrimaryUpdbMinPasswordLength = 12
	p.PrimaryUpdbMaxAttempts = 3
	if err := c.UpdateAuthPolicy(ctx, pid, p); err != nil {
		t.Fatalf("UpdateAuthPolicy: %v", err)
	}
	if got, err := c.ListAuthPolicies(ctx, FilterEq("id", pid)); err != nil || len(got) != 1 || !got[0].PrimaryCertAllowed ||
		!got[0].PrimaryUpdbAllowed || got[0].PrimaryUpdbMinPasswordLength != 12 || got[0].PrimaryUpdbMaxAttempts != 3 ||
		!slices.Equal(got[0].PrimaryExtJWTAllowedSigners, []string{sid}) {
		t.Errorf("after UpdateAuthPolicy: %+v, %v", got, err)
	}
	if d := m.delta(); d != 2 {
		t.Errorf("2 updates counted %d writes", d)
	}

	// the signer cannot go while a policy names it; delete in dependency order
	if err := c.DeleteIdentity(ctx, iid); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteAuthPolicy(ctx, pid); err != nil {
		t.Fatalf("DeleteAuthPolicy: %v", err)
	}
	if err := c.DeleteExtJWTSigner(ctx, sid); err != nil {
		t.Fatalf("DeleteExtJWTSigner: %v", err)
	}
	if got, err := c.ListExtJWTSigners(ctx, FilterEq("id", sid)); err != nil || len(got) != 0 {
		t.Errorf("signer still listed after delete: %+v, %v", got, err)
	}
}

// TestCreateExtJWTSignerFinishesAnUnfinishedCreate: the first write of an earlier process's create (the signer
// under its unfinished name) landed after the caller listed; the create takes that signer over and finishes it
// (name and tags), instead of failing on the taken name.
func TestCreateExtJWTSignerFinishesAnUnfinishedCreate(t *testing.T) {
	c, _ := login(t)
	ctx := ctxFor(t)
	sfx := suffix(t)
	s := ExtJWTSigner{Name: "zb-signer-" + sfx, Issuer: "https://idp.zb.test/unfinished/" + sfx, Audience: "ziti",
		CertPEM: newCert(t, nil, "zb jwt signer "+sfx, nil, true).pem(), Kid: "kid-" + sfx, ClaimsProperty: "email", UseExternalID: true,
		Enabled: true, Tags: map[string]any{"managedBy": "zb-test"}}
	unfinished := s
	unfinished.Tags = nil
	unfinished.Name += CreatingSuffix
	earlier, err := c.CreateExtJWTSigner(ctx, unfinished)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.DeleteExtJWTSigner(context.Background(), earlier) })
	id, err := c.CreateExtJWTSigner(ctx, s)
	if err != nil || id != earlier {
		t.Fatalf("CreateExtJWTSigner over an unfinished create: id %s (the unfinished one: %s), %v", id, earlier, err)
	}
	got, err := c.ListExtJWTSigners(ctx, FilterEq("issuer", s.Issuer))
	if err != nil || len(got) != 1 || got[0].Name != s.Name || got[0].Tags["managedBy"] != "zb-test" {
		t.Fatalf("signers of the issuer: %+v, %v", got, err)
	}
}
