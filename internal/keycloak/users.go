package keycloak

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/Nerzal/gocloak/v13"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/redact"
)

// User is the part of a realm user ziti-bootstrap manages (development users only).
type User struct {
	ID            string
	Username      string
	Email         string
	FirstName     string
	LastName      string
	Enabled       bool
	EmailVerified bool
	// Attributes are custom user attributes. Since Keycloak 24 the declarative user profile drops attributes it
	// does not declare (unless the realm allows unmanaged attributes): declare them with PutUserProfileAttribute.
	Attributes map[string][]string
}

// Field names for UpdateUser; attributes are named with AttributeField.
const (
	UserEmail         = "email"
	UserFirstName     = "firstName"
	UserLastName      = "lastName"
	UserEnabled       = "enabled"
	UserEmailVerified = "emailVerified"
)

// GetUser returns the user with exactly this username. A missing user is an error satisfying IsNotFound.
func (c *Client) GetUser(ctx context.Context, realm, username string) (*User, error) {
	if err := checkName("realm", realm); err != nil {
		return nil, err
	}
	reps, err := authedValue(ctx, c, func(tok string) ([]*gocloak.User, error) {
		return c.gc.GetUsers(ctx, tok, realm, gocloak.GetUsersParams{Username: gocloak.StringP(username), Exact: gocloak.BoolP(true)})
	})
	if err != nil {
		return nil, c.wrap(err, "get user %s in realm %s", username, realm)
	}
	for _, r := range reps {
		// Keycloak stores usernames in lower case.
		if strings.EqualFold(gocloak.PString(r.Username), username) {
			u := fromUserRep(r)
			return &u, nil
		}
	}
	return nil, fmt.Errorf("keycloak: get user %s in realm %s: %w", username, realm, &APIError{Status: 404, Message: "404 Not Found: no such user"})
}

func fromUserRep(r *gocloak.User) User {
	u := User{
		ID:            gocloak.PString(r.ID),
		Username:      gocloak.PString(r.Username),
		Email:         gocloak.PString(r.Email),
		FirstName:     gocloak.PString(r.FirstName),
		LastName:      gocloak.PString(r.LastName),
		Enabled:       gocloak.PBool(r.Enabled),
		EmailVerified: gocloak.PBool(r.EmailVerified),
		Attributes:    map[string][]string{},
	}
	if r.Attributes != nil {
		for k, v := range *r.Attributes {
			u.Attributes[k] = append([]string{}, v...)
		}
	}
	return u
}

// CreateUser creates a user with a permanent password and returns its id.
func (c *Client) CreateUser(ctx context.Context, realm string, u User, password redact.Secret) (string, error) {
	if err := checkName("realm", realm); err != nil {
		return "", err
	}
	rep := gocloak.User{
		Username:      gocloak.StringP(u.Username),
		Enabled:       gocloak.BoolP(u.Enabled),
		EmailVerified: gocloak.BoolP(u.EmailVerified),
		Email:         optString(u.Email),
		FirstName:     optString(u.FirstName),
		LastName:      optString(u.LastName),
		Attributes:    optMap(u.Attributes),
	}
	if password.IsSet() {
		rep.Credentials = &[]gocloak.CredentialRepresentation{{
			Type: gocloak.StringP("password"), Value: gocloak.StringP(password.Value()), Temporary: gocloak.BoolP(false),
		}}
	}
	id, err := authedValue(ctx, c, func(tok string) (string, error) { return c.gc.CreateUser(ctx, tok, realm, rep) })
	if err != nil {
		return "", c.wrap(err, "create user %s in realm %s", u.Username, realm)
	}
	return id, nil
}

// UpdateUser writes the named fields of u to the user with id u.ID. Keycloak replaces a user's attributes as a
// whole, so this reads the user and sends the attributes not named unchanged.
func (c *Client) UpdateUser(ctx context.Context, realm string, u User, fields ...string) error {
	if len(fields) == 0 {
		return nil
	}
	if err := checkName("realm", realm); err != nil {
		return err
	}
	err := c.authed(ctx, func(tok string) error {
		cur, err := c.gc.GetUserByID(ctx, tok, realm, u.ID)
		if err != nil {
			return err
		}
		attrs := map[string][]string{}
		if cur.Attributes != nil {
			attrs = *cur.Attributes
		}
		err = applyMask(fields, map[string]func(){
			UserEmail:         func() { cur.Email = gocloak.StringP(u.Email) },
			UserFirstName:     func() { cur.FirstName = gocloak.StringP(u.FirstName) },
			UserLastName:      func() { cur.LastName = gocloak.StringP(u.LastName) },
			UserEnabled:       func() { cur.Enabled = gocloak.BoolP(u.Enabled) },
			UserEmailVerified: func() { cur.EmailVerified = gocloak.BoolP(u.EmailVerified) },
		}, attributePrefix, func(key string) {
			if v, ok := u.Attributes[key]; ok && len(v) > 0 {
				attrs[key] = v
			} else {
				delete(attrs, key)
			}
		})
		if err != nil {
			return err
		}
		cur.Attributes = &attrs
		cur.Access, cur.Credentials = nil, nil
		return c.gc.UpdateUser(ctx, tok, realm, *cur)
	})
	return c.wrap(err, "update user %s in realm %s (fields %v)", u.Username, realm, fields)
}

