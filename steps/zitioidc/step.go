package zitioidc

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/keycloakrealm"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/reach"
)

// Name is the step's name. It depends on the realm step (the signer's settings come from it) and on the
// controller being reachable.
const (
	Name          = "ziti/oidc"
	ZitiReachable = reach.Ziti
)

// Defaults of Settings (the same as internal/config's for ZITI_JWT_SIGNER_NAME and ZITI_AUTH_POLICY_NAME).
const (
	DefaultSignerName     = "keycloak"
	DefaultAuthPolicyName = "keycloak-users"
)

// DefaultScopes are the scopes tunnelers request from Keycloak when Settings.Scopes is nil.
var DefaultScopes = []string{"openid"}

// SignerSource says what the signer must accept. (*keycloakrealm.Step) is one: its values come from the
// realm's discovery document and the realm declaration, so Keycloak and Ziti cannot drift apart.
type SignerSource interface {
	ZitiSigner(ctx context.Context) (keycloakrealm.ZitiSigner, error)
}

var _ SignerSource = (*keycloakrealm.Step)(nil)

// ZitiAPI is what the step needs of the controller; *ziti.Client has it.
type ZitiAPI interface {
	ListExtJWTSigners(ctx context.Context, filter string) ([]ziti.ExtJWTSigner, error)
	CreateExtJWTSigner(ctx context.Context, s ziti.ExtJWTSigner) (string, error)
	UpdateExtJWTSigner(ctx context.Context, id string, s ziti.ExtJWTSigner) error
	ListAuthPolicies(ctx context.Context, filter string) ([]ziti.AuthPolicy, error)
	CreateAuthPolicy(ctx context.Context, ap ziti.AuthPolicy) (string, error)
	UpdateAuthPolicy(ctx context.Context, id string, ap ziti.AuthPolicy) error
	ListIdentities(ctx context.Context, filter string) ([]ziti.Identity, error)
	UpdateIdentity(ctx context.Context, id string, in ziti.Identity) error
}

var _ ZitiAPI = (*ziti.Client)(nil)

// Settings are the Ziti-side choices.
type Settings struct {
	// SignerName names the external JWT signer (ZITI_JWT_SIGNER_NAME); default "keycloak".
	SignerName string
	// AuthPolicyName names the auth policy (ZITI_AUTH_POLICY_NAME); default "keycloak-users".
	AuthPolicyName string
	// Scopes are what tunnelers request when they obtain a token; nil means DefaultScopes.
	Scopes []string
	// AttachIdentities are names of existing identities whose auth policy becomes AuthPolicyName. An identity
	// that does not exist, or an administrator (the policy allows no password: attaching the administrator
	// ziti-bootstrap logs in as would lock it out), fails the plan. Identities not listed are left alone.
	AttachIdentities []string
	// JWKSEndpoint is where the controller fetches the realm's signing keys (KEYCLOAK_JWKS_URL); empty: the
	// source's (the realm's discovery document as this process reaches Keycloak).
	JWKSEndpoint string
}

// Step converges the signer, the auth policy and the attached identities. Create it with New.
type Step struct {
	src SignerSource
	z   ZitiAPI
	s   Settings
}

var _ steps.Step = (*Step)(nil)

