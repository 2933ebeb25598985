package keycloakrealm

import (
	"context"
	"fmt"
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
}

// ZitiSigner reads the realm's discovery document and returns the signer settings matching it and the
// declaration. The issuer and JWKS endpoint are as seen from this process's Keycloak URL: tokens carry the
// issuer of the URL users log in at, so Keycloak must have a fixed hostname (KC_HOSTNAME) if the two differ.
func (s *Step) ZitiSigner(ctx context.Context) (ZitiSigner, error) {
	iss, jwks, _, _, err := s.api.Discovery(ctx, s.d.Realm)
	if err != nil {
		return ZitiSigner{}, fmt.Errorf("%s: Ziti signer settings: %w", Name, err)
	}
	return ZitiSigner{
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
