package ziti

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"

	"github.com/openziti/edge-api/rest_management_api_client/certificate_authority"
	"github.com/openziti/edge-api/rest_model"
)

// DefaultIdentityNameFormat is what the controller stores (and lists) when a CA is created or updated with an
// empty IdentityNameFormat. Enrolled identities are named by it; placeholders are [caName], [caId],
// [commonName], [requestedName] (the name sent with the enrollment, else the new identity's id) and [identityId].
// A name already taken gets a six-digit counter appended.
const DefaultIdentityNameFormat = "[caName]-[commonName]"

// Values of ExternalIDClaim fields (from the controller's source).
const (
	ClaimLocationCommonName = "COMMON_NAME"
	ClaimLocationSANURI     = "SAN_URI"
	ClaimLocationSANEmail   = "SAN_EMAIL"
	ClaimMatcherAll         = "ALL"
	ClaimMatcherPrefix      = "PREFIX"
	ClaimMatcherSuffix      = "SUFFIX"
	ClaimMatcherScheme      = "SCHEME"
	ClaimParserNone         = "NONE"
	ClaimParserSplit        = "SPLIT"
)

// CA is a third-party certificate authority registered in the controller.
type CA struct {
	ID      string
	Name    string
	CertPEM string // the CA certificate; fixed after creation
	// Fingerprint and VerificationToken are set by the controller (read only). Verify the CA by presenting a
	// certificate whose subject CN is VerificationToken, signed by the CA's key (see VerifyCA).
	Fingerprint       string
	VerificationToken string
	// IdentityNameFormat names identities enrolled through this CA; see DefaultIdentityNameFormat.
	IdentityNameFormat string
	IdentityRoles      []string // role attributes given to identities enrolled through this CA
	IsVerified         bool     // read only; set by VerifyCA
	// Only CAs that are verified and auth-enabled are trusted for certificate login.
	IsAuthEnabled             bool
	IsAutoCaEnrollmentEnabled bool // enrollment by presenting a certificate (POST /enroll?method=ca)
	IsOttCaEnrollmentEnabled  bool
	// ExternalIDClaim, when set, takes the identity's externalId from the client certificate: such identities
	// are matched by externalId rather than by certificate fingerprint, so certificates may rotate.
	ExternalIDClaim *ExternalIDClaim
	Tags            map[string]any
}

// ExternalIDClaim says where in a client certificate the externalId is, e.g. the spiffe:// URI SAN:
// {Location: SAN_URI, Matcher: SCHEME, MatcherCriteria: "spiffe", Parser: NONE, Index: 0}.
type ExternalIDClaim struct {
	Location        string // COMMON_NAME, SAN_URI, SAN_EMAIL
	Matcher         string // ALL, PREFIX, SUFFIX, SCHEME
	MatcherCriteria string
	Parser          string // NONE, SPLIT
	ParserCriteria  string
	Index           int64
}

// ListCAs returns every CA matching filter (a Ziti filter expression such as FilterName("spire"); "" for all).
func (c *Client) ListCAs(ctx context.Context, filter string) ([]CA, error) {
	return listOf(ctx, c, "list CAs", filter, certificate_authority.NewListCasParamsWithContext,
		func(p *certificate_authority.ListCasParams) (*certificate_authority.ListCasOK, error) {
			return c.mgmt.CertificateAuthority.ListCas(p, c.session())
		},
		func(r *certificate_authority.ListCasOK) ([]*rest_model.CaDetail, *rest_model.Meta) {
			return r.Payload.Data, r.Payload.Meta
		}, caFromWire)
}

// GetCA returns one CA by id; IsNotFound(err) when there is none.
func (c *Client) GetCA(ctx context.Context, id string) (CA, error) {
	return fetched(ctx, c, "get CA "+id, func(ctx context.Context) (*certificate_authority.DetailCaOK, error) {
		p := certificate_authority.NewDetailCaParamsWithContext(ctx).WithID(id)
		return c.mgmt.CertificateAuthority.DetailCa(p, c.session())
	}, func(r *certificate_authority.DetailCaOK) (CA, error) { return caFromWire(r.Payload.Data), nil })
}

// CreateCA registers ca (ID, Fingerprint, VerificationToken and IsVerified are ignored) and returns its id.
func (c *Client) CreateCA(ctx context.Context, ca CA) (string, error) {
	return created(ctx, c, "create CA "+ca.Name, func(ctx context.Context) (*certificate_authority.CreateCaCreated, error) {
		p := certificate_authority.NewCreateCaParamsWithContext(ctx)
		p.Ca = &rest_model.CaCreate{
			Name:                      &ca.Name,
			CertPem:                   &ca.CertPEM,
			IdentityNameFormat:        ca.IdentityNameFormat,
			IdentityRoles:             roles(ca.IdentityRoles),
			IsAuthEnabled:             &ca.IsAuthEnabled,
			IsAutoCaEnrollmentEnabled: &ca.IsAutoCaEnrollmentEnabled,
			IsOttCaEnrollmentEnabled:  &ca.IsOttCaEnrollmentEnabled,
			ExternalIDClaim:           claimToWire(ca.ExternalIDClaim),
			Tags:                      tagsToWire(ca.Tags),
		}
		return c.mgmt.CertificateAuthority.CreateCa(p, c.session())
	})
}

