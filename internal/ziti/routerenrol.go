package ziti

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/openziti/edge-api/rest_management_api_client/edge_router"
	"github.com/openziti/edge-api/rest_model"
)

// RouterEnrolment is an edge router with what its enrolment needs: whether it is enrolled (verified, with a
// certificate fingerprint), and the one-time enrolment JWT while an enrolment is pending.
type RouterEnrolment struct {
	ID                string
	Name              string
	RoleAttributes    []string
	IsTunnelerEnabled bool
	// IsVerified is true once the router completed its enrolment (the controller holds its certificate).
	IsVerified bool
	// JWT is the pending one-time enrolment token ("" when none is pending); it expires at JWTExpiresAt.
	JWT          string
	JWTExpiresAt time.Time
	Tags         map[string]any
}

// Pending reports whether an enrolment JWT is waiting to be used and still valid at now.
func (r RouterEnrolment) Pending(now time.Time) bool {
	return r.JWT != "" && !r.IsVerified && (r.JWTExpiresAt.IsZero() || now.Before(r.JWTExpiresAt))
}

// RouterSpec is what CreateEdgeRouter creates and UpdateEdgeRouter sets.
type RouterSpec struct {
	Name              string
	RoleAttributes    []string
	IsTunnelerEnabled bool
	Tags              map[string]any // nil: none on create, unchanged on update
}

// FindEdgeRouter returns the edge router called name with its enrolment state; ok is false when there is none.
func (c *Client) FindEdgeRouter(ctx context.Context, name string) (r RouterEnrolment, ok bool, err error) {
	var found []RouterEnrolment
	err = listAll(ctx, c, "find edge router "+name, func(ctx context.Context, limit, offset int64) (int, *rest_model.Meta, error) {
		p := edge_router.NewListEdgeRoutersParamsWithContext(ctx)
		p.Limit, p.Offset = &limit, &offset
		p.Filter = optString(FilterEq("name", name))
		resp, err := c.mgmt.EdgeRouter.ListEdgeRouters(p, c.session())
		if err != nil {
			return 0, nil, err
		}
		for _, d := range resp.Payload.Data {
			if d != nil && str(d.Name) == name { // the filter is exact; the check guards against a wider one
				found = append(found, routerFromWire(d))
			}
		}
		return len(resp.Payload.Data), resp.Payload.Meta, nil
	})
	if err != nil || len(found) == 0 {
		return RouterEnrolment{}, false, err
	}
	return found[0], true, nil
}

// GetEdgeRouter returns edge router id with its enrolment state; IsNotFound(err) when there is none.
func (c *Client) GetEdgeRouter(ctx context.Context, id string) (RouterEnrolment, error) {
	var out RouterEnrolment
	err := c.do(ctx, "get edge router "+id, func(ctx context.Context) error {
		p := edge_router.NewDetailEdgeRouterParamsWithContext(ctx)
		p.ID = id
		resp, err := c.mgmt.EdgeRouter.DetailEdgeRouter(p, c.session())
		if err != nil {
			return err
		}
		if resp.Payload == nil || resp.Payload.Data == nil {
			return fmt.Errorf("empty answer")
		}
		out = routerFromWire(resp.Payload.Data)
		return nil
	})
	return out, err
}

// CreateEdgeRouter creates an edge router, which gets a pending one-time enrolment, and returns its id.
func (c *Client) CreateEdgeRouter(ctx context.Context, in RouterSpec) (string, error) {
	var id string
	err := c.do(ctx, "create edge router "+in.Name, func(ctx context.Context) error {
		p := edge_router.NewCreateEdgeRouterParamsWithContext(ctx)
		p.EdgeRouter = &rest_model.EdgeRouterCreate{
			Name:              &in.Name,
			IsTunnelerEnabled: in.IsTunnelerEnabled,
			RoleAttributes:    attributes(in.RoleAttributes),
			Tags:              tagsToWire(in.Tags),
		}
		resp, err := c.mgmt.EdgeRouter.CreateEdgeRouter(p, c.session())
		if err != nil {
			return err
		}
		id, err = createdID(resp.Payload)
		return err
	})
	return id, err
}

// UpdateEdgeRouter patches the role attributes of edge router id, turns its tunneler on when in asks for it
// (the controller's PATCH cannot turn it off), and replaces its tags when in.Tags is not empty.
func (c *Client) UpdateEdgeRouter(ctx context.Context, id string, in RouterSpec) error {
	return c.do(ctx, "update edge router "+nameOr(in.Name, id), func(ctx context.Context) error {
		p := edge_router.NewPatchEdgeRouterParamsWithContext(ctx)
		p.ID = id
		p.EdgeRouter = &rest_model.EdgeRouterPatch{RoleAttributes: attributes(in.RoleAttributes), IsTunnelerEnabled: in.IsTunnelerEnabled}
		if len(in.Tags) > 0 {
			p.EdgeRouter.Tags = tagsToWire(in.Tags)
		}
		_, err := c.mgmt.EdgeRouter.PatchEdgeRouter(p, c.session())
		return err
	})
}

// ReEnrollEdgeRouter gives edge router id a new one-time enrolment (POST /edge-routers/{id}/re-enroll): an
// enrolled router loses its certificate and is disconnected until it enrols again with the new JWT.
func (c *Client) ReEnrollEdgeRouter(ctx context.Context, id string) error {
	return c.do(ctx, "re-enrol edge router "+id, func(ctx context.Context) error {
		p := edge_router.NewReEnrollEdgeRouterParamsWithContext(ctx)
		p.ID = id
		_, err := c.mgmt.EdgeRouter.ReEnrollEdgeRouter(p, c.session())
		return err
	})
}

