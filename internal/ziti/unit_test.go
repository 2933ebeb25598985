package ziti

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/go-openapi/runtime"
	"github.com/openziti/edge-api/rest_management_api_client"
	"github.com/openziti/edge-api/rest_model"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/invalid"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/redact"
)

func TestBaseURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://ctrl:1280":                     "https://ctrl:1280",
		"https://ctrl:1280/":                    "https://ctrl:1280",
		"https://ctrl:1280/edge/management/v1":  "https://ctrl:1280",
		"https://ctrl:1280/edge/client/v1/":     "https://ctrl:1280",
		"https://proxy/ziti/edge/management/v1": "https://proxy/ziti",
		"https://user:pw@ctrl:1280?x=1#frag":    "https://ctrl:1280",
		"https://[::1]:1280/edge/management/v1": "https://[::1]:1280",
	} {
		u, _ := url.Parse(in)
		got, err := baseURL(u)
		if err != nil || got.String() != want {
			t.Errorf("baseURL(%s) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"http://ctrl:1280", "ctrl:1280", ""} {
		u, _ := url.Parse(in)
		if in == "" {
			u = nil
		}
		if _, err := baseURL(u); !invalid.Is(err) || !strings.Contains(err.Error(), "ZITI_CTRL_URL") {
			t.Errorf("baseURL(%q): want invalid ZITI_CTRL_URL, got %v", in, err)
		}
	}
}

type fakePayloadErr struct{ env *rest_model.APIErrorEnvelope }

func (f fakePayloadErr) Error() string                            { return "[POST /cas][400] createCaBadRequest &{...}" }
func (f fakePayloadErr) GetPayload() *rest_model.APIErrorEnvelope { return f.env }

func TestWrapAPI(t *testing.T) {
	env := &rest_model.APIErrorEnvelope{Error: &rest_model.APIError{
		Code: "COULD_NOT_VALIDATE", Message: "invalid document", RequestID: "r1",
		Cause: &rest_model.APIErrorCause{APIFieldError: rest_model.APIFieldError{Field: "name", Reason: "duplicate", Value: "spire-ca"}},
	}}
	err := wrapAPI("create CA spire-ca", &status{code: 400}, fakePayloadErr{env})
	want := `create CA spire-ca: HTTP 400 COULD_NOT_VALIDATE: invalid document (field name: duplicate (value "spire-ca"))`
	if err.Error() != want {
		t.Errorf("got  %s\nwant %s", err, want)
	}
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Code != "COULD_NOT_VALIDATE" || ae.RequestID != "r1" {
		t.Errorf("errors.As APIError: %+v", ae)
	}
	if !IsConflict(err) || IsNotFound(err) {
		t.Errorf("IsConflict=%v IsNotFound=%v", IsConflict(err), IsNotFound(err))
	}
	// what controller 1.7.2 answers a create whose name is taken
	taken := &rest_model.APIErrorEnvelope{Error: &rest_model.APIError{Code: "COULD_NOT_VALIDATE",
		Message: "The supplied request contains an invalid document or no valid accept content were available, see cause",
		Cause:   &rest_model.APIErrorCause{APIFieldError: rest_model.APIFieldError{Field: "name", Reason: "name must be unique", Value: "x"}}}}
	if err := wrapAPI("create config x", &status{code: 400}, fakePayloadErr{taken}); !IsConflict(err) {
		t.Errorf("IsConflict=false for %v", err)
	}
	taken.Error.Cause.APIFieldError = rest_model.APIFieldError{Field: "certPem", Reason: "certificate already used as CA 6yB1GIcyRZutuhlWFAEcCa"}
	if err := wrapAPI("create CA x", &status{code: 400}, fakePayloadErr{taken}); !IsConflict(err) {
		t.Errorf("IsConflict=false for %v", err)
	}
	// values are left out when asked (logins)
	err = wrapAPIValues("log in", &status{code: 400}, fakePayloadErr{env}, false)
	if strings.Contains(err.Error(), "spire-ca") {
		t.Errorf("value leaked: %v", err)
	}
	// an undocumented status
	err = wrapAPI("get CA x", &status{code: 404}, runtime.NewAPIError("detailCa", nil, 404))
	if !IsNotFound(err) || err.Error() != "get CA x: HTTP 404: Not Found" {
		t.Errorf("runtime.APIError: %v", err)
	}
	// transport errors keep their chain
	err = wrapAPI("list CAs", &status{}, io.ErrUnexpectedEOF)
	if !errors.Is(err, io.ErrUnexpectedEOF) || err.Error() != "list CAs: unexpected EOF" {
		t.Errorf("plain error: %v", err)
	}
}

func TestQuoteAndSets(t *testing.T) {
	if got := FilterEq("name", `a"b\c`); got != `name = "a\"b\\c"` {
		t.Errorf("FilterEq = %s", got)
	}
	if !EqualSets([]string{"b", "a", "a"}, []string{"a", "b"}) || EqualSets([]string{"a"}, []string{"a", "b"}) ||
		EqualSets([]string{"a", "c"}, []string{"a", "b"}) || !EqualSets(nil, []string{}) {
		t.Error("EqualSets")
	}
}

func TestVerificationCert(t *testing.T) {
	root := newCert(t, nil, "root", nil, true)
	p, err := VerificationCert("token-1", root.cert, root.key)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p, "-----BEGIN CERTIFICATE-----") {
		t.Fatalf("not PEM: %s", p)
	}
	if _, err := VerificationCert("", root.cert, root.key); err == nil {
		t.Error("empty token accepted")
	}
}

func TestSessionTokenIsRedacted(t *testing.T) {
	s := Session{ID: "s", Token: redact.NewSecret("tok-secret")}
	if out := fmt.Sprintf("%v %+v %#v", s, s, s); strings.Contains(out, "tok-secret") {
		t.Errorf("token printed: %s", out)
	}
}

// A list page that answers 404 (an object deleted by another writer while the controller listed it) is asked
// for again; a 404 that persists, or any other error, is returned.
func TestListAllAsksAgainAfterNotFound(t *testing.T) {
	c := &Client{pageSize: 2, token: "session", mgmt: &rest_management_api_client.ZitiEdgeManagement{}} // connected and logged in
	notFound := &APIError{Status: http.StatusNotFound, Message: "Not Found"}
	total := int64(3)
	meta := &rest_model.Meta{Pagination: &rest_model.Pagination{TotalCount: &total}}
	var calls []int64
	fails := 1
	err := listAll(context.Background(), c, "list things", func(_ context.Context, limit, offset int64) (int, *rest_model.Meta, error) {
		calls = append(calls, offset)
		if offset == 2 && fails > 0 {
			fails--
			return 0, nil, notFound
		}
		return int(min(limit, total-offset)), meta, nil
	})
	if err != nil || fmt.Sprint(calls) != "[0 2 2]" {
		t.Fatalf("err %v, pages asked %v; want nil and [0 2 2]", err, calls)
	}
	calls, fails = nil, 100
	err = listAll(context.Background(), c, "list things", func(_ context.Context, limit, offset int64) (int, *rest_model.Meta, error) {
		calls = append(calls, offset)
		if offset == 2 && fails > 0 {
			fails--
			return 0, nil, notFound
		}
		return int(min(limit, total-offset)), meta, nil
	})
	if !IsNotFound(err) || len(calls) != 1+listNotFoundAttempts {
		t.Fatalf("err %v after %d page requests; want the 404 after %d", err, len(calls), 1+listNotFoundAttempts)
	}
}
