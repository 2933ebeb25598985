package keycloak

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/Nerzal/gocloak/v13"
)

// Realm is the part of a realm's settings ziti-bootstrap reads and writes.
type Realm struct {
	Name                   string
	Enabled                bool
	DisplayName            string
	AccessTokenLifespan    time.Duration // whole seconds
	DuplicateEmailsAllowed bool
	// Attributes are the realm's attributes. Keycloak lists its own (cibaInterval, …) here too.
	Attributes map[string]string
	// Clients are created with the realm, with their protocol mappers, by CreateRealm; GetRealm leaves it empty
	// (ListClients reads them).
	Clients []OIDCClient
	// KeyProviders, when set, are the realm's key providers made by CreateRealm instead of Keycloak's defaults
	// (see SigningKeys); GetRealm leaves it empty.
	KeyProviders []KeyProvider
}

// KeyProvider is a key provider component of a realm (e.g. "rsa-generated": an RSA key pair Keycloak generates).
type KeyProvider struct {
	Name, ProviderID string
	Config           map[string]string
}

// SigningKeys are Keycloak's default key providers for a new realm without the RSA-OAEP encryption key pair
// ("rsa-enc-generated", used only by clients that ask for encrypted tokens): an RS256 signing key pair, an HS512
// and an AES secret. Keycloak generates each RSA key pair while creating the realm, which is most of what a
// realm's create costs: one RSA pair instead of two (measured on the test bed at load 30: a realm create took a
// median 1.3 s instead of 2.0 s). Tokens are signed RS256, as with the defaults.
func SigningKeys() []KeyProvider {
	return []KeyProvider{
		{Name: "rsa-generated", ProviderID: "rsa-generated", Config: map[string]string{"priority": "100"}},
		{Name: "hmac-generated-hs512", ProviderID: "hmac-generated", Config: map[string]string{"priority": "100", "algorithm": "HS512"}},
		{Name: "aes-generated", ProviderID: "aes-generated", Config: map[string]string{"priority": "100"}},
	}
}

// keyProviderType is the component type of key providers.
const keyProviderType = "org.keycloak.keys.KeyProvider"

// componentsRep is the "components" member of a realm representation holding keys.
func componentsRep(keys []KeyProvider) map[string][]map[string]any {
	var list []map[string]any
	for _, k := range keys {
		cfg := map[string][]string{}
		for name, v := range k.Config {
			cfg[name] = []string{v}
		}
		list = append(list, map[string]any{"name": k.Name, "providerId": k.ProviderID, "subComponents": map[string]any{}, "config": cfg})
	}
	return map[string][]map[string]any{keyProviderType: list}
}

// Field names for UpdateRealm; attributes are named with AttributeField.
const (
	RealmEnabled                = "enabled"
	RealmDisplayName            = "displayName"
	RealmAccessTokenLifespan    = "accessTokenLifespan"
	RealmDuplicateEmailsAllowed = "duplicateEmailsAllowed"
)

// attributePrefix starts the field name of one attribute in an update mask.
const attributePrefix = "attributes."

// AttributeField is the update-mask name of attribute key: "attributes." + key.
func AttributeField(key string) string { return attributePrefix + key }

// applyMask applies an update mask, in its order: a field named in set runs its setter, a field prefix+KEY runs
// keyed(KEY); any other name is refused.
func applyMask(fields []string, set map[string]func(), prefix string, keyed func(key string)) error {
	for _, f := range fields {
		if s, ok := set[f]; ok {
			s()
		} else if key, ok := strings.CutPrefix(f, prefix); ok {
			keyed(key)
		} else {
			return fmt.Errorf("unknown field %q", f)
		}
	}
	return nil
}

// listP returns a pointer to a copy of l, never to nil: the representation of a list field that is sent.
func listP(l []string) *[]string {
	v := append([]string{}, l...)
	return &v
}

// GetRealm reads a realm. A missing realm is an error satisfying IsNotFound.
func (c *Client) GetRealm(ctx context.Context, name string) (*Realm, error) {
	if err := checkName("realm", name); err != nil {
		return nil, err
	}
	rep, err := authedValue(ctx, c, func(tok string) (*gocloak.RealmRepresentation, error) { return c.gc.GetRealm(ctx, tok, name) })
	if err != nil {
		return nil, c.wrap(err, "get realm %s", name)
	}
	r := &Realm{
		Name:                   gocloak.PString(rep.Realm),
		Enabled:                gocloak.PBool(rep.Enabled),
		DisplayName:            gocloak.PString(rep.DisplayName),
		AccessTokenLifespan:    time.Duration(gocloak.PInt(rep.AccessTokenLifespan)) * time.Second,
		DuplicateEmailsAllowed: gocloak.PBool(rep.DuplicateEmailsAllowed),
		Attributes:             map[string]string{},
	}
	if rep.Attributes != nil {
		r.Attributes = copyMap(*rep.Attributes)
	}
	return r, nil
}

// CreateRealm creates r with the settings given, and its Clients with their protocol mappers, in one call (a realm
// representation; Keycloak still adds its own clients and client scopes). Zero DisplayName and
// AccessTokenLifespan keep Keycloak's defaults.
//
// Logged in by client credentials, the next call logs in again: Keycloak judges a service account's admin rights
// by the roles in its token (only admin-cli's user tokens are judged by the live role mappings), and the token
// from before the create lacks the new realm's management roles (it would get 403 in the new realm).
func (c *Client) CreateRealm(ctx context.Context, r Realm) error {
	if err := checkName("realm", r.Name); err != nil {
		return err
	}
	rep := realmRep(r)
	var used string
	err := c.authed(ctx, func(tok string) error {
		used = tok
		_, err := c.gc.CreateRealm(ctx, tok, rep)
		return err
	})
	if err == nil && c.loggedInByClient() {
		c.dropToken(used)
	}
	return c.wrap(err, "create realm %s", r.Name)
}

