package devenv

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEnsureGeneratesOnceAndPrivately(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "dev")
	st, err := Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Created {
		t.Fatal("first Ensure did not create the state")
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("state dir: %v %v", fi.Mode(), err)
	}
	before := map[string]string{}
	for _, f := range append(Files, File{Name: EnvFile}) {
		fi, err := os.Stat(st.Path(f.Name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %04o, want 0600", f.Name, fi.Mode().Perm())
		}
		b, _ := os.ReadFile(st.Path(f.Name))
		if len(b) == 0 {
			t.Errorf("%s is empty", f.Name)
		}
		before[f.Name] = string(b)
	}
	// no leftovers of the atomic creation
	entries, _ := os.ReadDir(filepath.Dir(dir))
	if len(entries) != 1 {
		t.Errorf("parent holds %d entries, want only the state dir", len(entries))
	}

	again, err := Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	if again.Created {
		t.Error("second Ensure regenerated the state")
	}
	for name, was := range before {
		if b, _ := os.ReadFile(again.Path(name)); string(b) != was {
			t.Errorf("%s changed on the second Ensure", name)
		}
	}

	blk, _ := pem.Decode([]byte(before["spire_upstream_ca.crt"]))
	up, err := x509.ParseCertificate(blk.Bytes)
	if err != nil || !up.IsCA {
		t.Errorf("upstream root is not a CA: %v", err)
	}
	for _, k := range []string{"spire_upstream_ca.key"} {
		blk, _ := pem.Decode([]byte(before[k]))
		if blk == nil || blk.Type != "PRIVATE KEY" {
			t.Errorf("%s is not a PKCS#8 PEM key", k)
		} else if _, err := x509.ParsePKCS8PrivateKey(blk.Bytes); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}

	d := st.Defaults()
	if d["ZITI_PWD_FILE"] != st.Path("ziti_admin_password") || d["SPIRE_UPSTREAM_CA_KEY_FILE"] != st.Path("spire_upstream_ca.key") || len(d) != len(Files) {
		t.Errorf("defaults: %v", d)
	}
	env, _ := os.ReadFile(st.Path(EnvFile))
	if !strings.Contains(string(env), "KEYCLOAK_DB_PASSWORD_FILE="+st.Path("keycloak_db_password")) {
		t.Errorf("%s:\n%s", EnvFile, env)
	}
}

func TestEnsureRefusesAnUnsafeOrIncompleteState(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev")
	st, err := Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(st.Path("ziti_admin_password"), 0o644)
	os.Remove(st.Path("spire_upstream_ca.key"))
	_, err = Ensure(dir)
	if err == nil || !strings.Contains(err.Error(), "ziti_admin_password: mode 0644") || !strings.Contains(err.Error(), "spire_upstream_ca.key") {
		t.Fatalf("want an error naming both files, got %v", err)
	}
}

func TestKeycloakTLSVerifiesUnderItsCAOnly(t *testing.T) {
	st, err := Ensure(filepath.Join(t.TempDir(), "dev"))
	if err != nil {
		t.Fatal(err)
	}
	leaf := parsePEM(t, st.Path(KeycloakCertFile))
	roots := x509.NewCertPool()
	roots.AddCert(parsePEM(t, st.Path(KeycloakCAFile)))
	for _, name := range []string{"keycloak", "localhost", "127.0.0.1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: name, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("Keycloak's certificate for %s: %v", name, err)
		}
	}
	other := x509.NewCertPool()
	other.AddCert(parsePEM(t, st.Path("spire_upstream_ca.crt")))
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: other, DNSName: "keycloak"}); err == nil {
		t.Error("Keycloak's certificate verifies under another CA")
	}
}

// TestAnOlderStateGetsTheNewFiles: a state made before Keycloak's TLS, or before the admin service account's
// secret, gets them on its next run, private, without any other file changing; a later run keeps them.
func TestAnOlderStateGetsTheNewFiles(t *testing.T) {
	for name, added := range map[string][]File{"Keycloak's TLS": keycloakTLSFiles, "the admin service account": adminClientFiles} {
		t.Run(name, func(t *testing.T) {
			st, err := Ensure(filepath.Join(t.TempDir(), "dev"))
			if err != nil {
				t.Fatal(err)
			}
			pwd, _ := os.ReadFile(st.Path("ziti_admin_password"))
			for _, f := range added {
				os.Remove(st.Path(f.Name))
			}
			again, err := Ensure(st.Dir)
			if err != nil {
				t.Fatalf("a state without %s: %v", name, err)
			}
			made := map[string]string{}
			for _, f := range added {
				if fi, err := os.Stat(again.Path(f.Name)); err != nil || fi.Mode().Perm() != 0o600 || fi.Size() == 0 {
					t.Errorf("%s: %v %v", f.Name, fi, err)
				}
				b, _ := os.ReadFile(again.Path(f.Name))
				made[f.Name] = string(b)
			}
			if b, _ := os.ReadFile(again.Path("ziti_admin_password")); string(b) != string(pwd) {
				t.Error("the passwords changed")
			}
			if entries, _ := os.ReadDir(st.Dir); len(entries) != len(Files)+1 {
				t.Errorf("state holds %d entries, want %d (no temporary files left)", len(entries), len(Files)+1)
			}
			third, err := Ensure(st.Dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range added {
				if b, _ := os.ReadFile(third.Path(f.Name)); string(b) != made[f.Name] {
					t.Errorf("%s changed on a later run", f.Name)
				}
			}
		})
	}
}

func parsePEM(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
