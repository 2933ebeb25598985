package zitioidc_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/keycloakrealm"
)

// TestEmailChangeTakesNoIdentity: with the default identity claim (email), a user who sets their own e-mail
// address to the externalId of an identity that is not theirs (one no Keycloak user holds yet) through Keycloak's
// account API is refused, and their next token still logs in as nobody: the realm lets only administrators set
// the claim.
func TestEmailChangeTakesNoIdentity(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "takeover")
	victim := e.identity() // externalId e.email; no Keycloak user has that address
	e.set.AttachIdentities = []string{victim.Name}
	mallory, malloryMail := "mallory", "mallory-"+e.sfx+"@zb.test"
	d := keycloakrealm.Declaration{Realm: e.realm, Public: keycloakrealm.PublicClient{DirectAccessGrants: true},
		DevUsers: []keycloakrealm.DevUser{{Username: mallory, Password: config.NewSecret(password), Email: malloryMail}}}
	r := e.run(d, steps.Apply)
	testutil.MustStatus(t, r.oidc, steps.Changed)

	c := ctx(t)
	tok, err := e.kc.Token(c, e.realm, "openziti", "", mallory, password)
	testutil.Must(t, err)
	// the account console's own call: the user's profile with another e-mail address
	body, _ := json.Marshal(map[string]any{"username": mallory, "email": e.email, "firstName": mallory, "lastName": "Dev"})
	req, err := http.NewRequestWithContext(c, http.MethodPost, e.kc.URL()+"/realms/"+e.realm+"/account/", bytes.NewReader(body))
	testutil.Must(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	testutil.Must(t, err)
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	t.Logf("account API: e-mail change to %s: HTTP %d %s", e.email, resp.StatusCode, answer)

	u, err := e.kc.GetUser(c, e.realm, mallory)
	testutil.Must(t, err)
	if u.Email != malloryMail {
		t.Errorf("mallory changed their e-mail address to %s (account API: HTTP %d %s); want it to stay %s", u.Email, resp.StatusCode, answer, malloryMail)
	}
	tok, err = e.kc.Token(c, e.realm, "openziti", "", mallory, password)
	testutil.Must(t, err)
	if sess, err := e.admin.ClientAPI().AuthenticateJWT(c, tok); err == nil {
		t.Errorf("mallory logged in as %s (%s)", sess.IdentityName, describe(sess))
	}
}

func describe(s ziti.Session) string { return fmt.Sprintf("identity %s", s.IdentityID) }
