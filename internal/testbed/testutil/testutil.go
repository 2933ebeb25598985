// Package testutil holds small helpers that tests of several packages share: contexts, random names, JWT
// decoding, X.509 fixtures, and checks of step results. It makes no call to any server.
package testutil

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"
)

// Context returns a context that ends after timeout, or when the test ends.
func Context(t testing.TB, timeout time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}

// Must fails the test at once when err is not nil.
func Must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// RandHex returns n random bytes in hex, to keep the names of one test run apart from those of others.
func RandHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// Cases checks, for every case, that f(in) is want; a failure names f by name, with the input and both values.
func Cases[I, O comparable](t testing.TB, name string, f func(I) O, cases map[I]O) {
	t.Helper()
	for in, want := range cases {
		if got := f(in); got != want {
			t.Errorf("%s(%v) = %v, want %v", name, in, got, want)
		}
	}
}
