// Package routerenrol lets an OpenZiti edge router enrol without the admin password on its node. OpenZiti
// cannot enrol routers through a third-party CA (openziti/ziti#1390, #2110), so the nearest safe thing is a
// small service that holds the admin credentials and hands a router its one-time enrolment JWT once the router
// has proved who it is with its X509-SVID.
//
// # Protocol
//
// The Server listens on HTTPS with its own X509-SVID (from the SPIRE agent's Workload API). It asks every client
// for a certificate and accepts a request only when that certificate is an X509-SVID of the server's own trust
// domain that verifies against the trust bundle, and its SPIFFE ID is mapped to a router (ZB_ROUTER_IDS).
//
//	POST /v1/enrol   {"reenrol": false}
//	200 {"router":"ziti-edge-router","routerId":"…","action":"created","jwt":"eyJ…","expiresAt":"…"}
//	403 {"error":"…"}   no client certificate; not an SVID of this trust domain; a SPIFFE ID mapped to no router
//	409 {"error":"…"}   the router is enrolled and reenrol was not asked; or a router of that name exists that
//	                    the service did not create
//	502 {"error":"…"}   the controller failed
//	GET /healthz     200 "ok" (no client certificate needed)
//
// For an allowed caller, by the state of its edge router:
//
//   - missing: created (tunneler enabled, the mapped role attributes, tags "ziti-bootstrap": "router-enrol" and
//     "ziti-bootstrap.spiffeId": the caller's SPIFFE ID); action "created" with its JWT;
//   - enrolment pending and its JWT still valid: that JWT, action "pending" (nothing written);
//   - not enrolled and no valid JWT (it expired): re-enrolled, action "renewed";
//   - enrolled: with reenrol, re-enrolled (the controller drops its certificate and disconnects it until it
//     enrols again), action "reenrolled"; without, 409.
//
// An owned router whose role attributes differ from the mapping, or whose tunneler is off, is updated first. A
// router of the mapped name without the service's tags, or tagged for another SPIFFE ID, is never touched (409).
// Requests are served one at a time, so two calls of one router cannot create it twice.
//
// # Why it is safe
//
// Only the server's node holds the admin password. A router's node holds nothing that can log in to the
// management API: the router's SVID can obtain one enrolment JWT for its own router, no other. A refused caller
// causes no write.
//
// The Client (`router-enrol`) fetches its SVID from the Workload API, verifies that the server presents the
// expected SPIFFE ID, and writes the JWT to a file, atomically and readable by its owner only.
package routerenrol

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
)

// Path is where the server takes enrolment requests.
const Path = "/v1/enrol"

// RequestTimeout bounds the controller calls of one request (requests are served one at a time).
const RequestTimeout = 30 * time.Second

// Owner tags mark the edge routers the service created: only those are ever re-enrolled or updated by it.
const (
	TagOwner    = "ziti-bootstrap"
	OwnerValue  = "router-enrol"
	TagSpiffeID = "ziti-bootstrap.spiffeId"
)

// The actions of a Response.
const (
	ActionCreated    = "created"
	ActionPending    = "pending"
	ActionRenewed    = "renewed"
	ActionReenrolled = "reenrolled"
)

// Identity is an X509-SVID with the trust bundle to verify peers (workloadapi.X509Source).
type Identity interface {
	x509svid.Source
	x509bundle.Source
}

// Admin is what the server asks of the controller's management API (ziti.Client, logged in as admin).
type Admin interface {
	FindEdgeRouter(ctx context.Context, name string) (ziti.RouterEnrolment, bool, error)
	GetEdgeRouter(ctx context.Context, id string) (ziti.RouterEnrolment, error)
	CreateEdgeRouter(ctx context.Context, in ziti.RouterSpec) (string, error)
	UpdateEdgeRouter(ctx context.Context, id string, in ziti.RouterSpec) error
	ReEnrollEdgeRouter(ctx context.Context, id string) error
}

var _ Admin = (*ziti.Client)(nil)

// Request is the body of POST /v1/enrol.
type Request struct {
	Reenrol bool `json:"reenrol"`
}

