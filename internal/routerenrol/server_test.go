package routerenrol

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
)

// fakeAdmin is a controller with at most one edge router; it records the writes.
type fakeAdmin struct {
	r      *ziti.RouterEnrolment
	writes []string
	jwtN   int
}

func (f *fakeAdmin) FindEdgeRouter(_ context.Context, name string) (ziti.RouterEnrolment, bool, error) {
	if f.r == nil || f.r.Name != name {
		return ziti.RouterEnrolment{}, false, nil
	}
	return *f.r, true, nil
}

func (f *fakeAdmin) GetEdgeRouter(_ context.Context, id string) (ziti.RouterEnrolment, error) {
	if f.r == nil || f.r.ID != id {
		return ziti.RouterEnrolment{}, &ziti.APIError{Status: 404, Code: "NOT_FOUND"}
	}
	return *f.r, nil
}

func (f *fakeAdmin) newJWT() string { f.jwtN++; return "h.jwt" + string(rune('0'+f.jwtN)) + ".s" }

func (f *fakeAdmin) CreateEdgeRouter(_ context.Context, in ziti.RouterSpec) (string, error) {
	f.writes = append(f.writes, "create")
	f.r = &ziti.RouterEnrolment{ID: "r1", Name: in.Name, RoleAttributes: in.RoleAttributes, IsTunnelerEnabled: in.IsTunnelerEnabled,
		Tags: in.Tags, JWT: f.newJWT(), JWTExpiresAt: time.Now().Add(time.Hour)}
	return "r1", nil
}

func (f *fakeAdmin) UpdateEdgeRouter(_ context.Context, id string, in ziti.RouterSpec) error {
	f.writes = append(f.writes, "update")
	f.r.RoleAttributes, f.r.IsTunnelerEnabled = in.RoleAttributes, true
	return nil
}

func (f *fakeAdmin) ReEnrollEdgeRouter(_ context.Context, id string) error {
	f.writes = append(f.writes, "re-enroll")
	f.r.IsVerified, f.r.JWT, f.r.JWTExpiresAt = false, f.newJWT(), time.Now().Add(time.Hour)
	return nil
}

const routerID = "spiffe://zb.test/ziti-router"

func owned(mod func(r *ziti.RouterEnrolment)) *ziti.RouterEnrolment {
	r := &ziti.RouterEnrolment{ID: "r1", Name: "er", RoleAttributes: []string{"public"}, IsTunnelerEnabled: true,
		Tags: map[string]any{TagOwner: OwnerValue, TagSpiffeID: routerID}}
	mod(r)
	return r
}

func TestHandleByRouterState(t *testing.T) {
	want := config.RouterID{SpiffeID: spiffeid.RequireFromString(routerID), Name: "er", RoleAttributes: []string{"public"}}
	hourAgo := time.Now().Add(-time.Hour)
	for _, tc := range []struct {
		name       string
		have       *ziti.RouterEnrolment
		reenrol    bool
		status     int
		action     string
		writes     []string
		errContain string
	}{
		{name: "missing", have: nil, status: 200, action: ActionCreated, writes: []string{"create"}},
		{name: "pending", have: owned(func(r *ziti.RouterEnrolment) { r.JWT, r.JWTExpiresAt = "h.p.s", time.Now().Add(time.Hour) }),
			status: 200, action: ActionPending},
		{name: "pending, asked to re-enrol", reenrol: true,
			have:   owned(func(r *ziti.RouterEnrolment) { r.JWT, r.JWTExpiresAt = "h.p.s", time.Now().Add(time.Hour) }),
			status: 200, action: ActionPending},
		{name: "expired JWT", have: owned(func(r *ziti.RouterEnrolment) { r.JWT, r.JWTExpiresAt = "h.p.s", hourAgo }),
			status: 200, action: ActionRenewed, writes: []string{"re-enroll"}},
		{name: "enrolled", have: owned(func(r *ziti.RouterEnrolment) { r.IsVerified = true }),
			status: 409, errContain: "enrolled already"},
		{name: "enrolled, re-enrol", reenrol: true, have: owned(func(r *ziti.RouterEnrolment) { r.IsVerified = true }),
			status: 200, action: ActionReenrolled, writes: []string{"re-enroll"}},
		{name: "attributes changed", have: owned(func(r *ziti.RouterEnrolment) {
			r.RoleAttributes, r.JWT, r.JWTExpiresAt = []string{"old"}, "h.p.s", time.Now().Add(time.Hour)
		}), status: 200, action: ActionPending, writes: []string{"update"}},
		{name: "not created by the service", reenrol: true, have: owned(func(r *ziti.RouterEnrolment) { r.Tags = nil; r.IsVerified = true }),
			status: 409, errContain: "was not created by this service"},
		{name: "created for another SPIFFE ID", reenrol: true,
			have:   owned(func(r *ziti.RouterEnrolment) { r.Tags[TagSpiffeID] = "spiffe://zb.test/other"; r.IsVerified = true }),
			status: 409, errContain: "was not created by this service"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeAdmin{r: tc.have}
			s := &Server{Admin: f, Routers: []config.RouterID{want}}
			resp, status, err := s.handle(context.Background(), routerID, want, tc.reenrol)
			if status != tc.status || (err == nil) != (tc.errContain == "") || err != nil && !strings.Contains(err.Error(), tc.errContain) {
				t.Fatalf("status %d, err %v; want %d, error containing %q", status, err, tc.status, tc.errContain)
			}
			if !slices.Equal(f.writes, tc.writes) {
				t.Errorf("writes %v, want %v", f.writes, tc.writes)
			}
			if err != nil {
				return
			}
			if resp.Action != tc.action || resp.JWT == "" || resp.JWT != f.r.JWT || resp.Router != "er" || resp.RouterID != "r1" {
				t.Errorf("response %+v (router %+v); want action %s", resp, f.r, tc.action)
			}
			if tc.name == "missing" && (f.r.Tags[TagSpiffeID] != routerID || f.r.Tags[TagOwner] != OwnerValue || !f.r.IsTunnelerEnabled ||
				!slices.Equal(f.r.RoleAttributes, []string{"public"})) {
				t.Errorf("created %+v", f.r)
			}
		})
	}
}

func TestServeHTTPRoutes(t *testing.T) {
	s := &Server{}
	for _, tc := range []struct{ method, path string }{{"GET", "/healthz"}, {"GET", Path}, {"POST", "/other"}} {
		rec := httptest.NewRecorder()
		req, _ := http.NewRequest(tc.method, "https://x"+tc.path, nil)
		s.ServeHTTP(rec, req)
		switch tc.path {
		case "/healthz":
			if rec.Code != 200 {
				t.Errorf("%s %s: %d", tc.method, tc.path, rec.Code)
			}
		case Path:
			if rec.Code != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: %d", tc.method, tc.path, rec.Code)
			}
		default:
			if rec.Code != 404 {
				t.Errorf("%s %s: %d", tc.method, tc.path, rec.Code)
			}
		}
	}
	// a request without TLS (no client certificate) is refused before anything else
	rec := httptest.NewRecorder()
	req, _ := http.NewRequest("POST", "https://x"+Path, strings.NewReader(`{}`))
	s.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "no client certificate") {
		t.Errorf("without a certificate: %d %s", rec.Code, rec.Body.String())
	}
}
