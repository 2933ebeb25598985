package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
)

// readTree returns every file under dir with its mode and content, for comparing two renders.
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = fi.Mode().String() + "\n" + string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRenderComposeTwiceIsByteIdentical(t *testing.T) {
	dir := t.TempDir()
	state, out1, out2 := filepath.Join(dir, "state"), filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, out := range []string{out1, out2, out2} { // the last one replaces a previous render
		code, stdout, errs := cli(t, "render", "--out", out, "--compose", "--dev", "--state-dir", state, "--project", "p1")
		if code != 0 {
			t.Fatalf("render: exit %d\n%s\n%s", code, stdout, errs)
		}
	}
	a, b := readTree(t, out1), readTree(t, out2)
	if len(a) < 10 {
		t.Fatalf("render wrote %d files", len(a))
	}
	for p, v := range a {
		if b[p] != v {
			t.Errorf("%s differs between two renders", p)
		}
	}
	if !strings.Contains(a["compose/compose.yml"], "ZB_COMPOSE_PROJECT: p1") {
		t.Errorf("compose.yml does not name the project for the SPIRE entries")
	}
}

// POLICIES_FILE reaches the bootstrap of the compose project as it reaches up's job: a config file mounted where
// the variable says.
func TestRenderShipsThePoliciesFile(t *testing.T) {
	dir := t.TempDir()
	policies := filepath.Join(dir, "policies.yaml")
	if err := os.WriteFile(policies, []byte(e2ePolicies), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	code, stdout, errs := cli(t, "render", "--out", out, "--compose", "--dev", "--state-dir", filepath.Join(dir, "state"), "--set", "POLICIES_FILE="+policies)
	if code != 0 {
		t.Fatalf("render: exit %d\n%s\n%s", code, stdout, errs)
	}
	files := readTree(t, out)
	if f := files["compose/configs/bootstrap-policies"]; !strings.HasSuffix(f, e2ePolicies) {
		t.Errorf("the policies file is not among the compose project's configs: %q", f)
	}
	yml := files["compose/compose.yml"]
	for _, want := range []string{"POLICIES_FILE: /etc/ziti-bootstrap/policies.yaml", "source: ./configs/bootstrap-policies", "target: /etc/ziti-bootstrap/policies.yaml"} {
		if !strings.Contains(yml, want) {
			t.Errorf("compose.yml lacks %q", want)
		}
	}
}

func TestRenderRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	foreign := filepath.Join(dir, "foreign")
	if err := os.MkdirAll(foreign, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(foreign, "notes.txt"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"render", "--compose", "--dev", "--state-dir", state}, "--out"},
		{[]string{"render", "--out", filepath.Join(dir, "x"), "--compose"}, "--compose needs --dev"},
		{[]string{"render", "--out", foreign, "--compose", "--dev", "--state-dir", state}, "was not written by render"},
		{[]string{"render", "--out", filepath.Join(dir, "y"), "--compose", "--dev", "--state-dir", state, "--set", "POLICIES_FILE=" + filepath.Join(dir, "missing.yaml")}, "POLICIES_FILE"},
	} {
		code, _, errs := cli(t, c.args...)
		if code != exitcode.InvalidConfig || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, want %d and %q in:\n%s", c.args, code, exitcode.InvalidConfig, c.want, errs)
		}
	}
	if b, err := os.ReadFile(filepath.Join(foreign, "notes.txt")); err != nil || string(b) != "mine" {
		t.Errorf("a directory render refused was changed: %q %v", b, err)
	}
	for _, d := range []string{"x", "y"} {
		if _, err := os.Stat(filepath.Join(dir, d)); !os.IsNotExist(err) {
			t.Errorf("a refused render wrote %s: %v", d, err)
		}
	}
}
