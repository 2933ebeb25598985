package keycloakrealm

import (
	"maps"
	"slices"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/keycloak"
)

// Ownership marks.
const (
	// ManagedAttribute = "true" on a realm or client marks it as managed by ziti-bootstrap.
	ManagedAttribute = "ziti-bootstrap.managed"
	// MapperPrefix starts the name of every protocol mapper ziti-bootstrap manages.
	MapperPrefix = "ziti-bootstrap-"
	// AudienceMapper and ClaimMapper are the names of the two mappers put on each managed client.
	AudienceMapper = MapperPrefix + "audience"
	ClaimMapper    = MapperPrefix + "identity-claim"
)

// Change kinds of this step.
const (
	KindRealm            = "keycloak-realm"
	KindProfileAttribute = "keycloak-user-profile-attribute"
	KindClient           = "keycloak-client"
	KindMapper           = "keycloak-protocol-mapper"
	KindUser             = "keycloak-user"
)

// FieldPassword names a dev user's password in a plan (its value is never shown).
const FieldPassword = "password"

// fieldEditPermission names the edit permission of a user-profile attribute in a plan.
const fieldEditPermission = "permissions.edit"

const managed = "true"

// adminOnly is who may edit an attribute that identifies a user to Ziti: letting users edit it would let them
// become another Ziti identity.
var adminOnly = []string{"admin"}

func (d Declaration) wantRealm() keycloak.Realm {
	return keycloak.Realm{
		Name:                d.Realm,
		Enabled:             true,
		DisplayName:         d.DisplayName,
		AccessTokenLifespan: d.AccessTokenLifespan,
		// Two users with one e-mail address would be one Ziti identity.
		DuplicateEmailsAllowed: false,
		Attributes:             map[string]string{ManagedAttribute: managed},
	}
}

// realmFields names the fields of have that differ from the declaration.
func realmFields(d Declaration, have *keycloak.Realm) []string {
	want := d.wantRealm()
	var f fieldList
	f.add(!have.Enabled, keycloak.RealmEnabled)
	f.add(want.DisplayName != "" && have.DisplayName != want.DisplayName, keycloak.RealmDisplayName)
	f.add(want.AccessTokenLifespan > 0 && have.AccessTokenLifespan != want.AccessTokenLifespan, keycloak.RealmAccessTokenLifespan)
	f.add(d.IdentityClaim == "email" && have.DuplicateEmailsAllowed, keycloak.RealmDuplicateEmailsAllowed)
	f.add(have.Attributes[ManagedAttribute] != managed, keycloak.AttributeField(ManagedAttribute))
	return f
}

func (d Declaration) wantClients() []keycloak.OIDCClient {
	out := []keycloak.OIDCClient{{
		ClientID:           d.Public.ClientID,
		Enabled:            true,
		Public:             true,
		StandardFlow:       true,
		DirectAccessGrants: d.Public.DirectAccessGrants,
		RedirectURIs:       d.Public.RedirectURIs,
		WebOrigins:         d.Public.WebOrigins,
		Attributes: map[string]string{
			ManagedAttribute:         managed,
			keycloak.AttrDeviceGrant: "true",
		},
	}}
	if d.Public.RequirePKCE {
		out[0].Attributes[keycloak.AttrPKCEMethod] = "S256"
	}
	if c := d.Confidential; c != nil {
		redirects := c.RedirectURIs
		if redirects == nil {
			redirects = []string{}
		}
		out = append(out, keycloak.OIDCClient{
			ClientID:           c.ClientID,
			Enabled:            true,
			StandardFlow:       c.StandardFlow,
			DirectAccessGrants: c.DirectAccessGrants,
			ServiceAccounts:    c.ServiceAccounts,
			RedirectURIs:       redirects,
			Secret:             c.Secret,
			Attributes:         map[string]string{ManagedAttribute: managed},
		})
	}
	return out
}

// clientFields names the fields of have that differ from want. Nil WebOrigins and an unset Secret in want are
// not managed.
func clientFields(want, have keycloak.OIDCClient) []string {
	var f fieldList
	f.add(want.Enabled != have.Enabled, keycloak.ClientEnabled)
	f.add(want.Public != have.Public, keycloak.ClientPublic)
	f.add(want.StandardFlow != have.StandardFlow, keycloak.ClientStandardFlow)
	f.add(want.ImplicitFlow != have.ImplicitFlow, keycloak.ClientImplicitFlow)
	f.add(want.DirectAccessGrants != have.DirectAccessGrants, keycloak.ClientDirectAccessGrants)
	f.add(want.ServiceAccounts != have.ServiceAccounts, keycloak.ClientServiceAccounts)
	f.add(!sameSet(want.RedirectURIs, have.RedirectURIs), keycloak.ClientRedirectURIs)
	f.add(want.WebOrigins != nil && !sameSet(want.WebOrigins, have.WebOrigins), keycloak.ClientWebOrigins)
	f.add(!want.Public && want.Secret.IsSet() && want.Secret.Value() != have.Secret.Value(), keycloak.ClientSecret)
	for _, k := range slices.Sorted(maps.Keys(want.Attributes)) {
		f.add(have.Attributes[k] != want.Attributes[k], keycloak.AttributeField(k))
	}
	return f
}

