// Package keycloakrealm is the step "keycloak/realm": it makes a Keycloak realm ready for OpenZiti logins. It
// ensures the realm, a public client for the tunnelers (authorization code flow and the device authorization
// grant), optionally a confidential client, on each client an audience mapper and a mapper for the
// claim Ziti finds identities by, the user-profile declaration of that claim's attribute, and (for development)
// users with passwords.
//
// Ownership: realms and clients it manages carry the attribute ziti-bootstrap.managed=true, and its protocol
// mappers are named ziti-bootstrap-*. It only deletes what carries those marks (a managed client no longer
// declared, a ziti-bootstrap-* mapper no longer wanted). Existing realms and clients that lack the mark are
// adopted: the plan says so, and the mark is one of the fields it writes. Users are never deleted.
//
// ZitiSigner derives what the Ziti external JWT signer needs from the realm's discovery document and the same
// declaration, so the two sides cannot drift apart.
package keycloakrealm

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
)

// Defaults of the declaration.
const (
	DefaultClientID      = "openziti"
	DefaultAudience      = "openziti"
	DefaultIdentityClaim = "email"
)

// DefaultRedirectURIs are where the OpenZiti tunnelers receive the authorization code (they listen on port
// 20314).
var DefaultRedirectURIs = []string{"http://localhost:20314/auth/callback", "http://127.0.0.1:20314/auth/callback"}

// Declaration is what the realm should contain.
type Declaration struct {
	// Realm is the realm's name (KEYCLOAK_REALM). The master realm is refused.
	Realm string
	// DisplayName is shown on the login page; empty leaves it as it is.
	DisplayName string
	// AccessTokenLifespan of tokens issued in the realm; zero leaves it as it is (Keycloak's default is 5 min).
	AccessTokenLifespan time.Duration

	// Public is the client the tunnelers log in with.
	Public PublicClient
	// Confidential is an optional client with a secret (e.g. for a service that obtains tokens itself).
	Confidential *ConfidentialClient

	// Audience is put in the aud claim of every token of the clients above; Ziti's signer checks it.
	// Default "openziti".
	Audience string
	// IdentityClaim is the claim Ziti matches to an identity's externalId. "email" (the default) is the user's
	// e-mail address; any other name (e.g. "ziti_id") is a user attribute of that name. Either is declared in the
	// realm's user profile so that only administrators may set it.
	IdentityClaim string

	// DevUsers are created for development and tests; never declare them in production.
	DevUsers []DevUser
}

// PublicClient is the tunnelers' client: authorization code flow and the device authorization grant, no secret.
type PublicClient struct {
	ClientID     string   // default "openziti"
	RedirectURIs []string // default DefaultRedirectURIs
	WebOrigins   []string // CORS origins; nil leaves them to Keycloak (which derives them from the redirect URIs)
	// RequirePKCE makes Keycloak refuse requests without an S256 code challenge. Keycloak applies this to the
	// device authorization endpoint too ("Missing parameter: code_challenge_method"), so only set it when every
	// device-flow client sends a code challenge. False leaves the client's setting as it is.
	RequirePKCE bool
	// DirectAccessGrants enables the resource owner password grant (username and password sent to Keycloak by
	// the application). Only for tests and development.
	DirectAccessGrants bool
}

// ConfidentialClient is a client that authenticates with a secret.
type ConfidentialClient struct {
	ClientID string
	// Secret is the client secret; when unset Keycloak generates one on creation and it is not managed after.
	Secret             config.Secret
	StandardFlow       bool
	ServiceAccounts    bool // client credentials grant
	DirectAccessGrants bool
	RedirectURIs       []string
}

// DevUser is a development user with a permanent password.
type DevUser struct {
	Username string // 3 or more characters; Keycloak stores it in lower case
	Password config.Secret
	Email    string // required; stored in lower case
	// FirstName and LastName default to the username and "Dev": since Keycloak 24 a user without them cannot
	// log in with a password grant ("Account is not fully set up").
	FirstName, LastName string
	// Attributes are single-valued user attributes, e.g. {"ziti_id": "alice"}; each is declared in the user
	// profile.
	Attributes map[string]string
}

