package workload

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spireagent"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
)

// fakeSource serves the SVIDs a test puts in it.
type fakeSource struct {
	mu      sync.Mutex
	svid    *x509svid.SVID
	updated chan struct{}
}

func newSource() *fakeSource { return &fakeSource{updated: make(chan struct{}, 1)} }

func (s *fakeSource) GetX509SVID() (*x509svid.SVID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.svid == nil {
		return nil, errors.New("no SVID")
	}
	return s.svid, nil
}

func (s *fakeSource) Updated() <-chan struct{} { return s.updated }

func (s *fakeSource) set(v *x509svid.SVID) {
	s.mu.Lock()
	s.svid = v
	s.mu.Unlock()
	select {
	case s.updated <- struct{}{}:
	default:
	}
}

// fakeZiti knows identities by externalId, as the controller with a CA's externalIdClaim does.
type fakeZiti struct {
	mu         sync.Mutex
	ids        map[string]ziti.Identity // externalId → identity
	logins     []string                 // serial of each certificate login attempted
	enrols     int
	failLogins int   // the next n logins fail with a 503
	loginErr   error // when set, every login fails with it
	enrolErr   error // when set, every enrolment fails with it
	loggedOut  int
}

func (f *fakeZiti) AuthenticateCert(_ context.Context, cert tls.Certificate) (ziti.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logins = append(f.logins, spireagent.SerialOf(cert.Leaf.SerialNumber))
	if f.loginErr != nil {
		return ziti.Session{}, f.loginErr
	}
	if f.failLogins > 0 {
		f.failLogins--
		return ziti.Session{}, &ziti.APIError{Status: 503, Message: "Service Unavailable"}
	}
	id, ok := f.ids[cert.Leaf.URIs[0].String()]
	if !ok {
		return ziti.Session{}, &ziti.APIError{Status: 401, Code: "INVALID_AUTH"}
	}
	return ziti.Session{ID: "s" + f.logins[len(f.logins)-1], IdentityID: id.ID, Token: config.NewSecret("tok-" + id.ID)}, nil
}

func (f *fakeZiti) EnrollWithCA(_ context.Context, cert tls.Certificate, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.enrols++
	if f.enrolErr != nil {
		return f.enrolErr
	}
	ext := cert.Leaf.URIs[0].String()
	if _, ok := f.ids[ext]; ok {
		return &ziti.APIError{Status: 500, Message: "Internal Server Error"} // what the controller answers a duplicate externalId with
	}
	f.ids[ext] = ziti.Identity{ID: "id-" + name, Name: "spire-" + name, ExternalID: ext, RoleAttributes: []string{"spire-workloads"}}
	return nil
}

func (f *fakeZiti) CurrentIdentity(_ context.Context, token config.Secret) (ziti.Identity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range f.ids {
		if token.Value() == "tok-"+id.ID {
			return id, nil
		}
	}
	return ziti.Identity{}, &ziti.APIError{Status: 401}
}

func (f *fakeZiti) Logout(context.Context, config.Secret) error {
	f.mu.Lock()
	f.loggedOut++
	f.mu.Unlock()
	return nil
}

func (f *fakeZiti) loginSerials() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.logins...)
}

// svids issues X509-SVIDs for one SPIFFE ID from a test CA, each with a new key and serial.
type svids struct {
	t   *testing.T
	ca  *x509.Certificate
	caK *ecdsa.PrivateKey
	id  spiffeid.ID
}

func newSVIDs(t *testing.T, id string) *svids {
	k := testutil.NewKey(t)
	return &svids{t: t, ca: testutil.Issue(t, nil, nil, k, "test SPIRE CA", "", true), caK: k, id: spiffeid.RequireFromString(id)}
}

func (s *svids) next() *x509svid.SVID {
	s.t.Helper()
	k := testutil.NewKey(s.t)
	leaf := testutil.Issue(s.t, s.ca, s.caK, k, "", s.id.String(), false)
	return &x509svid.SVID{ID: s.id, Certificates: []*x509.Certificate{leaf, s.ca}, PrivateKey: k}
}

// events parses the JSON lines of out.
func events(t *testing.T, out string) []Event {
	t.Helper()
	var evs []Event
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if e.Time.IsZero() {
			t.Errorf("line without time: %s", sc.Text())
		}
		evs = append(evs, e)
	}
	return evs
}