// New validates the settings (no call is made), fills in their defaults and returns the step. z may be nil
// when the step is only built to validate the settings (before ziti/reachable has created the client); Plan
// then fails.
func New(src SignerSource, z ZitiAPI, s Settings) (*Step, error) {
	s, err := withDefaults(s)
	if err == nil && src == nil {
		err = errors.New("a signer source is required")
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	if s.JWKSEndpoint != "" {
		src = controllerJWKS{src, s.JWKSEndpoint}
	}
	return &Step{src: src, z: z, s: s}, nil
}

// FromConfig returns the step for the configuration's OIDC section (ZITI_JWT_SIGNER_NAME,
// ZITI_AUTH_POLICY_NAME, KEYCLOAK_JWKS_URL, ZITI_OIDC_SCOPES, ZITI_AUTH_POLICY_IDENTITIES).
func FromConfig(src SignerSource, z ZitiAPI, c config.OIDC) (*Step, error) {
	s := Settings{SignerName: c.SignerName, AuthPolicyName: c.AuthPolicyName, JWKSEndpoint: c.JWKSURL, AttachIdentities: c.AttachIdentities}
	if len(c.Scopes) > 0 {
		s.Scopes = c.Scopes
	}
	return New(src, z, s)
}

func withDefaults(s Settings) (Settings, error) {
	var errs []error
	s.SignerName = strings.TrimSpace(s.SignerName)
	s.AuthPolicyName = strings.TrimSpace(s.AuthPolicyName)
	if s.SignerName == "" {
		s.SignerName = DefaultSignerName
	}
	if s.AuthPolicyName == "" {
		s.AuthPolicyName = DefaultAuthPolicyName
	}
	if s.Scopes == nil {
		s.Scopes = DefaultScopes
	}
	for _, sc := range s.Scopes {
		if sc == "" || strings.ContainsAny(sc, " \t\n") {
			errs = append(errs, fmt.Errorf("Scopes: %q is not a scope name", sc))
		}
	}
	s.Scopes = normalizeScopes(s.Scopes)
	seen := map[string]bool{}
	for i, n := range s.AttachIdentities {
		switch {
		case strings.TrimSpace(n) == "":
			errs = append(errs, fmt.Errorf("AttachIdentities[%d]: empty name", i))
		case seen[n]:
			errs = append(errs, fmt.Errorf("AttachIdentities[%d]: %q listed twice", i, n))
		}
		seen[n] = true
	}
	return s, errors.Join(errs...)
}

func (s *Step) Name() string        { return Name }
func (s *Step) DependsOn() []string { return []string{keycloakrealm.Name, ZitiReachable} }

// Settings returns the settings with their defaults filled in.
func (s *Step) Settings() Settings { return s.s }

// observed is what Plan read: the signer settings from the source and the controller's candidate objects.
type observed struct {
	src        keycloakrealm.ZitiSigner
	signers    []ziti.ExtJWTSigner // by name, unfinished name or issuer
	policies   []ziti.AuthPolicy   // by name
	identities []ziti.Identity     // the ones to attach
}

// Plan reads the signer settings from the source and the objects from the controller, and returns the changes
// that make them match. It writes nothing.
func (s *Step) Plan(ctx context.Context) (*steps.Plan, error) {
	if s.z == nil {
		return nil, errors.New("no OpenZiti client: " + ZitiReachable + " must run first")
	}
	o, err := s.observe(ctx)
	if err != nil {
		return nil, err
	}
	ops, notes, err := diff(s.s, o)
	if err != nil {
		return nil, err
	}
	// The signer and the policy are needed by what follows them, so a failure there stops the apply; failures
	// of single identities are collected.
	return steps.OpsPlan(s.z, ops, func(c steps.Change) bool { return c.Kind != KindIdentity }).AddNotes(notes...), nil
}

func (s *Step) observe(ctx context.Context) (observed, error) {
	var o observed
	src, err := s.src.ZitiSigner(ctx)
	if err != nil {
		return o, fmt.Errorf("signer settings: %w", err)
	}
	if err := checkSource(src); err != nil {
		return o, err
	}
	o.src = src
	sname := s.s.SignerName
	unfinishedName := sname + ziti.CreatingSuffix // see ziti.CreateExtJWTSigner
	if o.signers, err = s.z.ListExtJWTSigners(ctx, ziti.FilterEq("name", sname)+" or "+ziti.FilterEq("name", unfinishedName)+" or "+ziti.FilterEq("issuer", src.Issuer)); err != nil {
		return o, err
	}
	if o.policies, err = s.z.ListAuthPolicies(ctx, ziti.FilterEq("name", s.s.AuthPolicyName)); err != nil {
		return o, err
	}
	if len(s.s.AttachIdentities) > 0 {
		if o.identities, err = s.z.ListIdentities(ctx, ziti.FilterIn("name", s.s.AttachIdentities)); err != nil {
			return o, err
		}
	}
	return o, nil
}

// op is one planned change of this step.
type op = steps.Op[ZitiAPI]

// diff returns the operations that make the controller's objects in o match the settings and the source, in
// apply order, and notes for the user. It makes no call. Objects of the configured names that belong to others
// fail it, every problem at once.
func diff(set Settings, o observed) ([]op, []string, error) {
	src, sname, pname := o.src, set.SignerName, set.AuthPolicyName
	unfinishedName := sname + ziti.CreatingSuffix

	// Find ours, refuse what belongs to others.
	var (
		problems   []error
		haveSigner *ziti.ExtJWTSigner
		unfinished *ziti.ExtJWTSigner // created by a run that died before it gave the signer its name and tags
		havePolicy *ziti.AuthPolicy
	)
	for i, sg := range o.signers {
		switch {
		case sg.Name == sname:
			haveSigner = &o.signers[i]
			if !owned(sg.Tags) {
				problems = append(problems, fmt.Errorf("external JWT signer %q (id %s) exists but is not managed by ziti-bootstrap (no tag %s=%s): "+
					"set ZITI_JWT_SIGNER_NAME to another name, or hand it over by adding that tag (it will then be overwritten)", sname, sg.ID, OwnerTag, OwnerValue))
			}
		case sg.Name == unfinishedName:
			unfinished = &o.signers[i]
		case sg.Issuer == src.Issuer:
			problems = append(problems, fmt.Errorf("external JWT signer %q (id %s) already accepts issuer %s, and the controller allows one signer per issuer: "+
				"delete it, or set ZITI_JWT_SIGNER_NAME=%s and add the tag %s=%s to hand it over", sg.Name, sg.ID, src.Issuer, sg.Name, OwnerTag, OwnerValue))
		}
	}
	for i, p := range o.policies {
		if p.Name != pname {
			continue
		}
		havePolicy = &o.policies[i]
		if !owned(p.Tags) {
			problems = append(problems, fmt.Errorf("auth policy %q (id %s) exists but is not managed by ziti-bootstrap (no tag %s=%s): "+
				"set ZITI_AUTH_POLICY_NAME to another name, or hand it over by adding that tag (it will then be overwritten)", pname, p.ID, OwnerTag, OwnerValue))
		}
	}
	byName := map[string]ziti.Identity{}
	for _, in := range o.identities {
		byName[in.Name] = in
	}
	for _, n := range set.AttachIdentities {
		in, ok := byName[n]
		switch {
		case !ok:
			problems = append(problems, fmt.Errorf("identity %q, to be attached to auth policy %q, does not exist: create it, or remove it from the identities to attach", n, pname))
		case in.IsAdmin && (havePolicy == nil || in.AuthPolicyID != havePolicy.ID):
			// The policy allows neither passwords nor certificates: attaching the administrator ziti-bootstrap
			// itself logs in as would lock it out.
			problems = append(problems, fmt.Errorf("identity %q is an administrator: auth policy %q allows only Keycloak logins, so attaching it could lock out "+
				"the administrators (ziti-bootstrap included); remove it from the identities to attach, or set its auth policy by hand", n, pname))
		}
	}
	if len(problems) > 0 {
		return nil, nil, errors.Join(problems...)
	}

	var (
		ops   []op
		notes []string
	)
	add := func(ch steps.Change, run func(context.Context, ZitiAPI) error) {
		ops = append(ops, op{Change: ch, Run: run})
	}
	claim := "identity id"
	if src.UseExternalID {
		claim = "identity externalId"
	}
	notes = append(notes, fmt.Sprintf("signer %s accepts tokens of %s with audience %s; claim %s is matched to the %s", sname, src.Issuer, src.Audience, claimsProperty(src.ClaimsProperty), claim))
	if src.Predicted {
		notes = append(notes, "realm not created yet: issuer and JWKS endpoint are predicted from the Keycloak URL; apply reads them from the realm once it exists")
	}

	signer := steps.NewRef("external JWT signer "+sname, "")
	switch {
	case haveSigner == nil && unfinished != nil:
		// Finish the create: the update gives the signer its name, its tags and the wanted settings.
		signer.Set(unfinished.ID)
		want, id := wantSigner(sname, src, set.Scopes, unfinished.Tags), unfinished.ID
		f := steps.Diff{{Field: FieldName, Before: unfinished.Name, After: want.Name}, {Field: FieldTags, Before: unfinished.Tags, After: want.Tags}}
		f = append(f, signerDiff(want, *unfinished)...)
		add(steps.Change{Action: steps.Update, Kind: KindSigner, Key: sname,
			Reason: fmt.Sprintf("an earlier run created it as %s (id %s) and stopped before naming and tagging it", unfinishedName, id)}.WithDiff(f),
			func(ctx context.Context, z ZitiAPI) error { return z.UpdateExtJWTSigner(ctx, id, want) })
	case haveSigner == nil:
		want := wantSigner(sname, src, set.Scopes, nil)
		add(steps.Change{Action: steps.Create, Kind: KindSigner, Key: sname, Reason: "missing"},
			func(ctx context.Context, z ZitiAPI) error {
				id, err := z.CreateExtJWTSigner(ctx, want)
				signer.Set(id)
				return err
			})
	default:
		signer.Set(haveSigner.ID)
		want := wantSigner(sname, src, set.Scopes, haveSigner.Tags)
		if f := signerDiff(want, *haveSigner); len(f) > 0 {
			id := haveSigner.ID
			add(steps.Change{Action: steps.Update, Kind: KindSigner, Key: sname, Reason: "differs"}.WithDiff(f),
				func(ctx context.Context, z ZitiAPI) error { return z.UpdateExtJWTSigner(ctx, id, want) })
			if slices.Contains(f.Names(), FieldIssuer) {
				// Seen with controller 1.7.2: its in-memory table of signers is keyed by issuer, and an update
				// adds the new issuer without removing the old one (only a restart reloads the table).
				notes = append(notes, fmt.Sprintf("the issuer of signer %s changes from %s: the controller keeps accepting tokens of the old issuer "+
					"until it restarts (OpenZiti 1.7.2); restart it after this apply", sname, haveSigner.Issuer))
			}
		}
		if unfinished != nil {
			notes = append(notes, fmt.Sprintf("external JWT signer %s (id %s) is left over from an interrupted create and is not used: delete it (ziti edge delete ext-jwt-signer %s)",
				unfinishedName, unfinished.ID, unfinished.ID))
		}
	}

	policy := steps.NewRef("auth policy "+pname, "")
	if havePolicy == nil {
		add(steps.Change{Action: steps.Create, Kind: KindAuthPolicy, Key: pname, Reason: "missing"},
			steps.After(signer, func(ctx context.Context, z ZitiAPI, sid string) error {
				want := wantPolicy(pname, sid, nil)
				id, err := z.CreateAuthPolicy(ctx, want)
				if ziti.IsConflict(err) {
					// an earlier run's create, killed in flight, landed after this run listed: take it over
					if found, lerr := z.ListAuthPolicies(ctx, ziti.FilterEq("name", pname)); lerr == nil && len(found) == 1 && owned(found[0].Tags) {
						id = found[0].ID
						err = z.UpdateAuthPolicy(ctx, id, wantPolicy(pname, sid, found[0].Tags))
					}
				}
				policy.Set(id)
				return err
			}))
	} else {
		policy.Set(havePolicy.ID)
		tags, id := havePolicy.Tags, havePolicy.ID
		// The signer's id is not known when this plan creates it: the allowed signers then differ.
		if f := policyDiff(wantPolicy(pname, signer.ID(), tags), *havePolicy); len(f) > 0 {
			if !signer.Known() {
				for i := range f {
					if f[i].Field == FieldExtJWTSigners {
						f[i].After = []string{steps.Unknown}
					}
				}
			}
			add(steps.Change{Action: steps.Update, Kind: KindAuthPolicy, Key: pname, Reason: "differs"}.WithDiff(f),
				steps.After(signer, func(ctx context.Context, z ZitiAPI, sid string) error {
					return z.UpdateAuthPolicy(ctx, id, wantPolicy(pname, sid, tags))
				}))
		}
	}

	for _, n := range set.AttachIdentities {
		in := byName[n]
		if in.ExternalID == "" && src.UseExternalID {
			notes = append(notes, fmt.Sprintf("identity %s has no externalId: it cannot log in with a token until its externalId is the value of its user's %s claim", n, src.ClaimsProperty))
		}
		if policy.Known() && in.AuthPolicyID == policy.ID() {
			continue
		}
		after := any(policy.ID())
		if !policy.Known() {
			after = steps.Unknown
		}
		reason := fmt.Sprintf("uses auth policy %s", in.AuthPolicyID)
		add(steps.Change{Action: steps.Update, Kind: KindIdentity, Key: n, Reason: reason}.WithDiff(
			steps.Diff{{Field: FieldIdentityAuthPolicyID, Before: in.AuthPolicyID, After: after}}),
			steps.After(policy, func(ctx context.Context, z ZitiAPI, pid string) error {
				in.AuthPolicyID = pid
				return z.UpdateIdentity(ctx, in.ID, in)
			}))
	}
	return ops, notes, nil
}

// checkSource refuses signer settings the controller would refuse or that could never match a token.
func checkSource(src keycloakrealm.ZitiSigner) error {
	var errs []error
	if src.Issuer == "" {
		errs = append(errs, errors.New("no issuer"))
	}
	if src.Audience == "" {
		errs = append(errs, errors.New("no audience"))
	}
	if u, err := url.Parse(src.JWKSEndpoint); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, fmt.Errorf("JWKS endpoint %q is not an http(s) URL", src.JWKSEndpoint))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("signer settings from %s: %w", keycloakrealm.Name, err)
	}
	return nil
}
