package spireca

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/casigner"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spire"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/reach"
)

// Name is the step's name; it depends on "spire/reachable" and "ziti/reachable".
const Name = "spire/ziti-ca"

// Kind is the Change.Kind of OpenZiti CAs.
const Kind = "ziti-ca"

// Defaults of Settings (the same as the configuration's).
const (
	DefaultNamePrefix = "spire"
	DefaultNameFormat = "[caName]-[requestedName]"
)

// Tags that mark a CA as owned by this step (see the package documentation).
const (
	TagOwner       = "ziti-bootstrap"        // value OwnerValue
	OwnerValue     = "spire-ca"              //
	TagInstance    = "ziti-bootstrap.caName" // value Settings.NamePrefix
	TagTrustDomain = "spiffeTrustDomain"     // value the SPIRE server's trust domain (informative)
)

// BundleSource is where the step reads SPIRE's trust bundle; *spire.Client is one.
type BundleSource interface {
	// X509Bundle returns the trust domain and the X.509 authorities (roots) of the server's bundle.
	X509Bundle(ctx context.Context) (trustDomain string, authorities []*x509.Certificate, err error)
}

// CAStore is what the step needs of the OpenZiti controller; *ziti.Client is one.
type CAStore interface {
	ListCAs(ctx context.Context, filter string) ([]ziti.CA, error)
	GetCA(ctx context.Context, id string) (ziti.CA, error)
	CreateCA(ctx context.Context, ca ziti.CA) (string, error)
	UpdateCA(ctx context.Context, id string, ca ziti.CA) error
	VerifyCA(ctx context.Context, id, certPEM string) error
	DeleteCA(ctx context.Context, id string) error
}

var (
	_ BundleSource = (*spire.Client)(nil)
	_ CAStore      = (*ziti.Client)(nil)
)

// Settings are what the step converges to.
type Settings struct {
	// NamePrefix names the CAs (NamePrefix-<12 hex digits>) and scopes ownership (ZITI_SPIRE_CA_NAME);
	// default DefaultNamePrefix.
	NamePrefix string
	// Roles are the role attributes of identities enrolled through the CAs (ZITI_SPIRE_CA_ROLES).
	Roles []string
	// NameFormat names enrolled identities (ZITI_SPIRE_CA_NAME_FORMAT); default DefaultNameFormat.
	NameFormat string
	// TrustDomain, when set, must be the SPIRE server's trust domain (TRUST_DOMAIN).
	TrustDomain string
	// Keys are the private keys of the bundle's roots (SPIRE_UPSTREAM_CA_KEY, see ParseKeys). Only needed to
	// register or verify a root.
	Keys Keys
	// Signer, when set, signs the verification of a root none of Keys matches: the SPIRE CA signer beside
	// SPIRE's server (SPIRE_CA_SIGNER, internal/casigner), so that the OpenZiti side never holds the root key.
	Signer Signer
}

// Signer proves possession of a root's key for ziti-bootstrap, which does not hold it (*casigner.Client).
type Signer interface {
	// PublicKeys are the public keys of the roots it can sign for.
	PublicKeys(ctx context.Context) ([]crypto.PublicKey, error)
	// Prove returns OpenZiti's verification certificate for token (PEM: subject CN = token, signed by root's key).
	Prove(ctx context.Context, token string, root *x509.Certificate) (string, error)
}

// Step binds SPIRE's roots into OpenZiti. Create it with New or FromConfig.
type Step struct {
	spire BundleSource
	cas   CAStore
	s     Settings
}

var _ steps.Step = (*Step)(nil)

// New returns the step. No call is made.
func New(spire BundleSource, zitiCAs CAStore, cfg Settings) *Step {
	if cfg.NamePrefix == "" {
		cfg.NamePrefix = DefaultNamePrefix
	}
	if cfg.NameFormat == "" {
		cfg.NameFormat = DefaultNameFormat
	}
	return &Step{spire: spire, cas: zitiCAs, s: cfg}
}

