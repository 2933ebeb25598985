package zitioidc

import (
	"context"

	"github.com/ziti-bootstrap/ziti-bootstrap/steps/keycloakrealm"
)

// controllerJWKS is a SignerSource whose JWKS endpoint is the controller's own setting (KEYCLOAK_JWKS_URL): the
// address at which the controller reaches Keycloak, which is not the one this process reaches it at (the realm's
// discovery document names the JWKS at the address it was asked at). Every run then wants the same signer,
// wherever it runs: the bootstrap job inside the Swarm as an operator's plan from a laptop.
type controllerJWKS struct {
	SignerSource
	url string
}

func (c controllerJWKS) ZitiSigner(ctx context.Context) (keycloakrealm.ZitiSigner, error) {
	s, err := c.SignerSource.ZitiSigner(ctx)
	s.JWKSEndpoint = c.url
	return s, err
}
