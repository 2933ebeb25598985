package keycloak

import (
	"context"
	"fmt"

	"github.com/Nerzal/gocloak/v13"
	"github.com/go-resty/resty/v2"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/redact"
)

// OIDCClient is the part of an OpenID Connect client (an application registered in a realm) ziti-bootstrap
// manages. (Client is this package's admin connection.)
type OIDCClient struct {
	ID                 string // Keycloak's internal id (a UUID); set by Keycloak
	ClientID           string // the client_id applications use
	Name               string
	Enabled            bool
	Public             bool // no secret: native apps and tunnelers (PKCE)
	StandardFlow       bool // authorization code flow
	ImplicitFlow       bool
	DirectAccessGrants bool // resource owner password grant
	ServiceAccounts    bool // client credentials grant
	RedirectURIs       []string
	WebOrigins         []string
	Secret             redact.Secret // confidential clients; Keycloak generates one when empty on create
	Attributes         map[string]string
	// ProtocolMappers are the client's own mappers as read; CreateClient and CreateRealm create them with the
	// client, UpdateClient ignores them.
	ProtocolMappers []ProtocolMapper
}

// Field names for UpdateClient; attributes are named with AttributeField.
const (
	ClientName               = "name"
	ClientEnabled            = "enabled"
	ClientPublic             = "publicClient"
	ClientStandardFlow       = "standardFlowEnabled"
	ClientImplicitFlow       = "implicitFlowEnabled"
	ClientDirectAccessGrants = "directAccessGrantsEnabled"
	ClientServiceAccounts    = "serviceAccountsEnabled"
	ClientRedirectURIs       = "redirectUris"
	ClientWebOrigins         = "webOrigins"
	ClientSecret             = "secret"
)

// Client attributes Keycloak uses for OpenZiti's flows.
const (
	AttrDeviceGrant = "oauth2.device.authorization.grant.enabled" // "true" enables the device authorization grant
	AttrPKCEMethod  = "pkce.code.challenge.method"                // "S256" requires PKCE
)

// ProtocolMapper adds a claim to tokens issued for a client.
type ProtocolMapper struct {
	ID     string
	Name   string // unique per client
	Type   string // e.g. "oidc-audience-mapper", "oidc-usermodel-attribute-mapper"
	Config map[string]string
}

// ListClients returns every client of realm, with attributes and protocol mappers.
func (c *Client) ListClients(ctx context.Context, realm string) ([]OIDCClient, error) {
	return c.listClients(ctx, realm, "")
}

// GetClient returns the client whose client_id is clientID. A missing client is an error satisfying IsNotFound.
func (c *Client) GetClient(ctx context.Context, realm, clientID string) (*OIDCClient, error) {
	list, err := c.listClients(ctx, realm, clientID)
	if err != nil {
		return nil, err
	}
	for i := range list {
		if list[i].ClientID == clientID {
			return &list[i], nil
		}
	}
	return nil, fmt.Errorf("keycloak: get client %s in realm %s: %w", clientID, realm, &APIError{Status: 404, Message: "404 Not Found: no such client"})
}

func (c *Client) listClients(ctx context.Context, realm, clientID string) ([]OIDCClient, error) {
	if err := checkName("realm", realm); err != nil {
		return nil, err
	}
	params := gocloak.GetClientsParams{}
	if clientID != "" {
		params.ClientID = gocloak.StringP(clientID) // exact match unless search=true
	}
	reps, err := authedValue(ctx, c, func(tok string) ([]*gocloak.Client, error) { return c.gc.GetClients(ctx, tok, realm, params) })
	if err != nil {
		if clientID != "" {
			return nil, c.wrap(err, "get client %s in realm %s", clientID, realm)
		}
		return nil, c.wrap(err, "list clients of realm %s", realm)
	}
	out := make([]OIDCClient, 0, len(reps))
	for _, r := range reps {
		out = append(out, fromClientRep(r))
	}
	return out, nil
}

