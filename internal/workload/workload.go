// Package workload is the small long-running workload of `ziti-bootstrap workload`: it proves the SPIFFE → OpenZiti
// identity flow. With the X509-SVID the SPIRE agent gives it, it enrols in OpenZiti through the verified SPIRE CA
// (auto-enrolment, once: the identity's externalId is the SPIFFE ID), logs in with the certificate and reads its
// identity; it logs in again at every SVID rotation.
//
// # Each login
//
// A round starts for every new SVID (a leaf certificate of another serial): on start, and each time the agent
// rotates the SVID. In a round the workload logs in with POST /edge/client/v1/authenticate?method=cert on a fresh
// TLS connection presenting the SVID (leaf + SPIRE intermediate); when the controller answers 401 (no identity
// with this externalId yet) it enrols (POST /enroll?method=ca, name ZB_WORKLOAD_NAME) and logs in again. A refused
// enrolment followed by a login that succeeds (another replica of the SPIFFE ID enrolled first; the controller
// answers the duplicate with HTTP 500) counts as done. It then reads GET
// /current-identity with the new session and logs out (DELETE /current-api-session): no session is kept from one
// SVID to the next. Failed attempts are retried with exponential backoff (200 ms … 5 s) until the round's
// deadline (ZB_WAIT_TIMEOUT); after it, Run returns a *wait.UnreachableError (exit code 3, and Swarm restarts the
// task). A rotation during a round is picked up by the next attempt.
//
// # What it prints
//
// One JSON object per line on its output for each enrolment, login and failure (Event):
//
//	{"time":"2026-12-05T12:00:00.1Z","event":"authenticated","spiffeId":"spiffe://td/app","serial":"3f…",
//	 "notAfter":"…","identityId":"…","identityName":"spire-…-app","externalId":"spiffe://td/app",
//	 "roleAttributes":["spire-workloads"],"sessionId":"…","attempt":1}
//	{"time":"…","event":"failed","stage":"authenticate","spiffeId":"…","serial":"…","error":"…","attempt":2}
//
// event is "enrolled", "authenticated" or "failed"; stage (for failures) is "workload-api", "authenticate",
// "enrol" or "identity".
//
// # Health
//
// Healthy reports whether the SVID the source holds now has logged in (Status); `workload healthcheck` asks it
// through /healthz.
package workload

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spireagent"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
)

// Source holds the workload's current X509-SVID and tells when it changes (workloadapi.X509Source).
type Source interface {
	GetX509SVID() (*x509svid.SVID, error)
	Updated() <-chan struct{}
}

// Controller is what the workload asks of the OpenZiti client API (ziti.ClientAPI).
type Controller interface {
	AuthenticateCert(ctx context.Context, cert tls.Certificate) (ziti.Session, error)
	EnrollWithCA(ctx context.Context, cert tls.Certificate, name string) error
	CurrentIdentity(ctx context.Context, token config.Secret) (ziti.Identity, error)
	Logout(ctx context.Context, token config.Secret) error
}

var _ Controller = ziti.ClientAPI{}

// Event is one line of the workload's output.
type Event struct {
	Time           time.Time  `json:"time"`
	Event          string     `json:"event"`           // EventEnrolled, EventAuthenticated, EventFailed
	Stage          string     `json:"stage,omitempty"` // for failures: Stage*
	SpiffeID       string     `json:"spiffeId,omitempty"`
	Serial         string     `json:"serial,omitempty"` // the SVID leaf's serial number, lower-case hex
	NotAfter       *time.Time `json:"notAfter,omitempty"`
	IdentityID     string     `json:"identityId,omitempty"`
	IdentityName   string     `json:"identityName,omitempty"`
	ExternalID     string     `json:"externalId,omitempty"`
	RoleAttributes []string   `json:"roleAttributes,omitempty"`
	SessionID      string     `json:"sessionId,omitempty"`
	Attempt        int        `json:"attempt,omitempty"`
	Error          string     `json:"error,omitempty"`
}

// The values of Event.Event and Event.Stage.
const (
	EventEnrolled      = "enrolled"
	EventAuthenticated = "authenticated"
	EventFailed        = "failed"

	StageWorkloadAPI  = "workload-api"
	StageAuthenticate = "authenticate"
	StageEnrol        = "enrol"
	StageIdentity     = "identity"
)

