package keycloakrealm

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/keycloak"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/reach"
)

// Name is the step's name; it depends on Reachable.
const (
	Name      = "keycloak/realm"
	Reachable = reach.Keycloak
)

// API is what the step needs of Keycloak; *keycloak.Client has it.
type API interface {
	GetRealm(ctx context.Context, name string) (*keycloak.Realm, error)
	CreateRealm(ctx context.Context, r keycloak.Realm) error
	UpdateRealm(ctx context.Context, want keycloak.Realm, fields ...string) error
	Discovery(ctx context.Context, realm string) (issuer, jwksURI, tokenEndpoint, authEndpoint string, err error)
	URL() string

	UserProfileAttributes(ctx context.Context, realm string) ([]keycloak.UserProfileAttribute, error)
	PutUserProfileAttribute(ctx context.Context, realm string, a keycloak.UserProfileAttribute) error

	ListClients(ctx context.Context, realm string) ([]keycloak.OIDCClient, error)
	CreateClient(ctx context.Context, realm string, c keycloak.OIDCClient) (string, error)
	UpdateClient(ctx context.Context, realm string, c keycloak.OIDCClient, fields ...string) error
	DeleteClient(ctx context.Context, realm, id string) error
	CreateProtocolMapper(ctx context.Context, realm, clientUUID string, m keycloak.ProtocolMapper) (string, error)
	UpdateProtocolMapper(ctx context.Context, realm, clientUUID string, m keycloak.ProtocolMapper, fields ...string) error
	DeleteProtocolMapper(ctx context.Context, realm, clientUUID, mapperID string) error

	GetUser(ctx context.Context, realm, username string) (*keycloak.User, error)
	CreateUser(ctx context.Context, realm string, u keycloak.User, password config.Secret) (string, error)
	UpdateUser(ctx context.Context, realm string, u keycloak.User, fields ...string) error
	SetPassword(ctx context.Context, realm, userID string, password config.Secret) error
	Token(ctx context.Context, realm, clientID, clientSecret, username, password string) (string, error)
}

var _ API = (*keycloak.Client)(nil)

// Step converges one realm. Create it with New.
type Step struct {
	api API
	d   Declaration
}

var _ steps.Step = (*Step)(nil)

// New validates the declaration (no call is made), fills in its defaults and returns the step.
func New(api API, d Declaration) (*Step, error) {
	d, err := withDefaults(d)
	if err != nil {
		return nil, fmt.Errorf("%s: declaration: %w", Name, err)
	}
	return &Step{api: api, d: d}, nil
}

func (s *Step) Name() string        { return Name }
func (s *Step) DependsOn() []string { return []string{Reachable} }

// Declaration is the declaration with its defaults filled in.
func (s *Step) Declaration() Declaration { return s.d }

// observed is the realm as read by Plan: what diff compares with the declaration.
type observed struct {
	realm   *keycloak.Realm // nil when the realm does not exist
	profile []keycloak.UserProfileAttribute
	clients []keycloak.OIDCClient
	users   map[string]observedUser // by username; absent when the user does not exist
}

// observedUser is a development user and what a token request said of its password.
type observedUser struct {
	user          *keycloak.User
	wrongPassword bool
	note          string // set when the password could not be checked
}

// Plan reads the realm and returns the changes that make it match the declaration. It writes nothing; the only
// non-GET calls are token requests checking dev users' passwords.
func (s *Step) Plan(ctx context.Context) (*steps.Plan, error) {
	o, err := observe(ctx, s.api, s.d)
	if err != nil {
		return nil, err
	}
	ops, notes := diff(s.d, o)
	// A failed realm change stops everything: the rest lives in the realm.
	return steps.OpsPlan(s.api, ops, func(c steps.Change) bool { return c.Kind == KindRealm }).AddNotes(notes...), nil
}