func fromClientRep(r *gocloak.Client) OIDCClient {
	k := OIDCClient{
		ID:                 gocloak.PString(r.ID),
		ClientID:           gocloak.PString(r.ClientID),
		Name:               gocloak.PString(r.Name),
		Enabled:            gocloak.PBool(r.Enabled),
		Public:             gocloak.PBool(r.PublicClient),
		StandardFlow:       gocloak.PBool(r.StandardFlowEnabled),
		ImplicitFlow:       gocloak.PBool(r.ImplicitFlowEnabled),
		DirectAccessGrants: gocloak.PBool(r.DirectAccessGrantsEnabled),
		ServiceAccounts:    gocloak.PBool(r.ServiceAccountsEnabled),
		Secret:             redact.NewSecret(gocloak.PString(r.Secret)),
		Attributes:         map[string]string{},
	}
	if r.RedirectURIs != nil {
		k.RedirectURIs = append([]string{}, *r.RedirectURIs...)
	}
	if r.WebOrigins != nil {
		k.WebOrigins = append([]string{}, *r.WebOrigins...)
	}
	if r.Attributes != nil {
		k.Attributes = copyMap(*r.Attributes)
	}
	if r.ProtocolMappers != nil {
		for _, m := range *r.ProtocolMappers {
			k.ProtocolMappers = append(k.ProtocolMappers, fromMapperRep(m))
		}
	}
	return k
}

func fromMapperRep(m gocloak.ProtocolMapperRepresentation) ProtocolMapper {
	pm := ProtocolMapper{ID: gocloak.PString(m.ID), Name: gocloak.PString(m.Name), Type: gocloak.PString(m.ProtocolMapper), Config: map[string]string{}}
	if m.Config != nil {
		pm.Config = copyMap(*m.Config)
	}
	return pm
}

// CreateClient creates an OpenID Connect client in realm, with its ProtocolMappers, in one call, and returns its
// internal id.
func (c *Client) CreateClient(ctx context.Context, realm string, k OIDCClient) (string, error) {
	if err := checkName("realm", realm); err != nil {
		return "", err
	}
	rep := toClientRep(k)
	id, err := authedValue(ctx, c, func(tok string) (string, error) { return c.gc.CreateClient(ctx, tok, realm, rep) })
	if err != nil {
		return "", c.wrap(err, "create client %s in realm %s", k.ClientID, realm)
	}
	return id, nil
}

// toClientRep is the representation that creates k with its protocol mappers.
func toClientRep(k OIDCClient) gocloak.Client {
	rep := gocloak.Client{
		ClientID:                  gocloak.StringP(k.ClientID),
		Protocol:                  gocloak.StringP("openid-connect"),
		Enabled:                   gocloak.BoolP(k.Enabled),
		PublicClient:              gocloak.BoolP(k.Public),
		StandardFlowEnabled:       gocloak.BoolP(k.StandardFlow),
		ImplicitFlowEnabled:       gocloak.BoolP(k.ImplicitFlow),
		DirectAccessGrantsEnabled: gocloak.BoolP(k.DirectAccessGrants),
		ServiceAccountsEnabled:    gocloak.BoolP(k.ServiceAccounts),
		Name:                      optString(k.Name),
		Attributes:                optMap(k.Attributes),
	}
	if k.RedirectURIs != nil {
		rep.RedirectURIs = &k.RedirectURIs
	}
	if k.WebOrigins != nil {
		rep.WebOrigins = &k.WebOrigins
	}
	if k.Secret.IsSet() {
		rep.Secret = gocloak.StringP(k.Secret.Value())
	}
	if len(k.ProtocolMappers) > 0 {
		ms := make([]gocloak.ProtocolMapperRepresentation, 0, len(k.ProtocolMappers))
		for _, m := range k.ProtocolMappers {
			ms = append(ms, toMapperRep(m))
		}
		rep.ProtocolMappers = &ms
	}
	return rep
}

