package zitioidc

import (
	"maps"
	"slices"
	"strings"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
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

// signerFields names the fields of have that differ from want, in a fixed order.
func signerFields(want, have ziti.ExtJWTSigner) []string {
	var f fieldList
	f.add(want.Issuer != have.Issuer, FieldIssuer)
	f.add(want.Audience != have.Audience, FieldAudience)
	f.add(want.JWKSEndpoint != have.JWKSEndpoint, FieldJWKSEndpoint)
	f.add(want.CertPEM != have.CertPEM, FieldCertPEM)
	f.add(want.Kid != have.Kid, FieldKid)
	f.add(claimsProperty(want.ClaimsProperty) != claimsProperty(have.ClaimsProperty), FieldClaimsProperty)
	f.add(want.UseExternalID != have.UseExternalID, FieldUseExternalID)
	f.add(want.Enabled != have.Enabled, FieldEnabled)
	f.add(want.ClientID != have.ClientID, FieldClientID)
	f.add(want.ExternalAuthURL != have.ExternalAuthURL, FieldExternalAuthURL)
	f.add(!ziti.EqualSets(want.Scopes, have.Scopes), FieldScopes)
	f.add(targetToken(want.TargetToken) != targetToken(have.TargetToken), FieldTargetToken)
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

// policyFields names the fields of have that differ from want, in a fixed order.
func policyFields(want, have ziti.AuthPolicy) []string {
	var f fieldList
	minLen := func(n int64) int64 { return max(n, ziti.MinPasswordLength) }
	f.add(want.PrimaryCertAllowed != have.PrimaryCertAllowed, FieldCertAllowed)
	f.add(want.PrimaryCertAllowExpiredCerts != have.PrimaryCertAllowExpiredCerts, FieldCertAllowExpired)
	f.add(want.PrimaryExtJWTAllowed != have.PrimaryExtJWTAllowed, FieldExtJWTAllowed)
	f.add(!ziti.EqualSets(want.PrimaryExtJWTAllowedSigners, have.PrimaryExtJWTAllowedSigners), FieldExtJWTSigners)
	f.add(want.PrimaryUpdbAllowed != have.PrimaryUpdbAllowed, FieldUpdbAllowed)
	f.add(minLen(want.PrimaryUpdbMinPasswordLength) != minLen(have.PrimaryUpdbMinPasswordLength), FieldUpdbMinLength)
	f.add(want.PrimaryUpdbRequireSpecialChar != have.PrimaryUpdbRequireSpecialChar, FieldUpdbSpecialChar)
	f.add(want.PrimaryUpdbRequireNumberChar != have.PrimaryUpdbRequireNumberChar, FieldUpdbNumberChar)
	f.add(want.PrimaryUpdbRequireMixedCase != have.PrimaryUpdbRequireMixedCase, FieldUpdbMixedCase)
	f.add(want.PrimaryUpdbMaxAttempts != have.PrimaryUpdbMaxAttempts, FieldUpdbMaxAttempts)
	f.add(want.PrimaryUpdbLockoutDurationMinutes != have.PrimaryUpdbLockoutDurationMinutes, FieldUpdbLockout)
	f.add(want.SecondaryRequireTOTP != have.SecondaryRequireTOTP, FieldSecondaryTOTP)
	f.add(want.SecondaryRequireExtJWTSigner != have.SecondaryRequireExtJWTSigner, FieldSecondaryExtJWT)
	return f
}

// fieldList collects the names of the fields that differ, in the order they are checked.
type fieldList []string

func (f *fieldList) add(differs bool, name string) {
	if differs {
		*f = append(*f, name)
	}
}