// observe reads what the declaration manages.
func observe(ctx context.Context, api API, d Declaration) (observed, error) {
	var o observed
	// The realm, its user profile and its clients are read at once: independent reads, one round trip. A missing
	// realm makes the others fail too, and means nothing else exists.
	var realmErr, profileErr, clientsErr error
	var wg sync.WaitGroup
	wg.Go(func() { o.realm, realmErr = api.GetRealm(ctx, d.Realm) })
	if len(d.profileAttributes()) > 0 { // the user profile declares the custom attributes, or Keycloak drops them
		wg.Go(func() { o.profile, profileErr = api.UserProfileAttributes(ctx, d.Realm) })
	}
	wg.Go(func() { o.clients, clientsErr = api.ListClients(ctx, d.Realm) })
	wg.Wait()
	switch {
	case keycloak.IsNotFound(realmErr):
		return observed{}, nil
	case realmErr != nil:
		return observed{}, realmErr
	}
	if err := cmp.Or(profileErr, clientsErr); err != nil {
		return o, err
	}
	o.users = map[string]observedUser{}
	for _, u := range d.DevUsers {
		key := d.Realm + "/" + u.Username
		have, err := api.GetUser(ctx, d.Realm, u.Username)
		switch {
		case keycloak.IsNotFound(err):
			continue
		case err != nil:
			return o, err
		case have == nil:
			continue
		}
		ou := observedUser{user: have}
		// Keycloak never shows a password: try it. Every realm has the public client admin-cli, which allows the
		// password grant. A token request changes no configuration.
		_, err = api.Token(ctx, d.Realm, "admin-cli", "", u.Username, u.Password.Value())
		switch {
		case err == nil:
		case keycloak.IsInvalidCredentials(err):
			ou.wrongPassword = true
		case errors.As(err, new(*keycloak.OAuthError)):
			// disabled, required actions pending, admin-cli changed: the password cannot be checked
			ou.note = fmt.Sprintf("password of development user %s not verified: %v", key, err)
		default:
			return o, fmt.Errorf("verify password of development user %s: %w", key, err)
		}
		o.users[u.Username] = ou
	}
	return o, nil
}

// op is one planned change of this step.
type op = steps.Op[API]