// UpdateCA replaces the mutable fields of CA id with those of ca: Name, IdentityNameFormat, IdentityRoles, the
// three Is*Enabled flags, ExternalIDClaim (nil removes it) and Tags (nil removes them). The certificate cannot
// be changed: delete and create the CA instead.
func (c *Client) UpdateCA(ctx context.Context, id string, ca CA) error {
	return c.do(ctx, "update CA "+nameOr(ca.Name, id), func(ctx context.Context) error {
		p := certificate_authority.NewUpdateCaParamsWithContext(ctx).WithID(id)
		p.Ca = &rest_model.CaUpdate{
			Name:                      &ca.Name,
			IdentityNameFormat:        &ca.IdentityNameFormat,
			IdentityRoles:             roles(ca.IdentityRoles),
			IsAuthEnabled:             &ca.IsAuthEnabled,
			IsAutoCaEnrollmentEnabled: &ca.IsAutoCaEnrollmentEnabled,
			IsOttCaEnrollmentEnabled:  &ca.IsOttCaEnrollmentEnabled,
			ExternalIDClaim:           claimToWire(ca.ExternalIDClaim),
			Tags:                      tagsToWire(ca.Tags),
		}
		return discard(c.mgmt.CertificateAuthority.UpdateCa(p, c.session()))
	})
}

// VerifyCA proves possession of CA id's key with certPEM: a certificate whose subject CN is the CA's
// VerificationToken, signed directly by the CA's key (see VerificationCert). A CA already verified gives an
// *APIError with code CA_ALREADY_VERIFIED.
func (c *Client) VerifyCA(ctx context.Context, id, certPEM string) error {
	return c.do(ctx, "verify CA "+id, func(ctx context.Context) error {
		p := certificate_authority.NewVerifyCaParamsWithContext(ctx).WithID(id)
		p.Certificate = certPEM
		return discard(c.mgmt.CertificateAuthority.VerifyCa(p, c.session()))
	})
}

// DeleteCA removes CA id. Identities enrolled through it stay.
func (c *Client) DeleteCA(ctx context.Context, id string) error {
	return c.do(ctx, "delete CA "+id, func(ctx context.Context) error {
		p := certificate_authority.NewDeleteCaParamsWithContext(ctx).WithID(id)
		return discard(c.mgmt.CertificateAuthority.DeleteCa(p, c.session()))
	})
}

// VerificationCert returns the PEM of a short-lived certificate with subject CN token, signed by caCert/caKey:
// the proof VerifyCA wants.
func VerificationCert(token string, caCert *x509.Certificate, caKey crypto.Signer) (string, error) {
	if token == "" {
		return "", fmt.Errorf("verification certificate: empty verification token")
	}
	key, err := newKey()
	if err != nil {
		return "", fmt.Errorf("verification certificate: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return "", fmt.Errorf("verification certificate: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: token},
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), caKey)
	if err != nil {
		return "", fmt.Errorf("verification certificate: sign with the CA key: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), nil
}

func caFromWire(d *rest_model.CaDetail) CA {
	if d == nil {
		return CA{}
	}
	ca := CA{
		ID:                        str(d.ID),
		Name:                      str(d.Name),
		CertPEM:                   str(d.CertPem),
		Fingerprint:               str(d.Fingerprint),
		VerificationToken:         d.VerificationToken.String(),
		IdentityNameFormat:        str(d.IdentityNameFormat),
		IdentityRoles:             []string(d.IdentityRoles),
		IsVerified:                boolean(d.IsVerified),
		IsAuthEnabled:             boolean(d.IsAuthEnabled),
		IsAutoCaEnrollmentEnabled: boolean(d.IsAutoCaEnrollmentEnabled),
		IsOttCaEnrollmentEnabled:  boolean(d.IsOttCaEnrollmentEnabled),
		Tags:                      tagsFromWire(d.Tags),
	}
	if e := d.ExternalIDClaim; e != nil {
		ca.ExternalIDClaim = &ExternalIDClaim{
			Location:        str(e.Location),
			Matcher:         str(e.Matcher),
			MatcherCriteria: str(e.MatcherCriteria),
			Parser:          str(e.Parser),
			ParserCriteria:  str(e.ParserCriteria),
		}
		if e.Index != nil {
			ca.ExternalIDClaim.Index = *e.Index
		}
	}
	return ca
}

func claimToWire(e *ExternalIDClaim) *rest_model.ExternalIDClaim {
	if e == nil {
		return nil
	}
	c := *e
	return &rest_model.ExternalIDClaim{
		Location:        &c.Location,
		Matcher:         &c.Matcher,
		MatcherCriteria: &c.MatcherCriteria,
		Parser:          &c.Parser,
		ParserCriteria:  &c.ParserCriteria,
		Index:           &c.Index,
	}
}