// DeleteEdgeRouter removes edge router id.
func (c *Client) DeleteEdgeRouter(ctx context.Context, id string) error {
	return c.do(ctx, "delete edge router "+id, func(ctx context.Context) error {
		p := edge_router.NewDeleteEdgeRouterParamsWithContext(ctx)
		p.ID = id
		_, err := c.mgmt.EdgeRouter.DeleteEdgeRouter(p, c.session())
		return err
	})
}

func routerFromWire(d *rest_model.EdgeRouterDetail) RouterEnrolment {
	r := RouterEnrolment{
		ID: str(d.ID), Name: str(d.Name), IsTunnelerEnabled: boolean(d.IsTunnelerEnabled),
		IsVerified: boolean(d.IsVerified), JWT: str(d.EnrollmentJWT), Tags: tagsFromWire(d.Tags),
	}
	if d.RoleAttributes != nil {
		r.RoleAttributes = []string(*d.RoleAttributes)
	}
	if d.EnrollmentExpiresAt != nil {
		r.JWTExpiresAt = time.Time(*d.EnrollmentExpiresAt)
	}
	return r
}

// EnrolledRouter is what a router receives when it enrols: its client and server certificates and the
// controller's CA chain (PEM).
type EnrolledRouter struct {
	CertPEM, ServerCertPEM, CAPEM string
}

// EnrollEdgeRouter does what `ziti router enroll` does with an edge router's one-time JWT: it sends a client and
// a server CSR for key (POST /enroll?method=erott&token=…) and returns the certificates. The JWT is not
// verified here (the controller checks its token); its claims only give the token and the router id.
func (a ClientAPI) EnrollEdgeRouter(ctx context.Context, jwt string, key any) (EnrolledRouter, error) {
	claims, err := JWTClaims(jwt)
	if err != nil {
		return EnrolledRouter{}, fmt.Errorf("enrol edge router: %w", err)
	}
	op := "enrol edge router " + claims.Subject
	base, err := baseURL(a.URL)
	if err != nil {
		return EnrolledRouter{}, fmt.Errorf("%s: %w", op, err)
	}
	csr := func() (string, error) {
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
			Subject: pkix.Name{CommonName: claims.Subject}, DNSNames: []string{"localhost"},
		}, key)
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), err
	}
	client, err := csr()
	if err != nil {
		return EnrolledRouter{}, fmt.Errorf("%s: CSR: %w", op, err)
	}
	server, err := csr()
	if err != nil {
		return EnrolledRouter{}, fmt.Errorf("%s: CSR: %w", op, err)
	}
	body, _ := json.Marshal(map[string]string{"certCsr": client, "serverCertCsr": server})
	u := base.JoinPath(clientPath, "enroll")
	u.RawQuery = url.Values{"method": {"erott"}, "token": {claims.ID}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return EnrolledRouter{}, fmt.Errorf("%s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if a.Roots == nil {
		return EnrolledRouter{}, fmt.Errorf("%s: no CA pool to verify the controller with", op)
	}
	hc := newHTTPClient(a.Roots, a.Counter, nil)
	defer hc.CloseIdleConnections()
	resp, err := hc.Do(req)
	if err != nil {
		return EnrolledRouter{}, fmt.Errorf("%s: %w", op, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var env struct {
		Data struct {
			Cert       string `json:"cert"`
			ServerCert string `json:"serverCert"`
			CA         string `json:"ca"`
		} `json:"data"`
		Error *rest_model.APIError `json:"error"`
	}
	_ = json.Unmarshal(raw, &env)
	if resp.StatusCode != http.StatusOK {
		if env.Error != nil {
			return EnrolledRouter{}, fmt.Errorf("%s: %w", op, fromEnvelope(resp.StatusCode, env.Error, false))
		}
		return EnrolledRouter{}, fmt.Errorf("%s: %w", op, &APIError{Status: resp.StatusCode, Message: http.StatusText(resp.StatusCode)})
	}
	if env.Data.Cert == "" || env.Data.ServerCert == "" {
		return EnrolledRouter{}, fmt.Errorf("%s: the answer holds no certificate", op)
	}
	return EnrolledRouter{CertPEM: env.Data.Cert, ServerCertPEM: env.Data.ServerCert, CAPEM: env.Data.CA}, nil
}

// EnrolmentClaims are the claims of an OpenZiti enrolment JWT that a caller may want to check.
type EnrolmentClaims struct {
	Issuer    string    `json:"iss"` // the controller's URL
	Subject   string    `json:"sub"` // the id of the router or identity to enrol
	ID        string    `json:"jti"` // the one-time token
	Method    string    `json:"em"`  // "erott" for an edge router
	ExpiresAt time.Time `json:"-"`
	Exp       int64     `json:"exp"`
}

// JWTClaims decodes the claims of an enrolment JWT without verifying its signature (the controller verifies the
// token when it is used). It fails on anything that is not a three-part JWT with a JSON payload.
func JWTClaims(jwt string) (EnrolmentClaims, error) {
	parts := strings.Split(strings.TrimSpace(jwt), ".")
	if len(parts) != 3 {
		return EnrolmentClaims{}, fmt.Errorf("not a JWT (%d part(s), want 3)", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return EnrolmentClaims{}, fmt.Errorf("JWT payload: %w", err)
	}
	var c EnrolmentClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return EnrolmentClaims{}, fmt.Errorf("JWT payload: %w", err)
	}
	if c.Exp > 0 {
		c.ExpiresAt = time.Unix(c.Exp, 0)
	}
	return c, nil
}