// wantMappers are the protocol mappers every managed client carries: the audience, and the identity claim.
func (d Declaration) wantMappers() []keycloak.ProtocolMapper {
	inTokens := func(cfg map[string]string) map[string]string {
		for _, k := range []string{"access.token.claim", "id.token.claim", "introspection.token.claim"} {
			cfg[k] = "true"
		}
		return cfg
	}
	aud := keycloak.ProtocolMapper{Name: AudienceMapper, Type: "oidc-audience-mapper",
		Config: inTokens(map[string]string{"included.custom.audience": d.Audience})}
	claim := keycloak.ProtocolMapper{Name: ClaimMapper, Type: "oidc-usermodel-attribute-mapper",
		Config: inTokens(map[string]string{"user.attribute": d.IdentityClaim, "claim.name": d.IdentityClaim,
			"jsonType.label": "String", "multivalued": "false", "aggregate.attrs": "false", "userinfo.token.claim": "true"})}
	if d.IdentityClaim == "email" {
		claim = keycloak.ProtocolMapper{Name: ClaimMapper, Type: "oidc-usermodel-property-mapper",
			Config: inTokens(map[string]string{"user.attribute": "email", "claim.name": "email",
				"jsonType.label": "String", "userinfo.token.claim": "true"})}
	}
	return []keycloak.ProtocolMapper{aud, claim}
}

// mapperFields names the config keys of have that differ from want; replace is true when the mapper type
// differs (Keycloak cannot change a mapper's type: it is deleted and created again).
func mapperFields(want, have keycloak.ProtocolMapper) (fields []string, replace bool) {
	if want.Type != have.Type {
		return []string{"type"}, true
	}
	for _, k := range slices.Sorted(maps.Keys(want.Config)) {
		if have.Config[k] != want.Config[k] {
			fields = append(fields, keycloak.ConfigPrefix+k)
		}
	}
	return fields, false
}

func wantProfileAttribute(name string) keycloak.UserProfileAttribute {
	display := name
	if name == "email" {
		display = "${email}" // Keycloak's own, translated label of the built-in attribute
	}
	return keycloak.UserProfileAttribute{Name: name, DisplayName: display, ViewRoles: []string{"admin", "user"}, EditRoles: adminOnly}
}

// profileFields names what must change in a declared user-profile attribute: only administrators may edit it.
func profileFields(have keycloak.UserProfileAttribute) []string {
	if !sameSet(have.EditRoles, adminOnly) {
		return []string{fieldEditPermission}
	}
	return nil
}

func wantUser(u DevUser) keycloak.User {
	ku := keycloak.User{
		Username:      u.Username,
		Email:         u.Email,
		FirstName:     u.FirstName,
		LastName:      u.LastName,
		Enabled:       true,
		EmailVerified: u.Email != "",
		Attributes:    map[string][]string{},
	}
	for k, v := range u.Attributes {
		ku.Attributes[k] = []string{v}
	}
	return ku
}

// userFields names the fields of have that differ from want; attributes not declared are left alone.
func userFields(want, have keycloak.User) []string {
	var f fieldList
	f.add(want.Email != have.Email, keycloak.UserEmail)
	f.add(want.FirstName != have.FirstName, keycloak.UserFirstName)
	f.add(want.LastName != have.LastName, keycloak.UserLastName)
	f.add(want.Enabled != have.Enabled, keycloak.UserEnabled)
	f.add(want.EmailVerified != have.EmailVerified, keycloak.UserEmailVerified)
	for _, k := range slices.Sorted(maps.Keys(want.Attributes)) {
		f.add(!slices.Equal(want.Attributes[k], have.Attributes[k]), keycloak.AttributeField(k))
	}
	return f
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// fieldList collects the names of the fields that differ, in the order they are checked.
type fieldList []string

func (f *fieldList) add(differs bool, name string) {
	if differs {
		*f = append(*f, name)
	}
}