// SetPassword sets a permanent password for the user with id userID.
func (c *Client) SetPassword(ctx context.Context, realm, userID string, password redact.Secret) error {
	if err := checkName("realm", realm); err != nil {
		return err
	}
	err := c.authed(ctx, func(tok string) error {
		return c.gc.SetPassword(ctx, tok, userID, realm, password.Value(), false)
	})
	return c.wrap(err, "set password of user %s in realm %s", userID, realm)
}

// DeleteUser deletes the user with id userID.
func (c *Client) DeleteUser(ctx context.Context, realm, userID string) error {
	if err := checkName("realm", realm); err != nil {
		return err
	}
	err := c.authed(ctx, func(tok string) error { return c.gc.DeleteUser(ctx, tok, realm, userID) })
	return c.wrap(err, "delete user %s in realm %s", userID, realm)
}

// UserProfileAttribute is one attribute of the realm's declarative user profile (Keycloak 24+).
type UserProfileAttribute struct {
	Name        string
	DisplayName string
	ViewRoles   []string // who may see it: "admin", "user"
	EditRoles   []string // who may change it; leave "user" out for anything that identifies the user elsewhere
	Multivalued bool
}

// UserProfileAttributes lists the attributes the realm's user profile declares.
func (c *Client) UserProfileAttributes(ctx context.Context, realm string) ([]UserProfileAttribute, error) {
	if err := checkName("realm", realm); err != nil {
		return nil, err
	}
	var doc map[string]any
	err := c.authed(ctx, func(tok string) error { return c.adminGet(ctx, tok, &doc, c.adminRealmURL(realm)+"/users/profile") })
	if err != nil {
		return nil, c.wrap(err, "read user profile of realm %s", realm)
	}
	var out []UserProfileAttribute
	for _, a := range profileAttrs(doc) {
		out = append(out, fromProfileAttr(a))
	}
	return out, nil
}

// PutUserProfileAttribute declares a in the realm's user profile, or updates its display name, permissions and
// multivalued flag if it is declared; everything else in the profile (validations, groups, the unmanaged
// attribute policy) is kept.
func (c *Client) PutUserProfileAttribute(ctx context.Context, realm string, a UserProfileAttribute) error {
	if err := checkName("realm", realm); err != nil {
		return err
	}
	u := c.adminRealmURL(realm) + "/users/profile"
	err := c.authed(ctx, func(tok string) error {
		var doc map[string]any
		if err := c.adminGet(ctx, tok, &doc, u); err != nil {
			return err
		}
		declareProfileAttrs(doc, a)
		return c.adminPut(ctx, tok, doc, u)
	})
	return c.wrap(err, "declare attribute %s in the user profile of realm %s", a.Name, realm)
}

// declareProfileAttrs declares each of as in doc, a user profile: an attribute of that name is added when
// missing, and its display name, permissions and multivalued flag set; everything else is kept.
func declareProfileAttrs(doc map[string]any, as ...UserProfileAttribute) {
	attrs := profileAttrs(doc)
	for _, a := range as {
		i := slices.IndexFunc(attrs, func(m map[string]any) bool { return m["name"] == a.Name })
		if i < 0 {
			attrs = append(attrs, map[string]any{"name": a.Name})
			i = len(attrs) - 1
		}
		m := attrs[i]
		if a.DisplayName != "" {
			m["displayName"] = a.DisplayName
		}
		m["permissions"] = map[string]any{"view": nonNil(a.ViewRoles), "edit": nonNil(a.EditRoles)}
		m["multivalued"] = a.Multivalued
	}
	list := make([]any, len(attrs))
	for j := range attrs {
		list[j] = attrs[j]
	}
	doc["attributes"] = list
}

func profileAttrs(doc map[string]any) []map[string]any {
	raw, _ := doc["attributes"].([]any)
	out := make([]map[string]any, 0, len(raw))
	for _, r := range raw {
		if m, ok := r.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func fromProfileAttr(m map[string]any) UserProfileAttribute {
	a := UserProfileAttribute{}
	a.Name, _ = m["name"].(string)
	a.DisplayName, _ = m["displayName"].(string)
	a.Multivalued, _ = m["multivalued"].(bool)
	if p, ok := m["permissions"].(map[string]any); ok {
		a.ViewRoles = strings1(p["view"])
		a.EditRoles = strings1(p["edit"])
	}
	return a
}

func strings1(v any) []string {
	raw, _ := v.([]any)
	out := []string{}
	for _, r := range raw {
		if s, ok := r.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
