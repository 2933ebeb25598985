package keycloakrealm

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/keycloak"
)

// fakeAPI is an empty realm whose writes fail as told. Methods not overridden panic (nil embedded API).
type fakeAPI struct {
	API
	failRealm, failClient error
	calls                 []string
}

func (f *fakeAPI) GetRealm(context.Context, string) (*keycloak.Realm, error) {
	return nil, &keycloak.APIError{Status: 404, Message: "404 Not Found"}
}
func (f *fakeAPI) CreateRealm(context.Context, keycloak.Realm) error {
	f.calls = append(f.calls, "realm")
	return f.failRealm
}
func (f *fakeAPI) CreateClient(_ context.Context, _ string, c keycloak.OIDCClient) (string, error) {
	f.calls = append(f.calls, "client "+c.ClientID)
	return "", f.failClient
}
func (f *fakeAPI) CreateProtocolMapper(_ context.Context, _, id string, m keycloak.ProtocolMapper) (string, error) {
	f.calls = append(f.calls, "mapper "+m.Name+" on "+id)
	return "m", nil
}
func (f *fakeAPI) PutUserProfileAttribute(_ context.Context, _ string, a keycloak.UserProfileAttribute) error {
	f.calls = append(f.calls, "profile "+a.Name)
	return nil
}
func (f *fakeAPI) CreateUser(_ context.Context, _ string, u keycloak.User, _ config.Secret) (string, error) {
	f.calls = append(f.calls, "user "+u.Username)
	return "u", nil
}

func TestApplyFailures(t *testing.T) {
	d := Declaration{Realm: "r", DevUsers: []DevUser{{Username: "alice", Email: "a@x.test", Password: config.NewSecret("pw")}}}

	// A client that cannot be created takes its mappers with it; the user is still created.
	api := &fakeAPI{failClient: errors.New("boom")}
	st, err := New(api, d)
	if err != nil {
		t.Fatal(err)
	}
	p, err := st.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	err = p.Apply(context.Background())
	if err == nil || !strings.Contains(err.Error(), "create keycloak-client r/openziti: missing: boom") ||
		strings.Count(err.Error(), "client openziti was not created") != 2 {
		t.Fatalf("apply error %v", err)
	}
	if got := strings.Join(api.calls, ", "); got != "realm, profile email, client openziti, user alice" {
		t.Fatalf("calls: %s", got)
	}

	// A realm that cannot be created stops everything.
	api = &fakeAPI{failRealm: errors.New("forbidden")}
	st, _ = New(api, d)
	p, _ = st.Plan(context.Background())
	if err := p.Apply(context.Background()); err == nil || !strings.Contains(err.Error(), "forbidden") || len(api.calls) != 1 {
		t.Fatalf("apply error %v calls %v", err, api.calls)
	}
}