// waitFor polls cond (the workload runs in another goroutine) for up to a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func start(t *testing.T, w *Workload) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	return func() error { cancel(); return <-done }
}

func TestEnrolsOnceAndLogsInAgainAtEachRotation(t *testing.T) {
	src, zc, out := newSource(), &fakeZiti{ids: map[string]ziti.Identity{}}, &testutil.SyncBuffer{}
	gen := newSVIDs(t, "spiffe://zb.test/ns/app")
	first := gen.next()
	src.set(first)
	w := &Workload{Source: src, Ziti: zc, Out: out, Deadline: time.Minute, Where: "https://ctrl:1280"}
	if st := w.Status(); st.Healthy || st.Reason != "not logged in yet" {
		t.Errorf("status before the first login: %+v", st)
	}
	stop := start(t, w)
	waitFor(t, "the first login", func() bool { return w.Status().Healthy })

	second := gen.next()
	src.set(second)
	waitFor(t, "the login with the rotated SVID", func() bool {
		st := w.Status()
		return st.Healthy && st.AuthenticatedSerial == spireagent.Serial(second)
	})
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}

	evs := events(t, out.String())
	var kinds []string
	for _, e := range evs {
		kinds = append(kinds, e.Event)
	}
	want := []string{EventEnrolled, EventAuthenticated, EventAuthenticated}
	if strings.Join(kinds, ",") != strings.Join(want, ",") {
		t.Fatalf("events %v; want %v\n%s", kinds, want, out.String())
	}
	a1, a2 := evs[1], evs[2]
	if a1.Serial != spireagent.Serial(first) || a2.Serial != spireagent.Serial(second) || a1.Serial == a2.Serial {
		t.Errorf("serials %s, %s; want %s then %s", a1.Serial, a2.Serial, spireagent.Serial(first), spireagent.Serial(second))
	}
	for _, e := range evs[1:] {
		if e.SpiffeID != "spiffe://zb.test/ns/app" || e.ExternalID != e.SpiffeID || e.IdentityName != "spire-ns-app" ||
			e.IdentityID != "id-ns-app" || len(e.RoleAttributes) != 1 || e.NotAfter == nil || e.SessionID == "" {
			t.Errorf("event %+v", e)
		}
	}
	// one refused login, then the login after enrolment, then one login for the rotated SVID; one enrolment
	if got := zc.loginSerials(); len(got) != 3 || got[2] != spireagent.Serial(second) || zc.enrols != 1 || zc.loggedOut != 2 {
		t.Errorf("logins %v, %d enrolment(s), %d logout(s); want 3 logins, 1 enrolment, 2 logouts", got, zc.enrols, zc.loggedOut)
	}
}

func TestRetriesWhileTheControllerIsDownAndLogsEachFailure(t *testing.T) {
	src, out := newSource(), &testutil.SyncBuffer{}
	gen := newSVIDs(t, "spiffe://zb.test/app")
	src.set(gen.next())
	zc := &fakeZiti{ids: map[string]ziti.Identity{"spiffe://zb.test/app": {ID: "x", Name: "n", ExternalID: "spiffe://zb.test/app"}}, failLogins: 2}
	w := &Workload{Source: src, Ziti: zc, Out: out, Deadline: time.Minute}
	stop := start(t, w)
	waitFor(t, "the login", func() bool { return w.Status().Healthy })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	evs := events(t, out.String())
	if len(evs) != 3 || evs[0].Event != EventFailed || evs[0].Stage != StageAuthenticate || !strings.Contains(evs[0].Error, "503") ||
		evs[0].Attempt != 1 || evs[1].Attempt != 2 || evs[2].Event != EventAuthenticated || evs[2].Attempt != 3 {
		t.Errorf("events:\n%s", out.String())
	}
	if zc.enrols != 0 {
		t.Errorf("%d enrolments of an enrolled workload", zc.enrols)
	}
}

