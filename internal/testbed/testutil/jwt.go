package testutil

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// DecodeJWT returns the claims and the key id of a JWT. It does not check the signature: tests trust the tokens
// of their own servers.
func DecodeJWT(t testing.TB, jwt string) (claims map[string]any, kid string) {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	var hdr struct {
		Kid string `json:"kid"`
	}
	for i, out := range []any{&hdr, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatal(err)
		}
	}
	return claims, hdr.Kid
}

// Claims returns the claims of a JWT (see DecodeJWT).
func Claims(t testing.TB, jwt string) map[string]any {
	t.Helper()
	claims, _ := DecodeJWT(t, jwt)
	return claims
}

// HasAudience reports whether an aud claim, a string or a list of strings, holds want.
func HasAudience(aud any, want string) bool {
	switch a := aud.(type) {
	case string:
		return a == want
	case []any:
		return slices.Contains(a, any(want))
	}
	return false
}
