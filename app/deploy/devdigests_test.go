package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The digits of a secret whose data is one of the dev state's files are kept (0600) for the next process, found
// by a keyed hash: the file holds neither the data nor a plain hash of it. Other data is never kept.
func TestDevDigestsKeepOnlyTheStatesOwnSecrets(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	pw := filepath.Join(dir, "ziti_admin_password")
	if err := os.WriteFile(pw, []byte("generated-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	defaults := map[string]string{"ZITI_PWD_FILE": pw, "ZB_PUBLISH_MODE": "host"}
	d, err := OpenDevDigests(dir, defaults)
	if err != nil {
		t.Fatal(err)
	}
	d.Remember("salt-a", []byte("generated-pw"), "0123abcd")
	d.Remember("salt-a", []byte("operator-given"), "89abcdef")
	if err := d.Save(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, DigestsFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("digests file: %v, mode %v", err, fi)
	}
	b, _ := os.ReadFile(filepath.Join(dir, DigestsFile))
	for _, leak := range []string{"generated-pw", "operator-given", "89abcdef", sha("generated-pw"), sha("salt-a\x00generated-pw")} {
		if strings.Contains(string(b), leak) {
			t.Errorf("the digests file holds %q:\n%s", leak, b)
		}
	}
	again, err := OpenDevDigests(dir, defaults)
	if err != nil {
		t.Fatal(err)
	}
	if h, ok := again.Lookup("salt-a", []byte("generated-pw")); !ok || h != "0123abcd" {
		t.Errorf("next process: %q %v, want 0123abcd", h, ok)
	}
	if h, ok := again.Lookup("salt-b", []byte("generated-pw")); ok {
		t.Errorf("another salt found %q", h)
	}
	if h, ok := again.Lookup("salt-a", []byte("operator-given")); ok {
		t.Errorf("data not in the state found %q", h)
	}
	// a damaged file is a cache miss, not an error
	if err := os.WriteFile(filepath.Join(dir, DigestsFile), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if d, err := OpenDevDigests(dir, defaults); err != nil {
		t.Fatal(err)
	} else if _, ok := d.Lookup("salt-a", []byte("generated-pw")); ok {
		t.Error("found in a damaged file")
	}
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