var (
	realmName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	clientID  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]*$`)
	attrName  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)
)

// claimsKeycloakSets are claims Keycloak fills itself; a mapper must not overwrite them.
var claimsKeycloakSets = []string{"sub", "iss", "aud", "exp", "iat", "nbf", "jti", "azp", "typ", "sid", "scope", "acr", "auth_time", "session_state"}

// profileBuiltins are user-profile attributes that are user fields, not custom attributes.
var profileBuiltins = []string{"username", "email", "firstName", "lastName"}

// withDefaults fills in defaults and validates d; every problem is reported at once.
func withDefaults(d Declaration) (Declaration, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	switch {
	case d.Realm == "":
		bad("Realm: required (KEYCLOAK_REALM)")
	case strings.EqualFold(d.Realm, "master"):
		bad("Realm: %q is Keycloak's administration realm; choose a dedicated realm such as openziti", d.Realm)
	case !realmName.MatchString(d.Realm):
		bad("Realm: %q: use letters, digits, '.', '_' and '-'", d.Realm)
	}
	if d.AccessTokenLifespan < 0 || d.AccessTokenLifespan%time.Second != 0 {
		bad("AccessTokenLifespan: %s: must be a positive whole number of seconds", d.AccessTokenLifespan)
	}
	if d.Audience == "" {
		d.Audience = DefaultAudience
	}
	if d.IdentityClaim == "" {
		d.IdentityClaim = DefaultIdentityClaim
	}
	if !attrName.MatchString(d.IdentityClaim) || slices.Contains(claimsKeycloakSets, d.IdentityClaim) || (d.IdentityClaim != "email" && slices.Contains(profileBuiltins, d.IdentityClaim)) {
		bad("IdentityClaim: %q: use \"email\" or the name of a user attribute such as ziti_id (letters, digits, '_', '-'; not a claim Keycloak sets itself)", d.IdentityClaim)
	}

	if d.Public.ClientID == "" {
		d.Public.ClientID = DefaultClientID
	}
	if d.Public.RedirectURIs == nil {
		d.Public.RedirectURIs = slices.Clone(DefaultRedirectURIs)
	}
	if !clientID.MatchString(d.Public.ClientID) {
		bad("Public.ClientID: %q: use letters, digits, '.', '_', ':' and '-'", d.Public.ClientID)
	}
	if c := d.Confidential; c != nil {
		switch {
		case c.ClientID == "":
			bad("Confidential.ClientID: required")
		case !clientID.MatchString(c.ClientID):
			bad("Confidential.ClientID: %q: use letters, digits, '.', '_', ':' and '-'", c.ClientID)
		case c.ClientID == d.Public.ClientID:
			bad("Confidential.ClientID: %q is the public client's ID; choose another", c.ClientID)
		}
		if !c.StandardFlow && !c.ServiceAccounts && !c.DirectAccessGrants {
			bad("Confidential: enable at least one of StandardFlow, ServiceAccounts, DirectAccessGrants")
		}
	}

	seen := map[string]bool{}
	users := make([]DevUser, 0, len(d.DevUsers))
	for i, u := range d.DevUsers {
		at := fmt.Sprintf("DevUsers[%d]", i)
		u.Username = strings.ToLower(u.Username)
		u.Email = strings.ToLower(u.Email)
		switch {
		case len(u.Username) < 3:
			bad("%s.Username: %q: at least 3 characters", at, u.Username)
		case seen[u.Username]:
			bad("%s.Username: %q declared twice", at, u.Username)
		}
		seen[u.Username] = true
		if !u.Password.IsSet() {
			bad("%s.Password: required for %q", at, u.Username)
		}
		if u.Email == "" {
			// Keycloak's default user profile requires e-mail, first and last name of users: without them a
			// password grant fails with "Account is not fully set up".
			bad("%s.Email: required for %q (Keycloak refuses logins of users without one)", at, u.Username)
		}
		if d.IdentityClaim != "email" && u.Attributes[d.IdentityClaim] == "" {
			bad("%s.Attributes: %q needs attribute %q, the identity claim", at, u.Username, d.IdentityClaim)
		}
		for k := range u.Attributes {
			if !attrName.MatchString(k) || slices.Contains(profileBuiltins, k) {
				bad("%s.Attributes: %q is not a custom attribute name (letters, digits, '_', '-'; not username, email, firstName, lastName)", at, k)
			}
		}
		if u.FirstName == "" {
			u.FirstName = u.Username
		}
		if u.LastName == "" {
			u.LastName = "Dev"
		}
		users = append(users, u)
	}
	d.DevUsers = users
	if len(errs) > 0 {
		return d, errors.Join(errs...)
	}
	return d, nil
}

// profileAttributes are the user attributes the realm's user profile must declare, only administrators editing
// them: the identity claim's attribute (email included: a user who could set their own address to another
// identity's externalId would log in as that identity) and every attribute of a dev user, sorted.
func (d Declaration) profileAttributes() []string {
	names := []string{d.IdentityClaim}
	for _, u := range d.DevUsers {
		for k := range u.Attributes {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}
