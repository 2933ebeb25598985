package keycloak

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/Nerzal/gocloak/v13"
)

// APIError is an error answer of the admin API.
type APIError struct {
	Status  int    // HTTP status code
	Message string // status line and Keycloak's error text
}

func (e *APIError) Error() string { return e.Message }

// OAuthError is an error answer of a token endpoint (RFC 6749 section 5.2).
type OAuthError struct {
	Status      int
	StatusText  string // e.g. "401 Unauthorized"
	Code        string // e.g. "invalid_grant"
	Description string // e.g. "Invalid user credentials"
}

func (e *OAuthError) Error() string {
	s := e.StatusText
	if s == "" {
		s = fmt.Sprintf("%d %s", e.Status, http.StatusText(e.Status))
	}
	if e.Code != "" {
		s += ": " + e.Code
	}
	if e.Description != "" {
		s += ": " + e.Description
	}
	return s
}

// IsNotFound reports whether err is a 404 answer: the realm, client, mapper or user does not exist.
func IsNotFound(err error) bool { return statusOf(err) == http.StatusNotFound }

// IsConflict reports whether err is a 409 answer: the object already exists.
func IsConflict(err error) bool { return statusOf(err) == http.StatusConflict }

// IsInvalidGrant reports whether a token request was refused for the user's credentials or account state
// (wrong password, disabled user, pending required actions).
func IsInvalidGrant(err error) bool {
	var oe *OAuthError
	return errors.As(err, &oe) && oe.Code == "invalid_grant"
}

// IsInvalidCredentials reports whether a token request was refused because the password is wrong (or the user
// does not exist: Keycloak does not tell the two apart).
func IsInvalidCredentials(err error) bool {
	var oe *OAuthError
	return errors.As(err, &oe) && oe.Code == "invalid_grant" && oe.Description == "Invalid user credentials"
}

// statusOf returns the HTTP status carried by err, or 0.
func statusOf(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	var ge *gocloak.APIError
	if errors.As(err, &ge) {
		return ge.Code
	}
	var oe *OAuthError
	if errors.As(err, &oe) {
		return oe.Status
	}
	return 0
}

// normalize turns gocloak's error type into ours, so callers classify with one set of functions.
func normalize(err error) error {
	var ge *gocloak.APIError
	if errors.As(err, &ge) && ge.Code != 0 {
		return &APIError{Status: ge.Code, Message: ge.Message}
	}
	return err
}