// realmRep is the representation that creates r (CreateRealm's body, an import file's content).
func realmRep(r Realm) gocloak.RealmRepresentation {
	rep := gocloak.RealmRepresentation{
		Realm:                  gocloak.StringP(r.Name),
		Enabled:                gocloak.BoolP(r.Enabled),
		DuplicateEmailsAllowed: gocloak.BoolP(r.DuplicateEmailsAllowed),
		DisplayName:            optString(r.DisplayName),
		Attributes:             optMap(r.Attributes),
	}
	if r.AccessTokenLifespan > 0 {
		rep.AccessTokenLifespan = gocloak.IntP(seconds(r.AccessTokenLifespan))
	}
	if len(r.KeyProviders) > 0 {
		rep.Components = componentsRep(r.KeyProviders)
	}
	if len(r.Clients) > 0 {
		cs := make([]gocloak.Client, 0, len(r.Clients))
		for _, k := range r.Clients {
			cs = append(cs, toClientRep(k))
		}
		rep.Clients = &cs
	}
	return rep
}

// UpdateRealm writes the named fields of want to realm want.Name and nothing else. Attribute fields
// ("attributes.KEY") are merged into the realm's current attributes: Keycloak replaces the whole attribute set on
// every update that carries attributes, so this reads them first.
func (c *Client) UpdateRealm(ctx context.Context, want Realm, fields ...string) error {
	if len(fields) == 0 {
		return nil
	}
	if err := checkName("realm", want.Name); err != nil {
		return err
	}
	rep := gocloak.RealmRepresentation{Realm: gocloak.StringP(want.Name)}
	var attrs []string
	err := applyMask(fields, map[string]func(){
		RealmEnabled:                func() { rep.Enabled = gocloak.BoolP(want.Enabled) },
		RealmDisplayName:            func() { rep.DisplayName = gocloak.StringP(want.DisplayName) },
		RealmAccessTokenLifespan:    func() { rep.AccessTokenLifespan = gocloak.IntP(seconds(want.AccessTokenLifespan)) },
		RealmDuplicateEmailsAllowed: func() { rep.DuplicateEmailsAllowed = gocloak.BoolP(want.DuplicateEmailsAllowed) },
	}, attributePrefix, func(key string) { attrs = append(attrs, key) })
	if err != nil {
		return fmt.Errorf("keycloak: update realm %s: %w", want.Name, err)
	}
	if len(attrs) > 0 {
		cur, err := c.GetRealm(ctx, want.Name)
		if err != nil {
			return fmt.Errorf("keycloak: update realm %s: %w", want.Name, err)
		}
		for _, k := range attrs {
			cur.Attributes[k] = want.Attributes[k]
		}
		rep.Attributes = &cur.Attributes
	}
	err = c.authed(ctx, func(tok string) error { return c.gc.UpdateRealm(ctx, tok, rep) })
	return c.wrap(err, "update realm %s (fields %v)", want.Name, fields)
}

// DeleteRealm deletes a realm and everything in it. Only tests and explicit teardown use it.
func (c *Client) DeleteRealm(ctx context.Context, name string) error {
	if err := checkName("realm", name); err != nil {
		return err
	}
	err := c.authed(ctx, func(tok string) error { return c.gc.DeleteRealm(ctx, tok, name) })
	return c.wrap(err, "delete realm %s", name)
}

// Discovery reads the realm's OpenID Provider metadata (/realms/REALM/.well-known/openid-configuration). The
// issuer is the one Keycloak puts in tokens as seen from this client's URL: unless Keycloak's hostname is fixed
// (KC_HOSTNAME), clients reaching it under another name get another issuer.
func (c *Client) Discovery(ctx context.Context, realm string) (issuer, jwksURI, tokenEndpoint, authEndpoint string, err error) {
	if err := checkName("realm", realm); err != nil {
		return "", "", "", "", err
	}
	var doc struct {
		Issuer                string `json:"issuer"`
		JWKSURI               string `json:"jwks_uri"`
		TokenEndpoint         string `json:"token_endpoint"`
		AuthorizationEndpoint string `json:"authorization_endpoint"`
	}
	resp, err := c.gc.RestyClient().R().SetContext(ctx).SetResult(&doc).
		Get(c.realmURL(realm) + "/.well-known/openid-configuration")
	if err != nil {
		return "", "", "", "", fmt.Errorf("keycloak: discovery of realm %s: %w", realm, err)
	}
	if resp.IsError() {
		return "", "", "", "", fmt.Errorf("keycloak: discovery of realm %s: %w", realm, &APIError{Status: resp.StatusCode(), Message: resp.Status()})
	}
	if doc.Issuer == "" || doc.JWKSURI == "" {
		return "", "", "", "", fmt.Errorf("keycloak: discovery of realm %s: no issuer or jwks_uri in the answer", realm)
	}
	return doc.Issuer, doc.JWKSURI, doc.TokenEndpoint, doc.AuthorizationEndpoint, nil
}

func seconds(d time.Duration) int { return int(d.Round(time.Second) / time.Second) }

// optString is s for a field that is left out when empty.
func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// optMap is a copy of m for a field that is left out when empty.
func optMap[V any](m map[string]V) *map[string]V {
	if len(m) == 0 {
		return nil
	}
	c := copyMap(m)
	return &c
}

func copyMap[V any](m map[string]V) map[string]V {
	out := make(map[string]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
