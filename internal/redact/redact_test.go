package redact

import (
	"bytes"
	"fmt"
	"testing"
)

func TestURLs(t *testing.T) {
	for in, want := range map[string]string{
		"http://u:S3CR3T@host:8080/x":                          "http://REDACTED@host:8080/x",
		`{"url":"https://tok@h/p","e":"Get \"http://a:b@c\""}`: `{"url":"https://REDACTED@h/p","e":"Get \"http://REDACTED@c\""}`,
		"mail me@example.org at http://host/a@b":               "mail me@example.org at http://host/a@b",
		"plain http://host:1/x":                                "plain http://host:1/x",
	} {
		if got := URLs(in); got != want {
			t.Errorf("URLs(%q) = %q, want %q", in, got, want)
		}
		var b bytes.Buffer
		fmt.Fprint(Writer(&b), in)
		if b.String() != want {
			t.Errorf("Writer: %q, want %q", b.String(), want)
		}
	}
}
