package keycloakrealm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/keycloak"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

// Name is the step's name; it depends on Reachable.
const (
	Name      = "keycloak/realm"
	Reachable = "keycloak/reachable"
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

// op is one planned change and the calls that carry it out.
type op struct {
	change steps.Change
	run    func(ctx context.Context) error
}

// clientRef carries a client's internal id from its creation to the creation of its mappers.
type clientRef struct{ clientID, id string }

// with returns a run function that calls fn with the client's internal id; it fails when the client was not
// created.
func (r *clientRef) with(fn func(ctx context.Context, clientUUID string) error) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		if r.id == "" {
			return fmt.Errorf("client %s was not created", r.clientID)
		}
		return fn(ctx, r.id)
	}
}

// Plan reads the realm and returns the changes that make it match the declaration. It writes nothing; the only
// non-GET calls are token requests checking dev users' passwords.
func (s *Step) Plan(ctx context.Context) (*steps.Plan, error) {
	d, api := s.d, s.api
	var (
		ops   []op
		notes []string
	)
	add := func(ch steps.Change, run func(ctx context.Context) error) { ops = append(ops, op{ch, run}) }

	// The realm.
	have, err := api.GetRealm(ctx, d.Realm)
	exists := err == nil
	switch {
	case keycloak.IsNotFound(err):
		want := d.wantRealm()
		add(steps.Change{Action: steps.Create, Kind: KindRealm, Key: d.Realm, Reason: "missing"},
			func(ctx context.Context) error { return api.CreateRealm(ctx, want) })
	case err != nil:
		return nil, err
	default:
		if f := realmFields(d, have); len(f) > 0 {
			want := d.wantRealm()
			add(steps.Change{Action: steps.Update, Kind: KindRealm, Key: d.Realm, Fields: f, Reason: reason(have.Attributes)},
				func(ctx context.Context) error { return api.UpdateRealm(ctx, want, f...) })
		}
	}

	// The user profile declares the custom attributes, or Keycloak drops them.
	if names := d.profileAttributes(); len(names) > 0 {
		var profile []keycloak.UserProfileAttribute
		if exists {
			if profile, err = api.UserProfileAttributes(ctx, d.Realm); err != nil {
				return nil, err
			}
		}
		for _, name := range names {
			key := d.Realm + "/" + name
			i := slices.IndexFunc(profile, func(a keycloak.UserProfileAttribute) bool { return a.Name == name })
			if i < 0 {
				want := wantProfileAttribute(name)
				add(steps.Change{Action: steps.Create, Kind: KindProfileAttribute, Key: key, Reason: "missing"},
					func(ctx context.Context) error { return api.PutUserProfileAttribute(ctx, d.Realm, want) })
				continue
			}
			if f := profileFields(profile[i]); len(f) > 0 {
				want := profile[i]
				want.EditRoles = adminOnly
				add(steps.Change{Action: steps.Update, Kind: KindProfileAttribute, Key: key, Fields: f,
					Reason: "users may edit it: they could make themselves another Ziti identity"},
					func(ctx context.Context) error { return api.PutUserProfileAttribute(ctx, d.Realm, want) })
			}
		}
	}

	// Clients and their mappers.
	var current []keycloak.OIDCClient
	if exists {
		if current, err = api.ListClients(ctx, d.Realm); err != nil {
			return nil, err
		}
	}
	declared := map[string]bool{}
	for _, want := range d.wantClients() {
		declared[want.ClientID] = true
		key := d.Realm + "/" + want.ClientID
		ref := &clientRef{clientID: want.ClientID}
		i := slices.IndexFunc(current, func(c keycloak.OIDCClient) bool { return c.ClientID == want.ClientID })
		var haveMappers []keycloak.ProtocolMapper
		if i < 0 {
			add(steps.Change{Action: steps.Create, Kind: KindClient, Key: key, Reason: "missing"},
				func(ctx context.Context) error {
					id, err := api.CreateClient(ctx, d.Realm, want)
					ref.id = id
					return err
				})
		} else {
			have := current[i]
			ref.id, haveMappers = have.ID, have.ProtocolMappers
			if f := clientFields(want, have); len(f) > 0 {
				want.ID = have.ID
				add(steps.Change{Action: steps.Update, Kind: KindClient, Key: key, Fields: f, Reason: reason(have.Attributes)},
					func(ctx context.Context) error { return api.UpdateClient(ctx, d.Realm, want, f...) })
			}
		}
		ops = append(ops, mapperOps(api, d, ref, key, haveMappers)...)
	}
	for _, c := range current {
		if c.Attributes[ManagedAttribute] == managed && !declared[c.ClientID] {
			id := c.ID
			add(steps.Change{Action: steps.Delete, Kind: KindClient, Key: d.Realm + "/" + c.ClientID, Reason: "managed by ziti-bootstrap, no longer declared"},
				func(ctx context.Context) error { return api.DeleteClient(ctx, d.Realm, id) })
		}
	}

	// Development users.
	for _, u := range d.DevUsers {
		want := wantUser(u)
		key := d.Realm + "/" + u.Username
		var have *keycloak.User
		if exists {
			have, err = api.GetUser(ctx, d.Realm, u.Username)
			if err != nil && !keycloak.IsNotFound(err) {
				return nil, err
			}
		}
		if have == nil {
			pw := u.Password
			add(steps.Change{Action: steps.Create, Kind: KindUser, Key: key, Reason: "missing (development user)"},
				func(ctx context.Context) error { _, err := api.CreateUser(ctx, d.Realm, want, pw); return err })
			continue
		}
		want.ID = have.ID
		fields := userFields(want, *have) // what UpdateUser writes; the password is set apart
		setPassword := false
		// Keycloak never shows a password: try it. Every realm has the public client admin-cli, which allows the
		// password grant. A token request changes no configuration.
		_, err := api.Token(ctx, d.Realm, "admin-cli", "", u.Username, u.Password.Value())
		switch {
		case err == nil:
		case keycloak.IsInvalidCredentials(err):
			setPassword = true
		case errors.As(err, new(*keycloak.OAuthError)):
			// disabled, required actions pending, admin-cli changed: the password cannot be checked
			notes = append(notes, fmt.Sprintf("password of development user %s not verified: %v", key, err))
		default:
			return nil, fmt.Errorf("verify password of development user %s: %w", key, err)
		}
		planned := fields
		if setPassword {
			planned = append(slices.Clone(fields), FieldPassword)
		}
		if len(planned) > 0 {
			pw := u.Password
			add(steps.Change{Action: steps.Update, Kind: KindUser, Key: key, Fields: planned, Reason: "differs (development user)"},
				func(ctx context.Context) error {
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

	changes := make([]steps.Change, len(ops))
	for i, o := range ops {
		changes[i] = o.change
	}
	p := steps.NewPlan(changes, func(ctx context.Context) error { return apply(ctx, ops) })
	for _, n := range notes {
		p.Note("%s", n)
	}
	return p, nil
}

// mapperOps plans the managed mappers of one client: create the missing, update or replace the different, delete
// ziti-bootstrap-* mappers no longer wanted. Others' mappers are left alone.
func mapperOps(api API, d Declaration, ref *clientRef, clientKey string, have []keycloak.ProtocolMapper) []op {
	var ops []op
	wanted := map[string]bool{}
	create := func(want keycloak.ProtocolMapper) func(ctx context.Context) error {
		return ref.with(func(ctx context.Context, clientUUID string) error {
			_, err := api.CreateProtocolMapper(ctx, d.Realm, clientUUID, want)
			return err
		})
	}
	del := func(mapperID string) func(ctx context.Context) error {
		return ref.with(func(ctx context.Context, clientUUID string) error {
			return api.DeleteProtocolMapper(ctx, d.Realm, clientUUID, mapperID)
		})
	}
	for _, want := range d.wantMappers() {
		wanted[want.Name] = true
		key := clientKey + "/" + want.Name
		i := slices.IndexFunc(have, func(m keycloak.ProtocolMapper) bool { return m.Name == want.Name })
		if i < 0 {
			ops = append(ops, op{steps.Change{Action: steps.Create, Kind: KindMapper, Key: key, Reason: "missing"}, create(want)})
			continue
		}
		f, replace := mapperFields(want, have[i])
		switch {
		case replace:
			reason := fmt.Sprintf("type %s, want %s: replaced", have[i].Type, want.Type)
			ops = append(ops,
				op{steps.Change{Action: steps.Delete, Kind: KindMapper, Key: key, Reason: reason}, del(have[i].ID)},
				op{steps.Change{Action: steps.Create, Kind: KindMapper, Key: key, Reason: reason}, create(want)})
		case len(f) > 0:
			want.ID = have[i].ID
			ops = append(ops, op{steps.Change{Action: steps.Update, Kind: KindMapper, Key: key, Fields: f, Reason: "differs"},
				ref.with(func(ctx context.Context, clientUUID string) error {
					return api.UpdateProtocolMapper(ctx, d.Realm, clientUUID, want, f...)
				})})
		}
	}
	for _, m := range have {
		if strings.HasPrefix(m.Name, MapperPrefix) && !wanted[m.Name] {
			ops = append(ops, op{steps.Change{Action: steps.Delete, Kind: KindMapper, Key: clientKey + "/" + m.Name, Reason: "managed by ziti-bootstrap, no longer wanted"}, del(m.ID)})
		}
	}
	return ops
}

// apply carries out the planned operations in order. A failed realm change stops everything (the rest lives in
// the realm); other failures are collected, and mappers of a client that could not be created fail with it.
func apply(ctx context.Context, ops []op) error {
	var errs []error
	for _, o := range ops {
		if err := o.run(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", o.change, err))
			if o.change.Kind == KindRealm {
				break
			}
		}
	}
	return errors.Join(errs...)
}

func reason(attrs map[string]string) string {
	if attrs[ManagedAttribute] != managed {
		return "exists, not managed by ziti-bootstrap: adopting it"
	}
	return "differs"
}
