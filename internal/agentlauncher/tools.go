package agentlauncher

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// ToolName is the file InstallTool writes in ZB_TOOLS_DIR.
const ToolName = "ziti-bootstrap"

// InstallTool copies the executable at exe to dir/ToolName (mode 0755) unless that file already has the same
// content. The copy is atomic: a reader of dir sees the old file or the new one, never a partial one. changed
// says whether it wrote. Both files are streamed, never held in memory: the launcher runs in a few MiB.
func InstallTool(exe, dir string) (changed bool, err error) {
	want, err := fileDigest(exe)
	if err != nil {
		return false, fmt.Errorf("%s: read the launcher's executable: %w", EnvToolsDir, err)
	}
	dst := filepath.Join(dir, ToolName)
	have, err := fileDigest(dst)
	switch {
	case err == nil && bytes.Equal(have, want):
		if fi, serr := os.Stat(dst); serr == nil && fi.Mode().Perm() == 0o755 {
			return false, nil
		}
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return false, fmt.Errorf("%s: %w", EnvToolsDir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("%s: %w", EnvToolsDir, err)
	}
	src, err := os.Open(exe)
	if err != nil {
		return false, fmt.Errorf("%s: read the launcher's executable: %w", EnvToolsDir, err)
	}
	defer src.Close()
	tmp, err := os.CreateTemp(dir, "."+ToolName+".*")
	if err != nil {
		return false, fmt.Errorf("%s: %w", EnvToolsDir, err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	_, err = io.Copy(tmp, src)
	if err == nil {
		err = tmp.Chmod(0o755)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		return false, fmt.Errorf("%s: install %s: %w", EnvToolsDir, dst, err)
	}
	return true, nil
}

// fileDigest is the SHA-256 of a file's content, read as a stream.
func fileDigest(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}
