package keycloakrealm

import (
	"context"
	"fmt"
	"strings"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/keycloak"
)

// ZitiSigner is what an OpenZiti external JWT signer needs to accept this realm's tokens.
type ZitiSigner struct {
	Issuer       string // the iss of the realm's tokens
	JWKSEndpoint string // where the controller fetches the realm's signing keys
	Audience     string // the aud every token of the managed clients carries
	ClientID     string // the public client the tunnelers log in with
	// ClaimsProperty is the claim matched to an identity; UseExternalID says it is matched to the identity's
	// externalId (always true: neither an e-mail address nor a user attribute is a Ziti identity id).
	ClaimsProperty string
	UseExternalID  bool
	// ExternalAuthURL is where tunnelers start the login: the realm's URL, i.e. the issuer.
	ExternalAuthURL string
	// TargetToken is the token the tunnelers present: the access token, which carries Audience and the claim.
	TargetToken string
	// Predicted is true when the realm does not exist yet and Issuer and JWKSEndpoint are what it will publish.
	Predicted bool
}

// ZitiSigner reads the realm's discovery document and returns the signer settings matching it and the
// declaration. The issuer and JWKS endpoint are as seen from this process's Keycloak URL: tokens carry the
// issuer of the URL users log in at, so Keycloak must have a fixed hostname (KC_HOSTNAME) if the two differ.
func (s *Step) ZitiSigner(ctx context.Context) (ZitiSigner, error) {
	iss, jwks, _, _, err := s.api.Discovery(ctx, s.d.Realm)
	predicted := false
	if keycloak.IsNotFound(err) {
		// The realm does not exist yet (a plan before the first apply): predict what Keycloak will publish, the
		// realm's URL under the URL we reach Keycloak at. Apply creates the realm first, so it reads the real values.
		iss = strings.TrimSuffix(s.api.URL(), "/") + "/realms/" + s.d.Realm
		jwks, err, predicted = iss+"/protocol/openid-connect/certs", nil, true
	}
	if err != nil {
		return ZitiSigner{}, fmt.Errorf("%s: Ziti signer settings: %w", Name, err)
	}
	return ZitiSigner{
		Predicted:       predicted,
		Issuer:          iss,
		JWKSEndpoint:    jwks,
		Audience:        s.d.Audience,
		ClientID:        s.d.Public.ClientID,
		ClaimsProperty:  s.d.IdentityClaim,
		UseExternalID:   true,
		ExternalAuthURL: iss,
		TargetToken:     "ACCESS",
	}, nil
}