func TestGivesUpAfterTheDeadline(t *testing.T) {
	src, out := newSource(), &testutil.SyncBuffer{}
	src.set(newSVIDs(t, "spiffe://zb.test/app").next())
	zc := &fakeZiti{ids: map[string]ziti.Identity{}, loginErr: errors.New("dial tcp 10.0.0.1:1280: connection refused")}
	w := &Workload{Source: src, Ziti: zc, Out: out, Deadline: 300 * time.Millisecond, Where: "https://ctrl:1280"}
	err := w.Run(context.Background())
	var ue *wait.UnreachableError
	if !errors.As(err, &ue) || ue.Where != "https://ctrl:1280" || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Run = %v; want an UnreachableError naming the controller and the last error", err)
	}
	if st := w.Status(); st.Healthy || !strings.Contains(st.LastError, "connection refused") {
		t.Errorf("status %+v", st)
	}
}

func TestAControllerCertificateThatDoesNotVerifyIsAConfigurationError(t *testing.T) {
	src, out := newSource(), &testutil.SyncBuffer{}
	src.set(newSVIDs(t, "spiffe://zb.test/app").next())
	cve := &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}
	zc := &fakeZiti{ids: map[string]ziti.Identity{}, loginErr: cve}
	w := &Workload{Source: src, Ziti: zc, Out: out, Deadline: time.Minute}
	err := w.Run(context.Background())
	if !config.IsInvalid(err) || !strings.Contains(err.Error(), "ZITI_CA_FILE") {
		t.Fatalf("Run = %v; want a configuration error naming ZITI_CA_FILE", err)
	}
	if n := len(zc.loginSerials()); n != 1 {
		t.Errorf("%d login attempts; a certificate that does not verify is not retried", n)
	}
}

func TestHealthz(t *testing.T) {
	src := newSource()
	gen := newSVIDs(t, "spiffe://zb.test/app")
	src.set(gen.next())
	zc := &fakeZiti{ids: map[string]ziti.Identity{}}
	w := &Workload{Source: src, Ziti: zc, Out: &testutil.SyncBuffer{}, Deadline: time.Minute}
	srv := httptest.NewServer(w)
	defer srv.Close()
	get := func() (int, Status) {
		resp, err := http.Get(srv.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st Status
		_ = json.NewDecoder(resp.Body).Decode(&st)
		return resp.StatusCode, st
	}
	if code, st := get(); code != 503 || st.Healthy {
		t.Errorf("before login: %d %+v", code, st)
	}
	if err := w.round(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code, st := get(); code != 200 || !st.Healthy || st.Logins != 1 {
		t.Errorf("after login: %d %+v", code, st)
	}
	src.set(gen.next()) // rotated, not logged in yet (Run is not running)
	if code, st := get(); code != 503 || !strings.Contains(st.Reason, "rotated") {
		t.Errorf("after rotation: %d %+v", code, st)
	}
}

func TestDefaultName(t *testing.T) {
	testutil.Cases(t, "DefaultName", DefaultName, map[string]string{
		"spiffe://zb.test/ns/app":  "ns-app",
		"spiffe://zb.test/app":     "app",
		"spiffe://zb.test":         "zb.test",
		"spiffe://zb.test/a/b/c/d": "a-b-c-d",
	})
}

// A refused enrolment followed by a refused login (no CA bound yet) is a failure of stage enrol, retried.
func TestAFailedEnrolmentIsRetried(t *testing.T) {
	src, out := newSource(), &testutil.SyncBuffer{}
	src.set(newSVIDs(t, "spiffe://zb.test/app").next())
	zc := &fakeZiti{ids: map[string]ziti.Identity{}, enrolErr: &ziti.APIError{Status: 401, Code: "CERT_FAILED_VALIDATION"}}
	w := &Workload{Source: src, Ziti: zc, Out: out, Deadline: 500 * time.Millisecond}
	var ue *wait.UnreachableError
	if err := w.Run(context.Background()); !errors.As(err, &ue) || !strings.Contains(err.Error(), "CERT_FAILED_VALIDATION") {
		t.Fatalf("Run = %v; want an unreachable error with the enrolment's answer", err)
	}
	evs := events(t, out.String())
	if len(evs) < 2 || zc.enrols != len(evs) {
		t.Fatalf("%d enrolments, events:\n%s", zc.enrols, out)
	}
	for _, e := range evs {
		if e.Event != EventFailed || e.Stage != StageEnrol || !strings.Contains(e.Error, "the login before it was refused") {
			t.Errorf("event %+v", e)
		}
	}
}
