package keycloakrealm

import (
	"maps"
	"slices"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/keycloak"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
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

// realmDiff lists the fields of have that differ from the declaration.
func realmDiff(d Declaration, have *keycloak.Realm) steps.Diff {
	want := d.wantRealm()
	var f steps.Diff
	f.Add(!have.Enabled, keycloak.RealmEnabled, have.Enabled, true)
	f.Add(want.DisplayName != "" && have.DisplayName != want.DisplayName, keycloak.RealmDisplayName, have.DisplayName, want.DisplayName)
	f.Add(want.AccessTokenLifespan > 0 && have.AccessTokenLifespan != want.AccessTokenLifespan, keycloak.RealmAccessTokenLifespan,
		have.AccessTokenLifespan.String(), want.AccessTokenLifespan.String())
	f.Add(d.IdentityClaim == "email" && have.DuplicateEmailsAllowed, keycloak.RealmDuplicateEmailsAllowed, have.DuplicateEmailsAllowed, false)
	steps.Compare(&f, keycloak.AttributeField(ManagedAttribute), have.Attributes[ManagedAttribute], managed)
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

// clientDiff lists the fields of have that differ from want. Nil WebOrigins and an unset Secret in want are
// not managed.
func clientDiff(want, have keycloak.OIDCClient) steps.Diff {
	var f steps.Diff
	steps.Compare(&f, keycloak.ClientEnabled, have.Enabled, want.Enabled)
	steps.Compare(&f, keycloak.ClientPublic, have.Public, want.Public)
	steps.Compare(&f, keycloak.ClientStandardFlow, have.StandardFlow, want.StandardFlow)
	steps.Compare(&f, keycloak.ClientImplicitFlow, have.ImplicitFlow, want.ImplicitFlow)
	steps.Compare(&f, keycloak.ClientDirectAccessGrants, have.DirectAccessGrants, want.DirectAccessGrants)
	steps.Compare(&f, keycloak.ClientServiceAccounts, have.ServiceAccounts, want.ServiceAccounts)
	f.Add(!sameSet(want.RedirectURIs, have.RedirectURIs), keycloak.ClientRedirectURIs, have.RedirectURIs, want.RedirectURIs)
	f.Add(want.WebOrigins != nil && !sameSet(want.WebOrigins, have.WebOrigins), keycloak.ClientWebOrigins, have.WebOrigins, want.WebOrigins)
	f.AddSecret(!want.Public && want.Secret.IsSet() && want.Secret.Value() != have.Secret.Value(), keycloak.ClientSecret)
	for _, k := range slices.Sorted(maps.Keys(want.Attributes)) {
		steps.Compare(&f, keycloak.AttributeField(k), have.Attributes[k], want.Attributes[k])
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

// mapperDiff lists the config keys of have that differ from want; replace is true when the mapper type
// differs (Keycloak cannot change a mapper's type: it is deleted and created again).
func mapperDiff(want, have keycloak.ProtocolMapper) (f steps.Diff, replace bool) {
	if want.Type != have.Type {
		f.Add(true, "type", have.Type, want.Type)
		return f, true
	}
	for _, k := range slices.Sorted(maps.Keys(want.Config)) {
		steps.Compare(&f, keycloak.ConfigPrefix+k, have.Config[k], want.Config[k])
	}
	return f, false
}

func wantProfileAttribute(name string) keycloak.UserProfileAttribute {
	display := name
	if name == "email" {
		display = "${email}" // Keycloak's own, translated label of the built-in attribute
	}
	return keycloak.UserProfileAttribute{Name: name, DisplayName: display, ViewRoles: []string{"admin", "user"}, EditRoles: adminOnly}
}

// profileDiff lists what must change in a declared user-profile attribute: only administrators may edit it.
func profileDiff(have keycloak.UserProfileAttribute) steps.Diff {
	var f steps.Diff
	f.Add(!sameSet(have.EditRoles, adminOnly), fieldEditPermission, have.EditRoles, adminOnly)
	return f
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

// userDiff lists the fields of have that differ from want; attributes not declared are left alone.
func userDiff(want, have keycloak.User) steps.Diff {
	var f steps.Diff
	steps.Compare(&f, keycloak.UserEmail, have.Email, want.Email)
	steps.Compare(&f, keycloak.UserFirstName, have.FirstName, want.FirstName)
	steps.Compare(&f, keycloak.UserLastName, have.LastName, want.LastName)
	steps.Compare(&f, keycloak.UserEnabled, have.Enabled, want.Enabled)
	steps.Compare(&f, keycloak.UserEmailVerified, have.EmailVerified, want.EmailVerified)
	for _, k := range slices.Sorted(maps.Keys(want.Attributes)) {
		f.Add(!slices.Equal(want.Attributes[k], have.Attributes[k]), keycloak.AttributeField(k), have.Attributes[k], want.Attributes[k])
	}
	return f
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}