// diff returns the operations that make o match d, in apply order, and notes for the user. It makes no call.
func diff(d Declaration, o observed) ([]op, []string) {
	var (
		ops   []op
		notes []string
	)
	add := func(ch steps.Change, run func(ctx context.Context, api API) error) {
		ops = append(ops, op{Change: ch, Run: run})
	}

	// The realm. A missing one is created in one call with its clients and their mappers (their changes below
	// are carried by it).
	realmMissing := o.realm == nil
	if realmMissing {
		want := d.newRealm(d.wantClients())
		add(steps.Change{Action: steps.Create, Kind: KindRealm, Key: d.Realm, Reason: "missing"},
			func(ctx context.Context, api API) error { return createRealm(ctx, api, want) })
	} else if f := realmDiff(d, o.realm); len(f) > 0 {
		want, names := d.wantRealm(), f.Names()
		add(steps.Change{Action: steps.Update, Kind: KindRealm, Key: d.Realm, Reason: reason(o.realm.Attributes)}.WithDiff(f),
			func(ctx context.Context, api API) error { return api.UpdateRealm(ctx, want, names...) })
	}

	// The user profile declares the custom attributes, or Keycloak drops them.
	for _, name := range d.profileAttributes() {
		key := d.Realm + "/" + name
		i := slices.IndexFunc(o.profile, func(a keycloak.UserProfileAttribute) bool { return a.Name == name })
		if i < 0 {
			want := wantProfileAttribute(name)
			add(steps.Change{Action: steps.Create, Kind: KindProfileAttribute, Key: key, Reason: "missing"},
				func(ctx context.Context, api API) error { return api.PutUserProfileAttribute(ctx, d.Realm, want) })
			continue
		}
		if f := profileDiff(o.profile[i]); len(f) > 0 {
			want := o.profile[i]
			want.EditRoles = adminOnly
			add(steps.Change{Action: steps.Update, Kind: KindProfileAttribute, Key: key,
				Reason: "users may edit it: they could make themselves another Ziti identity"}.WithDiff(f),
				func(ctx context.Context, api API) error { return api.PutUserProfileAttribute(ctx, d.Realm, want) })
		}
	}

	// Clients and their mappers.
	declared := map[string]bool{}
	for _, want := range d.wantClients() {
		declared[want.ClientID] = true
		key := d.Realm + "/" + want.ClientID
		i := slices.IndexFunc(o.clients, func(c keycloak.OIDCClient) bool { return c.ClientID == want.ClientID })
		if i < 0 {
			// A missing client is created with its mappers in one call, or with the realm when that is missing.
			run, why := withParent, "missing: created with the realm"
			if !realmMissing {
				withMappers := want
				withMappers.ProtocolMappers = d.wantMappers()
				run, why = func(ctx context.Context, api API) error {
					_, err := api.CreateClient(ctx, d.Realm, withMappers)
					return createdMeanwhile(err)
				}, "missing"
			}
			add(steps.Change{Action: steps.Create, Kind: KindClient, Key: key, Reason: why}, run)
			for _, m := range d.wantMappers() {
				add(steps.Change{Action: steps.Create, Kind: KindMapper, Key: key + "/" + m.Name, Reason: "missing: created with the client"}, withParent)
			}
			continue
		}
		have := o.clients[i]
		if f := clientDiff(want, have); len(f) > 0 {
			want.ID = have.ID
			names := f.Names()
			add(steps.Change{Action: steps.Update, Kind: KindClient, Key: key, Reason: reason(have.Attributes)}.WithDiff(f),
				func(ctx context.Context, api API) error { return api.UpdateClient(ctx, d.Realm, want, names...) })
		}
		ops = append(ops, mapperOps(d, steps.NewRef("client "+want.ClientID, have.ID), key, have.ProtocolMappers)...)
	}
	for _, c := range o.clients {
		if c.Attributes[ManagedAttribute] == managed && !declared[c.ClientID] {
			id := c.ID
			add(steps.Change{Action: steps.Delete, Kind: KindClient, Key: d.Realm + "/" + c.ClientID, Reason: "managed by ziti-bootstrap, no longer declared"},
				func(ctx context.Context, api API) error { return api.DeleteClient(ctx, d.Realm, id) })
		}
	}

	// Development users.
	for _, u := range d.DevUsers {
		want := wantUser(u)
		key := d.Realm + "/" + u.Username
		pw := u.Password
		have, ok := o.users[u.Username]
		if !ok {
			add(steps.Change{Action: steps.Create, Kind: KindUser, Key: key, Reason: "missing (development user)"},
				func(ctx context.Context, api API) error {
					_, err := api.CreateUser(ctx, d.Realm, want, pw)
					return createdMeanwhile(err)
				})
			continue
		}
		if have.note != "" {
			notes = append(notes, have.note)
		}
		want.ID = have.user.ID
		f := userDiff(want, *have.user)
		fields := f.Names() // what UpdateUser writes; the password is set apart
		setPassword := have.wrongPassword
		f.AddSecret(setPassword, FieldPassword)
		if len(f) > 0 {
			add(steps.Change{Action: steps.Update, Kind: KindUser, Key: key, Reason: "differs (development user)"}.WithDiff(f),
				func(ctx context.Context, api API) error {
					if err := api.UpdateUser(ctx, d.Realm, want, fields...); err != nil {
						return err
					}
					if setPassword {
						return api.SetPassword(ctx, d.Realm, want.ID, pw)
					}
					return nil
				})
		}
	}
	return ops, notes
}

// withParent is the Run of a change carried out by an earlier op's call (a client created with its realm, a
// mapper with its client): that op's failure stops the apply (or fails the client's create), so this one has
// nothing left to do.
func withParent(context.Context, API) error { return nil }

