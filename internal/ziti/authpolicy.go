package ziti

import (
	"context"

	"github.com/openziti/edge-api/rest_management_api_client/auth_policy"
	"github.com/openziti/edge-api/rest_model"
)

// MinPasswordLength is the smallest updb password length the controller stores; lower values are raised to it.
const MinPasswordLength = 5

// AuthPolicy says how the identities assigned to it may log in.
type AuthPolicy struct {
	ID   string
	Name string

	PrimaryCertAllowed           bool
	PrimaryCertAllowExpiredCerts bool

	PrimaryExtJWTAllowed        bool
	PrimaryExtJWTAllowedSigners []string // signer ids; empty allows every signer

	PrimaryUpdbAllowed                bool
	PrimaryUpdbMinPasswordLength      int64 // below MinPasswordLength means MinPasswordLength
	PrimaryUpdbRequireSpecialChar     bool
	PrimaryUpdbRequireNumberChar      bool
	PrimaryUpdbRequireMixedCase       bool
	PrimaryUpdbMaxAttempts            int64 // 0: unlimited
	PrimaryUpdbLockoutDurationMinutes int64 // 0: until unlocked

	SecondaryRequireTOTP         bool
	SecondaryRequireExtJWTSigner string // signer id, or ""

	Tags map[string]any
}

// ListAuthPolicies returns every auth policy matching filter ("" for all), the built-in "default" included.
func (c *Client) ListAuthPolicies(ctx context.Context, filter string) ([]AuthPolicy, error) {
	return listOf(ctx, c, "list auth policies", filter, auth_policy.NewListAuthPoliciesParamsWithContext,
		func(p *auth_policy.ListAuthPoliciesParams) (*auth_policy.ListAuthPoliciesOK, error) {
			return c.mgmt.AuthPolicy.ListAuthPolicies(p, c.session())
		},
		func(r *auth_policy.ListAuthPoliciesOK) ([]*rest_model.AuthPolicyDetail, *rest_model.Meta) {
			return r.Payload.Data, r.Payload.Meta
		}, policyFromWire)
}

// CreateAuthPolicy creates ap and returns its id.
func (c *Client) CreateAuthPolicy(ctx context.Context, ap AuthPolicy) (string, error) {
	return created(ctx, c, "create auth policy "+ap.Name, func(ctx context.Context) (*auth_policy.CreateAuthPolicyCreated, error) {
		p := auth_policy.NewCreateAuthPolicyParamsWithContext(ctx)
		p.AuthPolicy = policyToWire(ap)
		return c.mgmt.AuthPolicy.CreateAuthPolicy(p, c.session())
	})
}

// UpdateAuthPolicy replaces every field of auth policy id with those of ap (a full update).
func (c *Client) UpdateAuthPolicy(ctx context.Context, id string, ap AuthPolicy) error {
	return c.do(ctx, "update auth policy "+nameOr(ap.Name, id), func(ctx context.Context) error {
		p := auth_policy.NewUpdateAuthPolicyParamsWithContext(ctx).WithID(id)
		p.AuthPolicy = &rest_model.AuthPolicyUpdate{AuthPolicyCreate: *policyToWire(ap)}
		return discard(c.mgmt.AuthPolicy.UpdateAuthPolicy(p, c.session()))
	})
}

// DeleteAuthPolicy removes auth policy id. The controller refuses while identities use it.
func (c *Client) DeleteAuthPolicy(ctx context.Context, id string) error {
	return c.do(ctx, "delete auth policy "+id, func(ctx context.Context) error {
		p := auth_policy.NewDeleteAuthPolicyParamsWithContext(ctx).WithID(id)
		return discard(c.mgmt.AuthPolicy.DeleteAuthPolicy(p, c.session()))
	})
}

func policyToWire(ap AuthPolicy) *rest_model.AuthPolicyCreate {
	minLen := ap.PrimaryUpdbMinPasswordLength
	if minLen < MinPasswordLength {
		minLen = MinPasswordLength
	}
	signers := ap.PrimaryExtJWTAllowedSigners
	if signers == nil {
		signers = []string{}
	}
	return &rest_model.AuthPolicyCreate{
		Name: &ap.Name,
		Primary: &rest_model.AuthPolicyPrimary{
			Cert: &rest_model.AuthPolicyPrimaryCert{
				Allowed:           &ap.PrimaryCertAllowed,
				AllowExpiredCerts: &ap.PrimaryCertAllowExpiredCerts,
			},
			ExtJWT: &rest_model.AuthPolicyPrimaryExtJWT{
				Allowed:        &ap.PrimaryExtJWTAllowed,
				AllowedSigners: signers,
			},
			Updb: &rest_model.AuthPolicyPrimaryUpdb{
				Allowed:                &ap.PrimaryUpdbAllowed,
				MinPasswordLength:      &minLen,
				RequireSpecialChar:     &ap.PrimaryUpdbRequireSpecialChar,
				RequireNumberChar:      &ap.PrimaryUpdbRequireNumberChar,
				RequireMixedCase:       &ap.PrimaryUpdbRequireMixedCase,
				MaxAttempts:            &ap.PrimaryUpdbMaxAttempts,
				LockoutDurationMinutes: &ap.PrimaryUpdbLockoutDurationMinutes,
			},
		},
		Secondary: &rest_model.AuthPolicySecondary{
			RequireTotp:         &ap.SecondaryRequireTOTP,
			RequireExtJWTSigner: optString(ap.SecondaryRequireExtJWTSigner),
		},
		Tags: tagsToWire(ap.Tags),
	}
}

func policyFromWire(d *rest_model.AuthPolicyDetail) AuthPolicy {
	if d == nil {
		return AuthPolicy{}
	}
	ap := AuthPolicy{ID: str(d.ID), Name: str(d.Name), Tags: tagsFromWire(d.Tags)}
	if pr := d.Primary; pr != nil {
		if x := pr.Cert; x != nil {
			ap.PrimaryCertAllowed = boolean(x.Allowed)
			ap.PrimaryCertAllowExpiredCerts = boolean(x.AllowExpiredCerts)
		}
		if x := pr.ExtJWT; x != nil {
			ap.PrimaryExtJWTAllowed = boolean(x.Allowed)
			ap.PrimaryExtJWTAllowedSigners = x.AllowedSigners
		}
		if x := pr.Updb; x != nil {
			ap.PrimaryUpdbAllowed = boolean(x.Allowed)
			ap.PrimaryUpdbMinPasswordLength = i64(x.MinPasswordLength)
			ap.PrimaryUpdbRequireSpecialChar = boolean(x.RequireSpecialChar)
			ap.PrimaryUpdbRequireNumberChar = boolean(x.RequireNumberChar)
			ap.PrimaryUpdbRequireMixedCase = boolean(x.RequireMixedCase)
			ap.PrimaryUpdbMaxAttempts = i64(x.MaxAttempts)
			ap.PrimaryUpdbLockoutDurationMinutes = i64(x.LockoutDurationMinutes)
		}
	}
	if s := d.Secondary; s != nil {
		ap.SecondaryRequireTOTP = boolean(s.RequireTotp)
		ap.SecondaryRequireExtJWTSigner = str(s.RequireExtJWTSigner)
	}
	return ap
}

func i64(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}
