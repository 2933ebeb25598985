// Package zitioidc is the step "ziti/oidc": the OpenZiti side of "people log in to Ziti with OIDC tokens from
// Keycloak". It ensures an external JWT signer that accepts the realm's tokens, an auth policy that lets
// identities log in with exactly that signer, and (optionally) moves named identities onto that policy.
//
// # Input
//
// The signer's settings come from a SignerSource, in production the keycloak/realm step
// ((*keycloakrealm.Step).ZitiSigner): issuer and JWKS endpoint from the realm's discovery document, audience,
// client ID and identity claim from the same declaration that configures the realm's clients. The two sides
// therefore cannot drift apart: change the audience in the declaration and both the Keycloak mapper and the
// Ziti signer are updated in the same run. Settings adds what is Ziti's own business: the names of the two
// objects, the scopes tunnelers request, and the identities to attach.
//
// # What is written
//
//	external JWT signer  Settings.SignerName (default "keycloak")
//	    issuer, jwksEndpoint, audience, clientId, externalAuthUrl, claimsProperty, useExternalId, targetToken
//	    from the source; enabled; scopes (default ["openid"]); no certPem, no kid (keys come from the JWKS)
//	auth policy          Settings.AuthPolicyName (default "keycloak-users")
//	    primary ext-jwt allowed, allowed signers = [this signer] and nothing else;
//	    primary cert and primary updb (password) NOT allowed; no secondary factor
//	identities           Settings.AttachIdentities: authPolicyId = the policy above (other fields are kept;
//	                     administrators are refused, so that ziti-bootstrap cannot lock itself out)
//
// The auth policy is meant for people. They log in only with a Keycloak token, so everything Keycloak decides
// (a disabled account, a reset password, MFA, session limits) is final: an enrolled certificate or a Ziti
// password left on the identity cannot bypass it. Put a second factor in Keycloak, not in this policy.
// Moving an identity that logs in with a certificate onto this policy is therefore a deliberate switch: it
// can no longer log in with that certificate.
//
// Ziti's built-in "default" auth policy allows ext-jwt with any signer. An identity that keeps the default
// policy and whose externalId equals a Keycloak user's claim can log in with that user's token too. This step
// does not change the default policy; attach people to this policy, and keep externalIds of other identities
// (e.g. SPIFFE IDs) distinct from the claim's values (Keycloak only lets administrators set the claim).
//
// # Ownership
//
// Both objects carry the tag OwnerTag=OwnerValue ("ziti-bootstrap": "oidc"); their other tags are kept.
// An object of the configured name without that tag belongs to someone else: planning fails and says how to
// resolve it (choose another name in the settings, or tag the object to hand it over). A signer of another
// name with the realm's issuer also fails the plan: the controller allows one signer per issuer. Nothing is
// ever deleted; identities no longer listed in AttachIdentities keep their policy.
//
// # Reconciliation
//
// Plan reads the signer settings from the source, the signer by name (and any signer with the issuer), the
// policy by name and the listed identities, and plans a create for each missing object and an update listing
// the differing fields for each differing one. On a converged system the plan is empty and apply makes no
// call. Creating the signer takes two writes: controller 1.7.2 drops the tags of a create. So that a run that
// dies between them leaves nothing another run would take for someone else's signer, the signer is created
// under its name plus ziti.CreatingSuffix and given its name and tags by the second write; a signer so named is
// an unfinished create, which the next plan finishes with an update.
//
// The controller loads created and updated signers asynchronously, so a login right after apply may be refused
// for a moment. It keeps signers in memory by issuer and, in 1.7.2, an issuer update does not drop the old
// issuer: tokens of the old issuer keep logging in until the controller restarts. The plan says so when the
// issuer changes (e.g. a new KC_HOSTNAME or realm).
package zitioidc
