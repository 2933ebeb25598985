package agentlauncher

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestInstallToolCopiesOnlyWhenItDiffers(t *testing.T) {
	src := filepath.Join(t.TempDir(), "exe")
	if err := os.WriteFile(src, []byte("v1"), 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "tools") // missing: created
	dst := filepath.Join(dir, ToolName)

	changed, err := InstallTool(src, dir)
	if err != nil || !changed {
		t.Fatalf("first install: changed=%v err=%v", changed, err)
	}
	fi, err := os.Stat(dst)
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("installed file: %v %v", fi, err)
	}
	ino := inode(t, dst)

	changed, err = InstallTool(src, dir)
	if err != nil || changed {
		t.Fatalf("same executable: changed=%v err=%v, want no write", changed, err)
	}
	if inode(t, dst) != ino {
		t.Error("the unchanged file was replaced")
	}

	if err := os.WriteFile(src, []byte("v2"), 0o755); err != nil {
		t.Fatal(err)
	}
	if changed, err = InstallTool(src, dir); err != nil || !changed {
		t.Fatalf("new executable: changed=%v err=%v", changed, err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "v2" {
		t.Errorf("content %q, want v2", b)
	}
	if inode(t, dst) == ino {
		t.Error("the file was rewritten in place, not replaced atomically by a rename")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("dir holds %d entries, want only %s (no temporary file left)", len(entries), ToolName)
	}
}

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return statIno(fi)
}

func statIno(fi os.FileInfo) uint64 { return fi.Sys().(*syscall.Stat_t).Ino }