// toMapperRep is the representation that creates m.
func toMapperRep(m ProtocolMapper) gocloak.ProtocolMapperRepresentation {
	cfg := copyMap(m.Config)
	return gocloak.ProtocolMapperRepresentation{
		Name:           gocloak.StringP(m.Name),
		Protocol:       gocloak.StringP("openid-connect"),
		ProtocolMapper: gocloak.StringP(m.Type),
		Config:         &cfg,
	}
}

// UpdateClient writes the named fields of k to the client with id k.ID and nothing else. Keycloak merges client
// attributes on update, so only the named attributes are sent.
func (c *Client) UpdateClient(ctx context.Context, realm string, k OIDCClient, fields ...string) error {
	if len(fields) == 0 {
		return nil
	}
	if err := checkName("realm", realm); err != nil {
		return err
	}
	if k.ID == "" {
		return fmt.Errorf("keycloak: update client %s in realm %s: no id", k.ClientID, realm)
	}
	rep := gocloak.Client{ID: gocloak.StringP(k.ID), ClientID: gocloak.StringP(k.ClientID)}
	attrs := map[string]string{}
	err := applyMask(fields, map[string]func(){
		ClientName:               func() { rep.Name = gocloak.StringP(k.Name) },
		ClientEnabled:            func() { rep.Enabled = gocloak.BoolP(k.Enabled) },
		ClientPublic:             func() { rep.PublicClient = gocloak.BoolP(k.Public) },
		ClientStandardFlow:       func() { rep.StandardFlowEnabled = gocloak.BoolP(k.StandardFlow) },
		ClientImplicitFlow:       func() { rep.ImplicitFlowEnabled = gocloak.BoolP(k.ImplicitFlow) },
		ClientDirectAccessGrants: func() { rep.DirectAccessGrantsEnabled = gocloak.BoolP(k.DirectAccessGrants) },
		ClientServiceAccounts:    func() { rep.ServiceAccountsEnabled = gocloak.BoolP(k.ServiceAccounts) },
		ClientRedirectURIs:       func() { rep.RedirectURIs = listP(k.RedirectURIs) },
		ClientWebOrigins:         func() { rep.WebOrigins = listP(k.WebOrigins) },
		ClientSecret:             func() { rep.Secret = gocloak.StringP(k.Secret.Value()) },
	}, attributePrefix, func(key string) { attrs[key] = k.Attributes[key] })
	if err != nil {
		return fmt.Errorf("keycloak: update client %s in realm %s: %w", k.ClientID, realm, err)
	}
	if len(attrs) > 0 {
		rep.Attributes = &attrs
	}
	err = c.authed(ctx, func(tok string) error { return c.gc.UpdateClient(ctx, tok, realm, rep) })
	return c.wrap(err, "update client %s in realm %s (fields %v)", k.ClientID, realm, fields)
}

// DeleteClient deletes the client with internal id.
func (c *Client) DeleteClient(ctx context.Context, realm, id string) error {
	if err := checkName("realm", realm); err != nil {
		return err
	}
	err := c.authed(ctx, func(tok string) error { return c.gc.DeleteClient(ctx, tok, realm, id) })
	return c.wrap(err, "delete client %s in realm %s", id, realm)
}

// ProtocolMappers lists the client's own protocol mappers (not those of its client scopes).
func (c *Client) ProtocolMappers(ctx context.Context, realm, clientUUID string) ([]ProtocolMapper, error) {
	if err := checkName("realm", realm); err != nil {
		return nil, err
	}
	var reps []gocloak.ProtocolMapperRepresentation
	err := c.authed(ctx, func(tok string) error {
		return c.adminGet(ctx, tok, &reps, c.adminRealmURL(realm)+"/clients/"+clientUUID+"/protocol-mappers/models")
	})
	if err != nil {
		return nil, c.wrap(err, "list protocol mappers of client %s in realm %s", clientUUID, realm)
	}
	out := make([]ProtocolMapper, 0, len(reps))
	for _, r := range reps {
		out = append(out, fromMapperRep(r))
	}
	return out, nil
}