// Response is the answer to an accepted request.
type Response struct {
	Router    string    `json:"router"`
	RouterID  string    `json:"routerId"`
	Action    string    `json:"action"`
	JWT       string    `json:"jwt"`
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
}

// Server hands routers their enrolment JWTs. Set Identity, Admin and Routers; Log and Now have defaults.
type Server struct {
	Identity Identity
	Admin    Admin
	Routers  []config.RouterID
	Log      *slog.Logger
	Now      func() time.Time

	mu sync.Mutex // one request at a time
}

// Check fails unless every mapped SPIFFE ID is in the trust domain of the server's own SVID (a *config.Error
// naming ZB_ROUTER_IDS): the server accepts SVIDs of its own trust domain only.
func (s *Server) Check() error {
	svid, err := s.Identity.GetX509SVID()
	if err != nil {
		return fmt.Errorf("router enrolment server: own X509-SVID: %w", err)
	}
	var problems []config.Problem
	for _, r := range s.Routers {
		if r.SpiffeID.TrustDomain() != svid.ID.TrustDomain() {
			problems = append(problems, config.Problem{Var: "ZB_ROUTER_IDS", Msg: fmt.Sprintf(
				"%s is not in the server's trust domain %s (its SVID is %s); only SVIDs of that trust domain are accepted",
				r.SpiffeID, svid.ID.TrustDomain(), svid.ID)})
		}
	}
	if len(problems) > 0 {
		return &config.Error{Problems: problems}
	}
	return nil
}

// TLSConfig presents the server's current X509-SVID and asks clients for a certificate without requiring one:
// the handler verifies it, so that a refusal is an HTTP 403 with a reason rather than a failed handshake.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: tlsconfig.GetCertificate(s.Identity),
		ClientAuth:     tls.RequestClientCert,
	}
}

// ServeHTTP serves Path and /healthz.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/healthz" && r.Method == http.MethodGet:
		_, _ = io.WriteString(w, "ok\n")
	case r.URL.Path != Path:
		http.NotFound(w, r)
	case r.Method != http.MethodPost:
		w.Header().Set("Allow", http.MethodPost)
		s.answerError(w, r, http.StatusMethodNotAllowed, "", "use POST")
	default:
		s.enrol(w, r)
	}
}

func (s *Server) enrol(w http.ResponseWriter, r *http.Request) {
	id, router, reason := s.authorize(r)
	if reason != "" {
		s.answerError(w, r, http.StatusForbidden, id, reason)
		return
	}
	var req Request
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		s.answerError(w, r, http.StatusBadRequest, id, "the body is not a JSON enrolment request: "+err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(r.Context(), RequestTimeout)
	defer cancel()
	resp, status, err := s.handle(ctx, id, router, req.Reenrol)
	if err != nil {
		s.answerError(w, r, status, id, err.Error())
		return
	}
	s.log().Info("router enrolment", "spiffeId", id, "router", resp.Router, "routerId", resp.RouterID, "action", resp.Action,
		"reenrol", req.Reenrol, "remote", r.RemoteAddr)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(resp)
}

// authorize verifies the client's certificate as an X509-SVID of the server's trust domain and finds its router;
// reason says why the caller is refused ("" when it is not).
func (s *Server) authorize(r *http.Request) (id string, router config.RouterID, reason string) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return "", router, "no client certificate: present the router's X509-SVID"
	}
	own, err := s.Identity.GetX509SVID()
	if err != nil {
		return "", router, "the server has no X509-SVID to compare trust domains: " + err.Error()
	}
	if leaf := r.TLS.PeerCertificates[0]; len(leaf.URIs) == 1 {
		id = leaf.URIs[0].String() // for the log only, until verified
	}
	sid, _, err := x509svid.Verify(r.TLS.PeerCertificates, s.Identity)
	if err != nil {
		return id, router, "the client certificate is not a valid X509-SVID of a trusted trust domain: " + err.Error()
	}
	if sid.TrustDomain() != own.ID.TrustDomain() {
		return sid.String(), router, fmt.Sprintf("SPIFFE ID %s is not in trust domain %s", sid, own.ID.TrustDomain())
	}
	i := slices.IndexFunc(s.Routers, func(r config.RouterID) bool { return r.SpiffeID == sid })
	if i < 0 {
		return sid.String(), router, fmt.Sprintf("SPIFFE ID %s is not mapped to a router (ZB_ROUTER_IDS)", sid)
	}
	return sid.String(), s.Routers[i], ""
}

