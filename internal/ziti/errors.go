package ziti

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-openapi/runtime"
	"github.com/openziti/edge-api/rest_model"
)

// APIError is an error answer of the controller: HTTP status and the code and message of its error envelope.
type APIError struct {
	Status    int    // HTTP status; 0 when unknown
	Code      string // the controller's error code, e.g. NOT_FOUND, COULD_NOT_VALIDATE, INVALID_AUTH
	Message   string
	Cause     string // the field or nested error the controller named, if any
	RequestID string
}

func (e *APIError) Error() string {
	var b strings.Builder
	if e.Status != 0 {
		fmt.Fprintf(&b, "HTTP %d", e.Status)
	}
	if e.Code != "" {
		if b.Len() > 0 {
			b.WriteString(" ")
		}
		b.WriteString(e.Code)
	}
	if e.Message != "" {
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString(e.Message)
	}
	if e.Cause != "" {
		fmt.Fprintf(&b, " (%s)", e.Cause)
	}
	if b.Len() == 0 {
		return "controller API error"
	}
	return b.String()
}

// IsNotFound reports whether err is the controller's answer that the object does not exist.
func IsNotFound(err error) bool {
	var e *APIError
	return errors.As(err, &e) && (e.Status == http.StatusNotFound || e.Code == "NOT_FOUND")
}

// IsConflict reports whether err is the controller refusing a duplicate (a name or other unique value in use).
// Controller 1.7.2 answers a create whose name is taken with 400 COULD_NOT_VALIDATE, cause "name must be unique";
// a CA whose certificate another CA holds with cause "certificate already used as CA <id>".
func IsConflict(err error) bool {
	var e *APIError
	if !errors.As(err, &e) {
		return false
	}
	if e.Status == http.StatusConflict {
		return true
	}
	for _, s := range []string{e.Cause, e.Message} {
		s = strings.ToLower(s)
		if strings.Contains(s, "duplicate") || strings.Contains(s, "must be unique") || strings.Contains(s, "already used") {
			return true
		}
	}
	return false
}

// payloadError is what every generated error answer implements.
type payloadError interface {
	GetPayload() *rest_model.APIErrorEnvelope
}

// wrapAPI prefixes err with the operation and turns a controller error answer into an *APIError.
// Only the answer is used, never the request, so credentials sent in a request cannot leak into errors.
func wrapAPI(op string, st *status, err error) error { return wrapAPIValues(op, st, err, true) }

// wrapAPIValues is wrapAPI; withValues=false leaves out field values the controller echoes (used for logins).
func wrapAPIValues(op string, st *status, err error, withValues bool) error {
	code := st.get()
	var pe payloadError
	if errors.As(err, &pe) {
		if env := pe.GetPayload(); env != nil && env.Error != nil {
			return fmt.Errorf("%s: %w", op, fromEnvelope(code, env.Error, withValues))
		}
	}
	var re *runtime.APIError
	if errors.As(err, &re) {
		if code == 0 {
			code = re.Code
		}
		return fmt.Errorf("%s: %w", op, &APIError{Status: code, Message: http.StatusText(code)})
	}
	if code >= 400 {
		// an error answer the generated client could not decode (e.g. a proxy's HTML page)
		return fmt.Errorf("%s: %w", op, &APIError{Status: code, Message: http.StatusText(code)})
	}
	return fmt.Errorf("%s: %w", op, err)
}

func fromEnvelope(status int, e *rest_model.APIError, withValues bool) *APIError {
	out := &APIError{Status: status, Code: e.Code, Message: e.Message, RequestID: e.RequestID}
	if c := e.Cause; c != nil {
		switch {
		case c.APIFieldError.Field != "":
			out.Cause = fmt.Sprintf("field %s: %s", c.APIFieldError.Field, c.APIFieldError.Reason)
			if v, ok := c.APIFieldError.Value.(string); ok && withValues && v != "" && len(v) <= 120 {
				out.Cause += fmt.Sprintf(" (value %q)", v)
			}
		case c.APIError.Code != "" || c.APIError.Message != "":
			out.Cause = strings.TrimSpace(c.APIError.Code + " " + c.APIError.Message)
		}
	}
	if out.Cause == "" && e.CauseMessage != "" {
		out.Cause = e.CauseMessage
	}
	return out
}