// Workload logs in to OpenZiti with each SVID of Source. Set Source, Ziti and Out; the rest has defaults.
type Workload struct {
	Source Source
	Ziti   Controller
	Out    io.Writer // JSON lines (Event)
	// Name is the name requested at enrolment; "" uses DefaultName of the SVID's SPIFFE ID.
	Name string
	// Deadline bounds each round of attempts (one per SVID); 0 means one attempt.
	Deadline time.Duration
	// Where names the controller in errors (its URL).
	Where string
	Now   func() time.Time

	outMu sync.Mutex
	mu    sync.Mutex
	st    Status
}

// Status is what Healthy and /healthz report.
type Status struct {
	Healthy bool   `json:"healthy"`
	Reason  string `json:"reason,omitempty"`
	// SpiffeID and Serial are those of the SVID the source holds now; AuthenticatedSerial of the last SVID that
	// logged in, at AuthenticatedAt.
	SpiffeID            string    `json:"spiffeId,omitempty"`
	Serial              string    `json:"serial,omitempty"`
	AuthenticatedSerial string    `json:"authenticatedSerial,omitempty"`
	AuthenticatedAt     time.Time `json:"authenticatedAt,omitzero"`
	IdentityID          string    `json:"identityId,omitempty"`
	LastError           string    `json:"lastError,omitempty"`
	Logins              int       `json:"logins"`
}

// DefaultName is the enrolment name of a SPIFFE ID: its path without the leading /, each / written as -
// (spiffe://td/ns/app → ns-app); the trust domain when the path is empty.
func DefaultName(spiffeID string) string {
	_, path, _ := strings.Cut(strings.TrimPrefix(spiffeID, "spiffe://"), "/")
	if path == "" {
		td, _, _ := strings.Cut(strings.TrimPrefix(spiffeID, "spiffe://"), "/")
		return td
	}
	return strings.ReplaceAll(strings.Trim(path, "/"), "/", "-")
}

// Run logs in with the current SVID, then again with each new one, until ctx ends (then it returns nil) or a
// round passes its deadline (a *wait.UnreachableError) or meets a permanent error (a *config.Error when the
// controller's certificate does not verify).
func (w *Workload) Run(ctx context.Context) error {
	last := ""
	for {
		svid, err := w.Source.GetX509SVID()
		if err == nil && spireagent.Serial(svid) != last {
			if err := w.round(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			w.mu.Lock()
			last = w.st.AuthenticatedSerial
			w.mu.Unlock()
			continue // the SVID may have rotated during the round
		}
		if err != nil {
			w.emit(Event{Event: EventFailed, Stage: StageWorkloadAPI, Error: err.Error()})
		}
		select {
		case <-ctx.Done():
			return nil
		case <-w.Source.Updated():
		}
	}
}

// round logs in with the source's current SVID, retrying until it succeeds or the deadline passes.
func (w *Workload) round(ctx context.Context) error {
	attempt := 0
	return wait.For(ctx, wait.Target{What: "OpenZiti controller (login with the X509-SVID)", Where: w.Where, Deadline: w.Deadline},
		func(ctx context.Context) error {
			attempt++
			svid, err := w.Source.GetX509SVID()
			if err != nil {
				w.fail(Event{Stage: StageWorkloadAPI, Attempt: attempt}, err)
				return err
			}
			err = w.login(ctx, svid, attempt)
			var cve *tls.CertificateVerificationError
			if errors.As(err, &cve) {
				return wait.Permanent(&config.Error{Problems: []config.Problem{{Var: "ZITI_CA_FILE",
					Msg: fmt.Sprintf("the controller's TLS certificate does not verify (%v); point ZITI_CA_FILE at the CA that issued it", cve.Err)}}})
			}
			return err
		})
}

// login is one attempt: log in (enrolling first when the controller knows no such identity), read the
// identity, log out.
func (w *Workload) login(ctx context.Context, svid *x509svid.SVID, attempt int) error {
	cert := spireagent.Certificate(svid)
	base := describe(svid)
	base.Attempt = attempt
	s, err := w.Ziti.AuthenticateCert(ctx, cert)
	if isUnauthorized(err) {
		name := w.Name
		if name == "" {
			name = DefaultName(svid.ID.String())
		}
		refused := err
		eerr := w.Ziti.EnrollWithCA(ctx, cert, name)
		if eerr == nil {
			e := base
			e.Event = EventEnrolled
			w.emit(e)
		}
		s, err = w.Ziti.AuthenticateCert(ctx, cert)
		if err != nil && eerr != nil {
			w.fail(withStage(base, StageEnrol), fmt.Errorf("%w (the login before it was refused: %v)", eerr, refused))
			return eerr
		}
		// an enrolment refused while the login now succeeds: another replica of this SPIFFE ID enrolled first
		// (the controller answers a duplicate externalId with HTTP 500)
	}
	if err != nil {
		w.fail(withStage(base, StageAuthenticate), err)
		return err
	}
	id, err := w.Ziti.CurrentIdentity(ctx, s.Token)
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second) // log out even when stopping
	defer cancel()
	if lerr := w.Ziti.Logout(lctx, s.Token); lerr != nil && err == nil {
		// the session expires by itself; a failed logout does not make the login fail
		w.fail(withStage(base, StageIdentity), fmt.Errorf("log out (the login itself succeeded): %w", lerr))
	}
	if err != nil {
		w.fail(withStage(base, StageIdentity), err)
		return err
	}
	e := base
	e.Event, e.IdentityID, e.IdentityName, e.ExternalID, e.RoleAttributes, e.SessionID =
		EventAuthenticated, id.ID, id.Name, id.ExternalID, id.RoleAttributes, s.ID
	w.emit(e)
	w.mu.Lock()
	w.st.AuthenticatedSerial, w.st.AuthenticatedAt, w.st.IdentityID, w.st.LastError = base.Serial, w.now(), id.ID, ""
	w.st.Logins++
	w.mu.Unlock()
	return nil
}

