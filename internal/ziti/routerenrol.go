package ziti

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
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
	found, err := listOf(ctx, c, "find edge router "+name, FilterEq("name", name), edge_router.NewListEdgeRoutersParamsWithContext,
		c.edgeRouterPage, edgeRouterItems, routerFromWire)
	if err != nil {
		return RouterEnrolment{}, false, err
	}
	// the filter is exact; the check guards against a wider one
	if i := slices.IndexFunc(found, func(r RouterEnrolment) bool { return r.Name == name }); i >= 0 {
		return found[i], true, nil
	}
	return RouterEnrolment{}, false, nil
}

// GetEdgeRouter returns edge router id with its enrolment state; IsNotFound(err) when there is none.
func (c *Client) GetEdgeRouter(ctx context.Context, id string) (RouterEnrolment, error) {
	return fetched(ctx, c, "get edge router "+id, func(ctx context.Context) (*edge_router.DetailEdgeRouterOK, error) {
		p := edge_router.NewDetailEdgeRouterParamsWithContext(ctx).WithID(id)
		return c.mgmt.EdgeRouter.DetailEdgeRouter(p, c.session())
	}, func(r *edge_router.DetailEdgeRouterOK) (RouterEnrolment, error) {
		if r.Payload == nil || r.Payload.Data == nil {
			return RouterEnrolment{}, fmt.Errorf("empty answer")
		}
		return routerFromWire(r.Payload.Data), nil
	})
}

// CreateEdgeRouter creates an edge router, which gets a pending one-time enrolment, and returns its id.
func (c *Client) CreateEdgeRouter(ctx context.Context, in RouterSpec) (string, error) {
	return created(ctx, c, "create edge router "+in.Name, func(ctx context.Context) (*edge_router.CreateEdgeRouterCreated, error) {
		p := edge_router.NewCreateEdgeRouterParamsWithContext(ctx)
		p.EdgeRouter = &rest_model.EdgeRouterCreate{
			Name:              &in.Name,
			IsTunnelerEnabled: in.IsTunnelerEnabled,
			RoleAttributes:    attributes(in.RoleAttributes),
			Tags:              tagsToWire(in.Tags),
		}
		return c.mgmt.EdgeRouter.CreateEdgeRouter(p, c.session())
	})
}

// UpdateEdgeRouter patches the role attributes of edge router id, turns its tunneler on when in asks for it
// (the controller's PATCH cannot turn it off), and replaces its tags when in.Tags is not empty.
func (c *Client) UpdateEdgeRouter(ctx context.Context, id string, in RouterSpec) error {
	return c.do(ctx, "update edge router "+nameOr(in.Name, id), func(ctx context.Context) error {
		p := edge_router.NewPatchEdgeRouterParamsWithContext(ctx).WithID(id)
		p.EdgeRouter = &rest_model.EdgeRouterPatch{RoleAttributes: attributes(in.RoleAttributes), IsTunnelerEnabled: in.IsTunnelerEnabled}
		if len(in.Tags) > 0 {
			p.EdgeRouter.Tags = tagsToWire(in.Tags)
		}
		return discard(c.mgmt.EdgeRouter.PatchEdgeRouter(p, c.session()))
	})
}

// ReEnrollEdgeRouter gives edge router id a new one-time enrolment (POST /edge-routers/{id}/re-enroll): an
// enrolled router loses its certificate and is disconnected until it enrols again with the new JWT.
func (c *Client) ReEnrollEdgeRouter(ctx context.Context, id string) error {
	return c.do(ctx, "re-enrol edge router "+id, func(ctx context.Context) error {
		p := edge_router.NewReEnrollEdgeRouterParamsWithContext(ctx).WithID(id)
		return discard(c.mgmt.EdgeRouter.ReEnrollEdgeRouter(p, c.session()))
	})
}

// DeleteEdgeRouter removes edge router id.
func (c *Client) DeleteEdgeRouter(ctx context.Context, id string) error {
	return c.do(ctx, "delete edge router "+id, func(ctx context.Context) error {
		p := edge_router.NewDeleteEdgeRouterParamsWithContext(ctx).WithID(id)
		return discard(c.mgmt.EdgeRouter.DeleteEdgeRouter(p, c.session()))
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
