package testbed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// KeycloakAdminClientID is the client_id of the test bed Keycloak's admin service account: Keycloak's bootstrap
// admin service account (KC_BOOTSTRAP_ADMIN_CLIENT_ID), with which ziti-bootstrap logs in by the client
// credentials grant (KEYCLOAK_ADMIN_CLIENT_ID).
const KeycloakAdminClientID = "zb-testbed-admin"

// keycloakAdminSecretName is the file, in Dir/secrets, holding the service account's secret: the Docker-secret
// name ziti-bootstrap reads from ZB_SECRETS_DIR for KEYCLOAK_ADMIN_CLIENT_SECRET.
const keycloakAdminSecretName = "keycloak_admin_client_secret"

// KeycloakAdminClient returns the client_id and secret of the test bed Keycloak's admin service account. A
// Keycloak started with it (StartKeycloak) has it from its first start; one started before the test bed knew
// about it gets it now, by the admin API, as Keycloak's bootstrap makes it: a confidential client of the master
// realm whose service account holds the realm's admin role. The secret is kept in Dir/secrets (not in the state
// file, which other test bed versions rewrite). Idempotent, and serialised across processes.
func KeycloakAdminClient(ctx context.Context, in *Info) (id, secret string, err error) {
	if in.Keycloak.URL == "" {
		return "", "", errors.New("the test bed has no Keycloak: run `task testbed:up`")
	}
	unlock, err := flock("keycloak-admin-client.lock")
	if err != nil {
		return "", "", err
	}
	defer unlock()
	file := filepath.Join(in.Dir, "secrets", keycloakAdminSecretName)
	for _, s := range []string{in.Keycloak.AdminClientSecret, readTrimmed(file)} {
		if s != "" && kcToken(ctx, in.Keycloak.URL, url.Values{"grant_type": {"client_credentials"}, "client_id": {KeycloakAdminClientID}, "client_secret": {s}}) == nil {
			return KeycloakAdminClientID, s, writeAtomicDir(file, s)
		}
	}
	secret = password()
	if err := makeKeycloakAdminClient(ctx, in.Keycloak, secret); err != nil {
		return "", "", fmt.Errorf("make Keycloak's admin service account %s: %w", KeycloakAdminClientID, err)
	}
	return KeycloakAdminClientID, secret, writeAtomicDir(file, secret)
}

// makeKeycloakAdminClient (re)creates the service account with secret, logged in as the admin user.
func makeKeycloakAdminClient(ctx context.Context, k KeycloakInfo, secret string) error {
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := kcTokenInto(ctx, k.URL, url.Values{"grant_type": {"password"}, "client_id": {"admin-cli"},
		"username": {k.AdminUser}, "password": {k.AdminPassword}}, &tok); err != nil {
		return err
	}
	api := func(method, path string, body, out any) error {
		return kcAdmin(ctx, tok.AccessToken, method, k.URL+"/admin/realms/master"+path, body, out)
	}
	var found []struct {
		ID string `json:"id"`
	}
	if err := api(http.MethodGet, "/clients?clientId="+KeycloakAdminClientID, nil, &found); err != nil {
		return err
	}
	for _, c := range found { // an account whose secret was lost: make it again
		if err := api(http.MethodDelete, "/clients/"+c.ID, nil, nil); err != nil {
			return err
		}
	}
	if err := api(http.MethodPost, "/clients", map[string]any{"clientId": KeycloakAdminClientID, "enabled": true, "publicClient": false,
		"clientAuthenticatorType": "client-secret", "secret": secret, "serviceAccountsEnabled": true,
		"standardFlowEnabled": false, "directAccessGrantsEnabled": false}, nil); err != nil {
		return err
	}
	if err := api(http.MethodGet, "/clients?clientId="+KeycloakAdminClientID, nil, &found); err != nil || len(found) != 1 {
		return fmt.Errorf("read the new client: %v (%d found)", err, len(found))
	}
	var user struct {
		ID string `json:"id"`
	}
	if err := api(http.MethodGet, "/clients/"+found[0].ID+"/service-account-user", nil, &user); err != nil {
		return err
	}
	var role map[string]any
	if err := api(http.MethodGet, "/roles/admin", nil, &role); err != nil {
		return err
	}
	return api(http.MethodPost, "/users/"+user.ID+"/role-mappings/realm", []any{role}, nil)
}

func kcToken(ctx context.Context, base string, form url.Values) error {
	return kcTokenInto(ctx, base, form, nil)
}

func kcTokenInto(ctx context.Context, base string, form url.Values, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/realms/master/protocol/openid-connect/token", strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return kcDo(req, out)
}

func kcAdmin(ctx context.Context, token, method, u string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return kcDo(req, out)
}

func kcDo(req *http.Request, out any) error {
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s", req.Method, req.URL.Path, resp.Status) // never the body: it may echo a secret
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

func readTrimmed(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// writeAtomicDir is writeAtomic, making p's directory (0700) first.
func writeAtomicDir(p, s string) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return writeAtomic(p, []byte(s))
}