// FromConfig returns the step for the configuration's SPIRE section; it fails (with a *config.Error) when
// SPIRE_UPSTREAM_CA_KEY holds something other than PEM private keys.
func FromConfig(spire BundleSource, zitiCAs CAStore, c config.Spire) (*Step, error) {
	keys, err := ParseKeys(c.UpstreamKey.Value())
	if err != nil {
		return nil, err
	}
	s := Settings{NamePrefix: c.ZitiCAName, Roles: c.ZitiCARoles, NameFormat: c.ZitiCANameFormat,
		TrustDomain: c.TrustDomain, Keys: keys}
	if c.CASigner != "" {
		signer, err := casigner.Dial(c.CASigner)
		if err != nil {
			return nil, &config.Error{Problems: []config.Problem{{Var: SignerVar, Msg: err.Error()}}}
		}
		s.Signer = signer
	}
	return New(spire, zitiCAs, s), nil
}

func (s *Step) Name() string        { return Name }
func (s *Step) DependsOn() []string { return []string{reach.Spire, reach.Ziti} }

// Plan reads SPIRE's bundle and the controller's CAs and returns the creates, verifies, updates and deletes
// that make the owned CAs match the bundle. It writes nothing.
func (s *Step) Plan(ctx context.Context) (*steps.Plan, error) {
	td, roots, err := s.spire.X509Bundle(ctx)
	if err != nil {
		return nil, err
	}
	if s.s.TrustDomain != "" && td != s.s.TrustDomain {
		return nil, &config.Error{Problems: []config.Problem{{Var: "TRUST_DOMAIN",
			Msg: fmt.Sprintf("is %q but the SPIRE server's trust domain is %q; set TRUST_DOMAIN=%s", s.s.TrustDomain, td, td)}}}
	}
	current, err := s.cas.ListCAs(ctx, "")
	if err != nil {
		return nil, err
	}
	ring := &keyring{ctx: ctx, keys: s.s.Keys, signer: s.s.Signer}
	r, err := diff(s.s, td, roots, current, ring.prover)
	if ring.err != nil {
		return nil, fmt.Errorf("%s: %w", SignerVar, ring.err)
	}
	if err != nil {
		return nil, err
	}
	return steps.NewPlan(r.changes(), r.apply(s.cas)).AddNotes(r.notes...), nil
}

// root is one authority of SPIRE's bundle with what the step wants for it.
type root struct {
	cert  *x509.Certificate
	prove proveFunc // nil when no key matched (and none was needed)
	want  ziti.CA
}

type verifyOp struct {
	id, name, token string
	root            root
}

type updateOp struct {
	id     string
	ca     ziti.CA // the full desired state, with operator tags kept
	fields steps.Diff
}

// reconciliation is the outcome of diff: what to write, in order.
type reconciliation struct {
	create []root
	verify []verifyOp
	update []updateOp
	delete []ziti.CA
	notes  []string
}

// desired is the CA the step wants for cert.
func desired(s Settings, td string, cert *x509.Certificate) ziti.CA {
	return ziti.CA{
		Name:                      CAName(s.NamePrefix, cert),
		CertPEM:                   certPEM(cert),
		IdentityNameFormat:        s.NameFormat,
		IdentityRoles:             append([]string{}, s.Roles...),
		IsAuthEnabled:             true,
		IsAutoCaEnrollmentEnabled: true,
		IsOttCaEnrollmentEnabled:  false,
		ExternalIDClaim: &ziti.ExternalIDClaim{
			Location: ziti.ClaimLocationSANURI, Matcher: ziti.ClaimMatcherScheme, MatcherCriteria: "spiffe",
			Parser: ziti.ClaimParserNone, Index: 0,
		},
		Tags: ownerTags(s.NamePrefix, td),
	}
}