// handle brings the caller's router to a state with a usable enrolment JWT. The status goes with the error.
func (s *Server) handle(ctx context.Context, id string, want config.RouterID, reenrol bool) (Response, int, error) {
	spec := ziti.RouterSpec{Name: want.Name, RoleAttributes: want.RoleAttributes, IsTunnelerEnabled: true,
		Tags: map[string]any{TagOwner: OwnerValue, TagSpiffeID: id}}
	if spec.RoleAttributes == nil {
		spec.RoleAttributes = []string{}
	}
	have, ok, err := s.Admin.FindEdgeRouter(ctx, want.Name)
	if err != nil {
		return Response{}, http.StatusBadGateway, err
	}
	if !ok {
		rid, err := s.Admin.CreateEdgeRouter(ctx, spec)
		if err != nil {
			return Response{}, http.StatusBadGateway, err
		}
		return s.answer(ctx, rid, ActionCreated)
	}
	if owner, sid := have.Tags[TagOwner], have.Tags[TagSpiffeID]; owner != OwnerValue || sid != id {
		return Response{}, http.StatusConflict, fmt.Errorf("edge router %s exists and was not created by this service for %s (tags %s=%v, %s=%v); "+
			"delete it (ziti edge delete edge-router %s) to let the router enrol, or map another name", want.Name, id, TagOwner, owner, TagSpiffeID, sid, want.Name)
	}
	if !ziti.EqualSets(have.RoleAttributes, spec.RoleAttributes) || !have.IsTunnelerEnabled {
		spec.Tags = nil // keep the tags an operator added
		if err := s.Admin.UpdateEdgeRouter(ctx, have.ID, spec); err != nil {
			return Response{}, http.StatusBadGateway, err
		}
		s.log().Info("router updated to its mapping", "router", want.Name, "roleAttributes", spec.RoleAttributes)
	}
	switch now := s.now(); {
	case have.Pending(now):
		return Response{Router: have.Name, RouterID: have.ID, Action: ActionPending, JWT: have.JWT, ExpiresAt: have.JWTExpiresAt}, http.StatusOK, nil
	case !have.IsVerified:
		if err := s.Admin.ReEnrollEdgeRouter(ctx, have.ID); err != nil {
			return Response{}, http.StatusBadGateway, err
		}
		return s.answer(ctx, have.ID, ActionRenewed)
	case !reenrol:
		return Response{}, http.StatusConflict, fmt.Errorf("edge router %s is enrolled already; if it lost its identity (its volume), ask again with reenrol (router-enrol --reenrol)", want.Name)
	default:
		if err := s.Admin.ReEnrollEdgeRouter(ctx, have.ID); err != nil {
			return Response{}, http.StatusBadGateway, err
		}
		return s.answer(ctx, have.ID, ActionReenrolled)
	}
}

// answer reads router id back and returns its pending JWT.
func (s *Server) answer(ctx context.Context, id, action string) (Response, int, error) {
	r, err := s.Admin.GetEdgeRouter(ctx, id)
	if err != nil {
		return Response{}, http.StatusBadGateway, err
	}
	if r.JWT == "" {
		return Response{}, http.StatusBadGateway, fmt.Errorf("edge router %s (%s): the controller gave no enrolment JWT", r.Name, id)
	}
	return Response{Router: r.Name, RouterID: r.ID, Action: action, JWT: r.JWT, ExpiresAt: r.JWTExpiresAt}, http.StatusOK, nil
}

func (s *Server) answerError(w http.ResponseWriter, r *http.Request, status int, id, reason string) {
	s.log().Warn("router enrolment refused", "status", status, "spiffeId", id, "reason", reason, "remote", r.RemoteAddr)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": reason})
}

func (s *Server) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}