// mapperOps plans the managed mappers of one existing client: create the missing, update or replace the different, delete
// ziti-bootstrap-* mappers no longer wanted. Others' mappers are left alone.
func mapperOps(d Declaration, client *steps.Ref, clientKey string, have []keycloak.ProtocolMapper) []op {
	var ops []op
	wanted := map[string]bool{}
	create := func(want keycloak.ProtocolMapper) func(context.Context, API) error {
		return steps.After(client, func(ctx context.Context, api API, clientUUID string) error {
			_, err := api.CreateProtocolMapper(ctx, d.Realm, clientUUID, want)
			return createdMeanwhile(err)
		})
	}
	del := func(mapperID string) func(context.Context, API) error {
		return steps.After(client, func(ctx context.Context, api API, clientUUID string) error {
			return api.DeleteProtocolMapper(ctx, d.Realm, clientUUID, mapperID)
		})
	}
	for _, want := range d.wantMappers() {
		wanted[want.Name] = true
		key := clientKey + "/" + want.Name
		i := slices.IndexFunc(have, func(m keycloak.ProtocolMapper) bool { return m.Name == want.Name })
		if i < 0 {
			ops = append(ops, op{Change: steps.Change{Action: steps.Create, Kind: KindMapper, Key: key, Reason: "missing"}, Run: create(want)})
			continue
		}
		f, replace := mapperDiff(want, have[i])
		switch {
		case replace:
			reason := fmt.Sprintf("type %s, want %s: replaced", have[i].Type, want.Type)
			ops = append(ops,
				op{Change: steps.Change{Action: steps.Delete, Kind: KindMapper, Key: key, Reason: reason}, Run: del(have[i].ID)},
				op{Change: steps.Change{Action: steps.Create, Kind: KindMapper, Key: key, Reason: reason}, Run: create(want)})
		case len(f) > 0:
			want.ID = have[i].ID
			names := f.Names()
			ops = append(ops, op{Change: steps.Change{Action: steps.Update, Kind: KindMapper, Key: key, Reason: "differs"}.WithDiff(f),
				Run: steps.After(client, func(ctx context.Context, api API, clientUUID string) error {
					return api.UpdateProtocolMapper(ctx, d.Realm, clientUUID, want, names...)
				})})
		}
	}
	for _, m := range have {
		if strings.HasPrefix(m.Name, MapperPrefix) && !wanted[m.Name] {
			ops = append(ops, op{Change: steps.Change{Action: steps.Delete, Kind: KindMapper, Key: clientKey + "/" + m.Name, Reason: "managed by ziti-bootstrap, no longer wanted"}, Run: del(m.ID)})
		}
	}
	return ops
}

func reason(attrs map[string]string) string {
	if attrs[ManagedAttribute] != managed {
		return "exists, not managed by ziti-bootstrap: adopting it"
	}
	return "differs"
}

// createdMeanwhile is the outcome of a create that Keycloak answered err: its 409 says that the object appeared
// since the plan, typically the same create of a run killed mid-call, which Keycloak finished after its caller
// was gone (the realm's case: createRealm). The create then has the effect wanted; whatever differs is the next
// plan's to converge (it adopts what it finds under the declared name).
func createdMeanwhile(err error) error {
	if keycloak.IsConflict(err) {
		return nil
	}
	return err
}

// createRealm creates the realm want. Keycloak answers 409 when a realm of that name appeared since the plan:
// typically the create of a run killed mid-call, which Keycloak finishes after its caller is gone (the same
// representation, its clients and mappers included). Once that realm can be read, the create has the effect
// wanted; whatever differs is the next plan's to converge. A realm that stays unreadable keeps the 409.
func createRealm(ctx context.Context, api API, want keycloak.Realm) error {
	err := api.CreateRealm(ctx, want)
	if !keycloak.IsConflict(err) {
		return err
	}
	werr := wait.For(ctx, wait.Target{What: "realm " + want.Name + " (409 on create) to be readable", Where: api.URL(),
		Deadline: 30 * time.Second, Initial: 100 * time.Millisecond, Max: 2 * time.Second},
		func(ctx context.Context) error { _, err := api.GetRealm(ctx, want.Name); return err })
	if werr != nil {
		return fmt.Errorf("%w; then: %w", err, werr)
	}
	return nil
}