func ownerTags(prefix, td string) map[string]any {
	return map[string]any{TagOwner: OwnerValue, TagInstance: prefix, TagTrustDomain: td}
}

// Owned reports whether ca is owned by a step with this name prefix.
func Owned(prefix string, ca ziti.CA) bool {
	return ca.Tags[TagOwner] == OwnerValue && ca.Tags[TagInstance] == prefix
}

// diff sorts SPIRE's roots against the controller's CAs. It needs the key of a root (from prover) only when the
// root's CA must be created or verified.
func diff(s Settings, td string, bundle []*x509.Certificate, current []ziti.CA, prover func(*x509.Certificate) proveFunc) (*reconciliation, error) {
	if len(bundle) == 0 {
		return nil, fmt.Errorf("SPIRE's trust bundle for %s has no X.509 authority; refusing to plan (an empty bundle never deletes CAs)", td)
	}
	type held struct {
		ca    ziti.CA
		owned bool
	}
	byFP := map[string][]held{} // a certificate is in one CA only, but tolerate more
	byName := map[string]ziti.CA{}
	var unreadable []ziti.CA // owned CAs whose certificate does not parse
	for _, ca := range current {
		byName[ca.Name] = ca
		owned := Owned(s.NamePrefix, ca)
		cert, err := parseCert(ca.CertPEM)
		if err != nil {
			if owned {
				unreadable = append(unreadable, ca)
			}
			continue
		}
		fp := Fingerprint(cert)
		byFP[fp] = append(byFP[fp], held{ca, owned})
	}

	r := &reconciliation{}
	inBundle := map[string]bool{}
	keep := map[string]bool{} // ids of owned CAs that hold a bundle root
	var conflicts []error
	var missingKeys []config.Problem
	needKey := func(rt *root, what string) bool {
		if rt.prove = prover(rt.cert); rt.prove != nil {
			return true
		}
		where := KeyVar
		if s.Signer != nil {
			where += " (or to the secret spire_upstream_ca_key of the SPIRE CA signer, " + SignerVar + ")"
		}
		missingKeys = append(missingKeys, config.Problem{Var: KeyVar, Msg: fmt.Sprintf(
			"no key matches SPIRE root %s, which must be %s in OpenZiti as CA %q; add the PEM private key of that root (the key_file_path of SPIRE's disk UpstreamAuthority) to %s",
			describe(rt.cert), what, rt.want.Name, where)})
		return false
	}
	for _, cert := range bundle {
		fp := Fingerprint(cert)
		if inBundle[fp] {
			continue
		}
		inBundle[fp] = true
		rt := root{cert: cert, want: desired(s, td, cert)}
		r.notes = append(r.notes, fmt.Sprintf("SPIRE root %s of %s, valid until %s: OpenZiti CA %q",
			describe(cert), td, cert.NotAfter.UTC().Format("2006-01-02"), rt.want.Name))

		var have *ziti.CA
		for _, h := range byFP[fp] {
			if !h.owned {
				conflicts = append(conflicts, fmt.Errorf(
					"SPIRE root %s is already registered in OpenZiti as CA %q (id %s), which ziti-bootstrap does not own (it lacks the tags %s=%s, %s=%s); OpenZiti accepts a certificate in one CA only: delete that CA (ziti edge delete ca %q) so that ziti-bootstrap can register its own",
					describe(cert), h.ca.Name, h.ca.ID, TagOwner, OwnerValue, TagInstance, s.NamePrefix, h.ca.Name))
				continue
			}
			if have == nil || (!have.IsVerified && h.ca.IsVerified) {
				ca := h.ca
				have = &ca
			}
		}
		if have == nil {
			if len(byFP[fp]) > 0 {
				continue // held by a foreign CA: reported above
			}
			if other, taken := byName[rt.want.Name]; taken {
				conflicts = append(conflicts, fmt.Errorf(
					"the name %q of the CA for SPIRE root %s is taken by OpenZiti CA id %s, which holds another certificate; delete or rename that CA, or set ZITI_SPIRE_CA_NAME to another prefix",
					rt.want.Name, describe(cert), other.ID))
				continue
			}
			if needKey(&rt, "registered and verified") {
				r.create = append(r.create, rt)
			}
			continue
		}
		keep[have.ID] = true
		if !have.IsVerified && needKey(&rt, "verified") {
			r.verify = append(r.verify, verifyOp{id: have.ID, name: have.Name, token: have.VerificationToken, root: rt})
		}
		if f := differingFields(rt.want, *have); len(f) > 0 {
			upd := rt.want
			upd.Tags = mergeTags(have.Tags, rt.want.Tags)
			r.update = append(r.update, updateOp{id: have.ID, ca: upd, fields: f})
		}
	}
	for _, hs := range byFP {
		for _, h := range hs {
			if h.owned && !keep[h.ca.ID] {
				r.delete = append(r.delete, h.ca)
			}
		}
	}
	r.delete = append(r.delete, unreadable...)
	sortCAs(r.delete)

	var errs []error
	errs = append(errs, conflicts...)
	if len(missingKeys) > 0 {
		errs = append(errs, &config.Error{Problems: missingKeys})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return r, nil
}

// differingFields lists the settings of have that differ from want (names as in the management API).
func differingFields(want, have ziti.CA) steps.Diff {
	var f steps.Diff
	steps.Compare(&f, "name", have.Name, want.Name)
	steps.Compare(&f, "identityNameFormat", have.IdentityNameFormat, want.IdentityNameFormat)
	f.Add(!ziti.EqualSets(want.IdentityRoles, have.IdentityRoles), "identityRoles", have.IdentityRoles, want.IdentityRoles)
	steps.Compare(&f, "isAuthEnabled", have.IsAuthEnabled, want.IsAuthEnabled)
	steps.Compare(&f, "isAutoCaEnrollmentEnabled", have.IsAutoCaEnrollmentEnabled, want.IsAutoCaEnrollmentEnabled)
	steps.Compare(&f, "isOttCaEnrollmentEnabled", have.IsOttCaEnrollmentEnabled, want.IsOttCaEnrollmentEnabled)
	f.Add(!sameClaim(want.ExternalIDClaim, have.ExternalIDClaim), "externalIdClaim", have.ExternalIDClaim, want.ExternalIDClaim)
	tagsDiffer := false
	for k, v := range want.Tags {
		if have.Tags[k] != v {
			tagsDiffer = true
		}
	}
	f.Add(tagsDiffer, "tags", have.Tags, mergeTags(have.Tags, want.Tags))
	return f
}

func sameClaim(a, b *ziti.ExternalIDClaim) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// mergeTags returns have's tags with ours set: tags an operator added are kept.
func mergeTags(have, ours map[string]any) map[string]any {
	out := make(map[string]any, len(have)+len(ours))
	maps.Copy(out, have)
	maps.Copy(out, ours)
	return out
}

func (r *reconciliation) changes() []steps.Change {
	var ch []steps.Change
	for _, c := range r.create {
		ch = append(ch, steps.Change{Action: steps.Create, Kind: Kind, Key: c.want.Name,
			Reason: "SPIRE root " + describe(c.cert) + " is not registered (created, then verified with its key)"})
	}
	for _, v := range r.verify {
		ch = append(ch, steps.Change{Action: steps.Update, Kind: Kind, Key: v.name,
			Reason: "registered but not verified (e.g. an earlier run stopped after creating it): verify with the root's key"}.WithDiff(
			steps.Diff{{Field: "isVerified", Before: false, After: true}}))
	}
	for _, u := range r.update {
		ch = append(ch, steps.Change{Action: steps.Update, Kind: Kind, Key: u.ca.Name, Reason: "differs (CA " + u.id + ")"}.WithDiff(u.fields))
	}
	for _, d := range r.delete {
		ch = append(ch, steps.Change{Action: steps.Delete, Kind: Kind, Key: d.Name,
			Reason: "its root is no longer in SPIRE's trust bundle (CA " + d.ID + ")"})
	}
	return ch
}

// apply returns the function that carries out exactly r: creates (each followed by its verification),
// verifies, updates, then deletes, but deletes only when everything before succeeded, so that no root leaves
// OpenZiti before every root of SPIRE's bundle is registered and verified. Failures are joined.
func (r *reconciliation) apply(store CAStore) func(context.Context) error {
	return func(ctx context.Context) error {
		var errs []error
		for _, c := range r.create {
			id, err := store.CreateCA(ctx, c.want)
			if ziti.IsConflict(err) {
				if earlier := createdEarlier(ctx, store, c); earlier != "" {
					id, err = earlier, nil
				}
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("create %s %s: %w", Kind, c.want.Name, err))
				continue
			}
			got, err := store.GetCA(ctx, id)
			if err != nil {
				errs = append(errs, fmt.Errorf("verify %s %s: read its verification token: %w (created as %s; re-run to verify it)", Kind, c.want.Name, err, id))
				continue
			}
			if err := verify(ctx, store, id, got.VerificationToken, c); err != nil {
				errs = append(errs, fmt.Errorf("verify %s %s: %w (created as %s; re-run to verify it)", Kind, c.want.Name, err, id))
			}
		}
		for _, v := range r.verify {
			if err := verify(ctx, store, v.id, v.token, v.root); err != nil {
				errs = append(errs, fmt.Errorf("verify %s %s: %w", Kind, v.name, err))
			}
		}
		for _, u := range r.update {
			if err := store.UpdateCA(ctx, u.id, u.ca); err != nil {
				errs = append(errs, fmt.Errorf("update %s %s: %w", Kind, u.ca.Name, err))
			}
		}
		if len(errs) > 0 {
			if len(r.delete) > 0 {
				errs = append(errs, fmt.Errorf("%d %s deletion(s) held back: every root of SPIRE's bundle must be registered and verified first; fix the errors above and re-run", len(r.delete), Kind))
			}
			return errors.Join(errs...)
		}
		for _, d := range r.delete {
			if err := store.DeleteCA(ctx, d.ID); err != nil && !ziti.IsNotFound(err) { // gone is what we want
				errs = append(errs, fmt.Errorf("delete %s %s: %w", Kind, d.Name, err))
			}
		}
		return errors.Join(errs...)
	}
}

// createdEarlier is the id of the CA that took c's name since the plan when it is c's own CA (the same
// certificate and owner tags): the create of an earlier run, killed while that write was in flight, which the
// controller carried out after this run had listed. It is then verified as if this run had created it. "" for
// any other (the create's error stands).
func createdEarlier(ctx context.Context, store CAStore, c root) string {
	found, err := store.ListCAs(ctx, ziti.FilterEq("name", c.want.Name))
	if err != nil || len(found) != 1 {
		return ""
	}
	prefix, _ := c.want.Tags[TagInstance].(string)
	cert, err := parseCert(found[0].CertPEM)
	if err != nil || !Owned(prefix, found[0]) || Fingerprint(cert) != Fingerprint(c.cert) {
		return ""
	}
	return found[0].ID
}

// verify proves possession of rt's key to CA id. A CA verified meanwhile (by a concurrent run) is success.
func verify(ctx context.Context, store CAStore, id, token string, rt root) error {
	proof, err := rt.prove(ctx, token)
	if err != nil {
		return err
	}
	err = store.VerifyCA(ctx, id, proof)
	var apiErr *ziti.APIError
	if errors.As(err, &apiErr) && apiErr.Code == "CA_ALREADY_VERIFIED" {
		return nil
	}
	return err
}
