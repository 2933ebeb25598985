package zitioidc

import (
	"maps"
	"slices"
	"strings"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/keycloakrealm"
)

// Ownership mark: a tag on the signer and the auth policy.
const (
	OwnerTag   = "ziti-bootstrap"
	OwnerValue = "oidc"
)

// Change kinds of this step.
const (
	KindSigner     = "ziti-ext-jwt-signer"
	KindAuthPolicy = "ziti-auth-policy"
	KindIdentity   = "ziti-identity"
)

// Field names in plans: the controller's JSON names.
const (
	FieldName            = "name"
	FieldTags            = "tags"
	FieldIssuer          = "issuer"
	FieldAudience        = "audience"
	FieldJWKSEndpoint    = "jwksEndpoint"
	FieldCertPEM         = "certPem"
	FieldKid             = "kid"
	FieldClaimsProperty  = "claimsProperty"
	FieldUseExternalID   = "useExternalId"
	FieldEnabled         = "enabled"
	FieldClientID        = "clientId"
	FieldExternalAuthURL = "externalAuthUrl"
	FieldScopes          = "scopes"
	FieldTargetToken     = "targetToken"

	FieldCertAllowed          = "primary.cert.allowed"
	FieldCertAllowExpired     = "primary.cert.allowExpiredCerts"
	FieldExtJWTAllowed        = "primary.extJwt.allowed"
	FieldExtJWTSigners        = "primary.extJwt.allowedSigners"
	FieldUpdbAllowed          = "primary.updb.allowed"
	FieldUpdbMinLength        = "primary.updb.minPasswordLength"
	FieldUpdbSpecialChar      = "primary.updb.requireSpecialChar"
	FieldUpdbNumberChar       = "primary.updb.requireNumberChar"
	FieldUpdbMixedCase        = "primary.updb.requireMixedCase"
	FieldUpdbMaxAttempts      = "primary.updb.maxAttempts"
	FieldUpdbLockout          = "primary.updb.lockoutDurationMinutes"
	FieldSecondaryTOTP        = "secondary.requireTotp"
	FieldSecondaryExtJWT      = "secondary.requireExtJwtSigner"
	FieldIdentityAuthPolicyID = "authPolicyId"
)

// owned reports whether tags carry the ownership mark.
func owned(tags map[string]any) bool {
	v, ok := tags[OwnerTag].(string)
	return ok && v == OwnerValue
}

// withOwner returns tags plus the ownership mark, keeping the other tags.
func withOwner(tags map[string]any) map[string]any {
	out := maps.Clone(tags)
	if out == nil {
		out = map[string]any{}
	}
	out[OwnerTag] = OwnerValue
	return out
}

// wantSigner is the signer named name that accepts the tokens src describes. keepTags are the current signer's
// tags (nil when creating).
func wantSigner(name string, src keycloakrealm.ZitiSigner, scopes []string, keepTags map[string]any) ziti.ExtJWTSigner {
	return ziti.ExtJWTSigner{
		Name:            name,
		Issuer:          src.Issuer,
		Audience:        src.Audience,
		JWKSEndpoint:    src.JWKSEndpoint,
		ClaimsProperty:  src.ClaimsProperty,
		UseExternalID:   src.UseExternalID,
		Enabled:         true,
		ClientID:        src.ClientID,
		ExternalAuthURL: src.ExternalAuthURL,
		Scopes:          normalizeScopes(scopes),
		TargetToken:     src.TargetToken,
		Tags:            withOwner(keepTags),
	}
}