// CreateProtocolMapper adds an OpenID Connect protocol mapper to the client and returns its id.
func (c *Client) CreateProtocolMapper(ctx context.Context, realm, clientUUID string, m ProtocolMapper) (string, error) {
	if err := checkName("realm", realm); err != nil {
		return "", err
	}
	rep := toMapperRep(m)
	id, err := authedValue(ctx, c, func(tok string) (string, error) {
		return c.gc.CreateClientProtocolMapper(ctx, tok, realm, clientUUID, rep)
	})
	if err != nil {
		return "", c.wrap(err, "create protocol mapper %q on client %s in realm %s", m.Name, clientUUID, realm)
	}
	return id, nil
}

// UpdateProtocolMapper writes the named config keys of m ("config.KEY") to the mapper with id m.ID. Keycloak
// replaces a mapper's whole config on update, so this reads the mapper and sends its other keys unchanged.
func (c *Client) UpdateProtocolMapper(ctx context.Context, realm, clientUUID string, m ProtocolMapper, fields ...string) error {
	if len(fields) == 0 {
		return nil
	}
	if err := checkName("realm", realm); err != nil {
		return err
	}
	u := c.adminRealmURL(realm) + "/clients/" + clientUUID + "/protocol-mappers/models/" + m.ID
	err := c.authed(ctx, func(tok string) error {
		var cur gocloak.ProtocolMapperRepresentation
		if err := c.adminGet(ctx, tok, &cur, u); err != nil {
			return err
		}
		cfg := map[string]string{}
		if cur.Config != nil {
			cfg = *cur.Config
		}
		if err := applyMask(fields, nil, ConfigPrefix, func(key string) { cfg[key] = m.Config[key] }); err != nil {
			return err
		}
		cur.Config = &cfg
		return c.gc.UpdateClientProtocolMapper(ctx, tok, realm, clientUUID, m.ID, cur)
	})
	return c.wrap(err, "update protocol mapper %q on client %s in realm %s (fields %v)", m.Name, clientUUID, realm, fields)
}

// ConfigPrefix starts the update-mask name of a protocol mapper's config key.
const ConfigPrefix = "config."

// DeleteProtocolMapper removes a protocol mapper from the client.
func (c *Client) DeleteProtocolMapper(ctx context.Context, realm, clientUUID, mapperID string) error {
	if err := checkName("realm", realm); err != nil {
		return err
	}
	err := c.authed(ctx, func(tok string) error {
		return c.gc.DeleteClientProtocolMapper(ctx, tok, realm, clientUUID, mapperID)
	})
	return c.wrap(err, "delete protocol mapper %s of client %s in realm %s", mapperID, clientUUID, realm)
}

// adminGet GETs an admin API URL into out.
func (c *Client) adminGet(ctx context.Context, tok string, out any, u string) error {
	return adminResult(c.gc.GetRequestWithBearerAuth(ctx, tok).SetResult(out).Get(u))
}

// adminPut PUTs body to an admin API URL.
func (c *Client) adminPut(ctx context.Context, tok string, body any, u string) error {
	return adminResult(c.gc.GetRequestWithBearerAuth(ctx, tok).SetBody(body).Put(u))
}

// adminResult turns an error answer of the admin API into an *APIError.
func adminResult(resp *resty.Response, err error) error {
	if err != nil {
		return err
	}
	if resp.IsError() {
		msg := resp.Status()
		if h, ok := resp.Error().(*gocloak.HTTPErrorResponse); ok && h.NotEmpty() {
			msg += ": " + h.String()
		}
		return &APIError{Status: resp.StatusCode(), Message: msg}
	}
	return nil
}
