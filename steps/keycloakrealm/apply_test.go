package keycloakrealm

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/keycloak"
)

// fakeAPI is a missing realm, or an empty one, whose writes fail as told. Methods not overridden panic (nil
// embedded API).
type fakeAPI struct {
	API
	realmExists           bool
	failRealm, failClient error
	calls                 []string
}

var notFound = &keycloak.APIError{Status: 404, Message: "404 Not Found"}

func (f *fakeAPI) GetRealm(_ context.Context, name string) (*keycloak.Realm, error) {
	if !f.realmExists {
		return nil, notFound
	}
	return &keycloak.Realm{Name: name, Enabled: true, Attributes: map[string]string{ManagedAttribute: managed}}, nil
}
func (f *fakeAPI) UserProfileAttributes(context.Context, string) ([]keycloak.UserProfileAttribute, error) {
	return nil, nil
}
func (f *fakeAPI) ListClients(context.Context, string) ([]keycloak.OIDCClient, error) {
	return nil, nil
}
func (f *fakeAPI) GetUser(context.Context, string, string) (*keycloak.User, error) {
	return nil, notFound
}
func (f *fakeAPI) CreateRealm(_ context.Context, r keycloak.Realm) error {
	call := "realm"
	for _, c := range r.Clients {
		call += " +" + clientCall(c)
	}
	f.calls = append(f.calls, call)
	return f.failRealm
}
func (f *fakeAPI) CreateClient(_ context.Context, _ string, c keycloak.OIDCClient) (string, error) {
	f.calls = append(f.calls, clientCall(c))
	return "", f.failClient
}

// clientCall names a created client and its mappers.
func clientCall(c keycloak.OIDCClient) string {
	s := "client " + c.ClientID
	for _, m := range c.ProtocolMappers {
		s += " +mapper " + m.Name
	}
	return s
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

	// A missing realm is created in one call with its client and the client's mappers.
	api := &fakeAPI{}
	st, err := New(api, d)
	if err != nil {
		t.Fatal(err)
	}
	p, err := st.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Apply(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(api.calls, ", "); got != "realm +client openziti +mapper ziti-bootstrap-audience +mapper ziti-bootstrap-identity-claim, profile email, user alice" {
		t.Fatalf("calls: %s", got)
	}

	// In an existing realm, a client that cannot be created takes its mappers (created with it) along; the user
	// is still created.
	api = &fakeAPI{realmExists: true, failClient: errors.New("boom")}
	st, _ = New(api, d)
	if p, err = st.Plan(context.Background()); err != nil {
		t.Fatal(err)
	}
	err = p.Apply(context.Background())
	if err == nil || !strings.Contains(err.Error(), "create keycloak-client r/openziti: missing: boom") {
		t.Fatalf("apply error %v", err)
	}
	if got := strings.Join(api.calls, ", "); got != "profile email, client openziti +mapper ziti-bootstrap-audience +mapper ziti-bootstrap-identity-claim, user alice" {
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

// conflictAPI answers the realm's create with 409 (an interrupted run's create that Keycloak finishes after its
// caller is gone) and shows the realm from the readable-th read on (0: never).
type conflictAPI struct {
	API
	reads, readable int
}

func (c *conflictAPI) CreateRealm(context.Context, keycloak.Realm) error {
	return &keycloak.APIError{Status: 409, Message: "409 Conflict: Duplicate resource error"}
}
func (c *conflictAPI) GetRealm(_ context.Context, name string) (*keycloak.Realm, error) {
	c.reads++
	if c.readable == 0 || c.reads < c.readable {
		return nil, notFound
	}
	return &keycloak.Realm{Name: name}, nil
}
func (c *conflictAPI) URL() string { return "http://keycloak.test" }

// A realm that appeared since the plan (409) is the create's effect once it can be read; one that cannot be read
// keeps the 409.
func TestCreateRealmConflictWaitsForTheRealm(t *testing.T) {
	api := &conflictAPI{readable: 3}
	if err := createRealm(context.Background(), api, keycloak.Realm{Name: "r"}); err != nil || api.reads != 3 {
		t.Errorf("409, then readable at the 3rd read: %v after %d read(s); want nil after 3", err, api.reads)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err := createRealm(ctx, &conflictAPI{}, keycloak.Realm{Name: "r"})
	if !keycloak.IsConflict(err) || !strings.Contains(err.Error(), "409") {
		t.Errorf("409, never readable: %v; want the 409 kept", err)
	}
}