// Status reports whether the SVID the source holds now has logged in.
func (w *Workload) Status() Status {
	w.mu.Lock()
	st := w.st
	w.mu.Unlock()
	svid, err := w.Source.GetX509SVID()
	switch {
	case err != nil:
		st.Reason = "no X509-SVID: " + err.Error()
	default:
		st.SpiffeID, st.Serial = svid.ID.String(), spireagent.Serial(svid)
		switch {
		case st.AuthenticatedSerial == "":
			st.Reason = "not logged in yet"
		case st.AuthenticatedSerial != st.Serial:
			st.Reason = "the current SVID has not logged in yet (rotated from " + st.AuthenticatedSerial + ")"
		default:
			st.Healthy = true
		}
	}
	return st
}

// ServeHTTP answers /healthz: 200 and the Status as JSON when healthy, else 503.
func (w *Workload) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/healthz" {
		http.NotFound(rw, r)
		return
	}
	st := w.Status()
	rw.Header().Set("Content-Type", "application/json")
	if !st.Healthy {
		rw.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(rw).Encode(st)
}

func (w *Workload) fail(e Event, err error) {
	e.Event, e.Error = EventFailed, err.Error()
	w.mu.Lock()
	w.st.LastError = e.Error
	w.mu.Unlock()
	w.emit(e)
}

// Emit writes e as one line of the output, with the time set (for events found outside Run, e.g. while the
// Workload API is not there yet).
func (w *Workload) Emit(e Event) { w.emit(e) }

func (w *Workload) emit(e Event) {
	e.Time = w.now().UTC()
	b, _ := json.Marshal(e)
	w.outMu.Lock()
	defer w.outMu.Unlock()
	_, _ = w.Out.Write(append(b, '\n'))
}

func (w *Workload) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

func describe(svid *x509svid.SVID) Event {
	leaf := svid.Certificates[0]
	na := leaf.NotAfter.UTC()
	return Event{SpiffeID: svid.ID.String(), Serial: spireagent.Serial(svid), NotAfter: &na}
}

func withStage(e Event, stage string) Event { e.Stage = stage; return e }

func isUnauthorized(err error) bool {
	var ae *ziti.APIError
	return errors.As(err, &ae) && ae.Status == http.StatusUnauthorized
}
