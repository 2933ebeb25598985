package buildid

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The test binary's own build ID, as `go tool buildid` reads it.
func TestSelfIsGoToolBuildID(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("go", "tool", "buildid", exe).Output()
	if err != nil {
		t.Fatalf("go tool buildid: %v", err)
	}
	want := strings.TrimSpace(string(out))
	if got := Self(); got != want || got == "" {
		t.Errorf("Self() = %q, go tool buildid says %q", got, want)
	}
}

func TestReadNotAnExecutable(t *testing.T) {
	p := t.TempDir() + "/x"
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := Read(p); got != "" {
		t.Errorf("Read(a script) = %q, want \"\"", got)
	}
	if got := Read(p + ".missing"); got != "" {
		t.Errorf("Read(a missing file) = %q, want \"\"", got)
	}
}
