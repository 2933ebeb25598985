package testutil

import (
	"os"
	"testing"
)

// Golden compares got, what the test names what, with the golden file path; update rewrites the file with got
// first (how a test is told to is its own: a flag, a variable).
func Golden(t testing.TB, what, path, got string, update bool) {
	t.Helper()
	if update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s:\n%s\nwant (%s):\n%s", what, got, path, want)
	}
}