// signerDiff lists the fields of have that differ from want, in a fixed order.
func signerDiff(want, have ziti.ExtJWTSigner) steps.Diff {
	var f steps.Diff
	steps.Compare(&f, FieldIssuer, have.Issuer, want.Issuer)
	steps.Compare(&f, FieldAudience, have.Audience, want.Audience)
	steps.Compare(&f, FieldJWKSEndpoint, have.JWKSEndpoint, want.JWKSEndpoint)
	steps.Compare(&f, FieldCertPEM, have.CertPEM, want.CertPEM)
	steps.Compare(&f, FieldKid, have.Kid, want.Kid)
	steps.Compare(&f, FieldClaimsProperty, claimsProperty(have.ClaimsProperty), claimsProperty(want.ClaimsProperty))
	steps.Compare(&f, FieldUseExternalID, have.UseExternalID, want.UseExternalID)
	steps.Compare(&f, FieldEnabled, have.Enabled, want.Enabled)
	steps.Compare(&f, FieldClientID, have.ClientID, want.ClientID)
	steps.Compare(&f, FieldExternalAuthURL, have.ExternalAuthURL, want.ExternalAuthURL)
	f.Add(!ziti.EqualSets(want.Scopes, have.Scopes), FieldScopes, have.Scopes, want.Scopes)
	steps.Compare(&f, FieldTargetToken, targetToken(have.TargetToken), targetToken(want.TargetToken))
	return f
}

// claimsProperty is the claim the controller uses: "sub" when none is set.
func claimsProperty(s string) string {
	if s == "" {
		return "sub"
	}
	return s
}

// targetToken is the token the controller expects: "ACCESS" when none is set.
func targetToken(s string) string {
	if s == "" {
		return "ACCESS"
	}
	return strings.ToUpper(s)
}

// normalizeScopes returns the scopes sorted and without repeats, as the controller stores them.
func normalizeScopes(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

// wantPolicy is the auth policy named name: primary ext-jwt with exactly signerID, nothing else.
func wantPolicy(name, signerID string, keepTags map[string]any) ziti.AuthPolicy {
	return ziti.AuthPolicy{
		Name:                         name,
		PrimaryExtJWTAllowed:         true,
		PrimaryExtJWTAllowedSigners:  []string{signerID},
		PrimaryUpdbMinPasswordLength: ziti.MinPasswordLength,
		Tags:                         withOwner(keepTags),
	}
}

// policyDiff lists the fields of have that differ from want, in a fixed order.
func policyDiff(want, have ziti.AuthPolicy) steps.Diff {
	var f steps.Diff
	minLen := func(n int64) int64 { return max(n, ziti.MinPasswordLength) }
	steps.Compare(&f, FieldCertAllowed, have.PrimaryCertAllowed, want.PrimaryCertAllowed)
	steps.Compare(&f, FieldCertAllowExpired, have.PrimaryCertAllowExpiredCerts, want.PrimaryCertAllowExpiredCerts)
	steps.Compare(&f, FieldExtJWTAllowed, have.PrimaryExtJWTAllowed, want.PrimaryExtJWTAllowed)
	f.Add(!ziti.EqualSets(want.PrimaryExtJWTAllowedSigners, have.PrimaryExtJWTAllowedSigners), FieldExtJWTSigners,
		have.PrimaryExtJWTAllowedSigners, want.PrimaryExtJWTAllowedSigners)
	steps.Compare(&f, FieldUpdbAllowed, have.PrimaryUpdbAllowed, want.PrimaryUpdbAllowed)
	steps.Compare(&f, FieldUpdbMinLength, minLen(have.PrimaryUpdbMinPasswordLength), minLen(want.PrimaryUpdbMinPasswordLength))
	steps.Compare(&f, FieldUpdbSpecialChar, have.PrimaryUpdbRequireSpecialChar, want.PrimaryUpdbRequireSpecialChar)
	steps.Compare(&f, FieldUpdbNumberChar, have.PrimaryUpdbRequireNumberChar, want.PrimaryUpdbRequireNumberChar)
	steps.Compare(&f, FieldUpdbMixedCase, have.PrimaryUpdbRequireMixedCase, want.PrimaryUpdbRequireMixedCase)
	steps.Compare(&f, FieldUpdbMaxAttempts, have.PrimaryUpdbMaxAttempts, want.PrimaryUpdbMaxAttempts)
	steps.Compare(&f, FieldUpdbLockout, have.PrimaryUpdbLockoutDurationMinutes, want.PrimaryUpdbLockoutDurationMinutes)
	steps.Compare(&f, FieldSecondaryTOTP, have.SecondaryRequireTOTP, want.SecondaryRequireTOTP)
	steps.Compare(&f, FieldSecondaryExtJWT, have.SecondaryRequireExtJWTSigner, want.SecondaryRequireExtJWTSigner)
	return f
}
