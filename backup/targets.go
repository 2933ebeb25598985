package backup

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/progress"
)

// FileTarget restores a server whose state is one database file (the Ziti controller's bbolt ctrl.db, SPIRE's
// sqlite3 datastore). Restore copies the snapshot next to the file first, then stops the server, moves the
// current file (and its sidecars, such as SQLite's -wal and -shm, which belong to it and would corrupt the
// restored file) aside as <file>.before-restore-<set>, renames the copy into place with the old file's mode and
// owner, and starts the server. The replaced files are kept; remove them once the restore is accepted.
type FileTarget struct {
	SourceName string
	Path       string   // the database file, as this process sees it
	Format     string   // bbolt or sqlite3: the snapshot is checked to be one
	Sidecars   []string // suffixes of files that belong to Path, e.g. SQLiteSidecars
	Service    Service
}

// SQLiteSidecars are the files SQLite keeps next to a database.
var SQLiteSidecars = []string{"-wal", "-shm", "-journal"}

func (t *FileTarget) Source() string { return t.SourceName }

func (t *FileTarget) String() string { return fmt.Sprintf("file %s, server %s", t.Path, t.Service) }

// Check checks the snapshot's format and that the file's directory exists.
func (t *FileTarget) Check(ctx context.Context, path string) error {
	if err := checkFormat(ctx, t.Format, path); err != nil {
		return err
	}
	if st, err := os.Stat(filepath.Dir(t.Path)); err != nil || !st.IsDir() {
		return fmt.Errorf("directory of %s: %v", t.Path, orNotDir(err))
	}
	return nil
}

func orNotDir(err error) any {
	if err != nil {
		return err
	}
	return "not a directory"
}

// Restore replaces the file (see FileTarget). At no point is the database absent: the old file and its sidecars
// are hard-linked aside (kept), the old sidecars removed, and the copy renamed over the file. A run killed before
// the rename leaves the old database (Recover links its sidecars back); after it, the restored one.
func (t *FileTarget) Restore(ctx context.Context, path, set string) (err error) {
	tmp := t.Path + restoreSuffix
	progress.Report(ctx, progress.Event{Stage: progress.Restore, Detail: "copy beside " + t.Path})
	if err := copyFile(path, tmp, t.Path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("copy the snapshot next to %s: %w", t.Path, err)
	}
	progress.Report(ctx, progress.Event{Stage: progress.Stop, Detail: t.Service.String()})
	if err := t.Service.Stop(ctx); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("stop %s (nothing was changed): %w", t.Service, err)
	}
	crashPoint("after-stop")
	progress.Report(ctx, progress.Event{Stage: progress.Swap, Detail: t.Path})
	kept := t.Path + keptInfix + set
	var linked []string // sidecars removed from the database's name, to link back on failure
	undo := func() {
		for _, suffix := range linked {
			_ = os.Link(kept+suffix, t.Path+suffix)
		}
		_ = os.Remove(tmp)
	}
	for _, suffix := range append([]string{""}, t.Sidecars...) {
		from, to := t.Path+suffix, kept+suffix
		if _, err := os.Lstat(from); errors.Is(err, os.ErrNotExist) {
			continue
		}
		_ = os.Remove(to) // a previous restore of the same set
		if err := os.Link(from, to); err != nil {
			undo()
			return errors.Join(fmt.Errorf("keep %s as %s (nothing was changed): %w", from, to, err), startAgain(ctx, t.Service))
		}
	}
	for _, suffix := range t.Sidecars {
		if err := os.Remove(t.Path + suffix); err == nil {
			linked = append(linked, suffix)
		} else if !errors.Is(err, os.ErrNotExist) {
			undo()
			return errors.Join(fmt.Errorf("remove %s (nothing was changed): %w", t.Path+suffix, err), startAgain(ctx, t.Service))
		}
	}
	crashPoint("mid-swap")
	if err := os.Rename(tmp, t.Path); err != nil {
		undo()
		return errors.Join(fmt.Errorf("put the snapshot in place of %s (nothing was changed): %w", t.Path, err), startAgain(ctx, t.Service))
	}
	syncDir(filepath.Dir(t.Path))
	crashPoint("before-start")
	if err := startAgain(ctx, t.Service); err != nil {
		return fmt.Errorf("%s restored, but the server did not start: %w; the replaced file is %s", t.Path, err, kept)
	}
	return nil
}

// Names of the files a restore makes next to the database.
const (
	restoreSuffix = ".zb-restore"      // the snapshot's copy, until it is renamed over the database
	keptInfix     = ".before-restore-" // <file>.before-restore-<set>: the replaced database (and sidecars)
)

// Recover completes or undoes an interrupted Restore (the server must not run): a copy still beside the database
// means the rename did not happen, so the database is the old one; its sidecars are linked back from the kept
// files and the copy is removed. Without a copy there is nothing to do (the restore completed, or never began).
func (t *FileTarget) Recover(context.Context) (string, error) {
	tmp := t.Path + restoreSuffix
	if _, err := os.Lstat(tmp); errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	cur, err := os.Stat(t.Path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", t.Path, err)
	}
	kept, _ := filepath.Glob(t.Path + keptInfix + "*")
	for _, k := range kept {
		if st, err := os.Stat(k); err != nil || !os.SameFile(st, cur) {
			continue // a sidecar, or a file replaced by an earlier restore
		}
		for _, suffix := range t.Sidecars {
			if _, err := os.Lstat(t.Path + suffix); errors.Is(err, os.ErrNotExist) {
				if err := os.Link(k+suffix, t.Path+suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
					return "", fmt.Errorf("link %s back: %w", k+suffix, err)
				}
			}
			_ = os.Remove(k + suffix)
		}
		_ = os.Remove(k)
	}
	if err := os.Remove(tmp); err != nil {
		return "", err
	}
	syncDir(filepath.Dir(t.Path))
	return fmt.Sprintf("undid the interrupted replacement of %s (the copy %s was not yet in place)", t.Path, tmp), nil
}

// StartTimeout bounds starting a server again after its restore.
const StartTimeout = 10 * time.Minute

// startAgain starts a server the restore stopped. It is not cancelled with ctx (an interrupt, or the lock lost
// mid-restore): a stopped server must come back; StartTimeout bounds it instead.
func startAgain(ctx context.Context, s Service) error {
	progress.Report(ctx, progress.Event{Stage: progress.Start, Detail: s.String()})
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), StartTimeout)
	defer cancel()
	return s.Start(ctx)
}

// copyFile copies src to dst (created), with the mode and owner of like when it exists, and syncs it.
func copyFile(src, dst, like string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	mode := os.FileMode(0o600)
	st, statErr := os.Stat(like)
	if statErr == nil {
		mode = st.Mode().Perm()
	}
	_ = os.Remove(dst)
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if statErr == nil {
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			if err := out.Chown(int(sys.Uid), int(sys.Gid)); err != nil && !errors.Is(err, os.ErrPermission) {
				out.Close()
				return err
			}
		}
		if err := out.Chmod(mode); err != nil {
			out.Close()
			return err
		}
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// checkFormat checks that the file at path is a database of format.
func checkFormat(ctx context.Context, format, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	head := make([]byte, 32)
	n, _ := io.ReadFull(f, head)
	f.Close()
	head = head[:n]
	switch format {
	case "bbolt":
		// page header (16 bytes), then the meta page's magic
		if n < 20 || binary.LittleEndian.Uint32(head[16:20]) != 0xED0CDAED {
			return errors.New("not a bbolt database (no meta page magic)")
		}
	case "sqlite3":
		if !bytes.HasPrefix(head, []byte("SQLite format 3\x00")) {
			return errors.New("not an SQLite database (no header)")
		}
		if _, err := checkSQLite(ctx, path, ""); err != nil {
			return err
		}
	case "pg_dump-custom":
		if !bytes.HasPrefix(head, []byte("PGDMP")) {
			return errors.New("not a pg_dump custom-format archive (no PGDMP header)")
		}
	default:
		return fmt.Errorf("unknown snapshot format %q", format)
	}
	return nil
}

// pgRestore runs pg_restore with args, connected as db says.
func pgRestore(ctx context.Context, db Postgres, args ...string) error {
	cmd := db.command(ctx, "pg_restore", args...)
	out := &tailBuffer{max: 4 << 10}
	cmd.Stderr = out
	if args[0] == "--list" {
		cmd.Stdout = io.Discard
	} else {
		cmd.Stdout = out
	}
	dieWithParent(cmd) // killed, this restore takes its transaction with it: rolled back
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pg_restore %s: %w", args[0], err)
	}
	if args[0] != "--list" {
		crashPoint("mid-restore")
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("pg_restore %s: %w: %s", args[0], err, strings.TrimSpace(out.String()))
	}
	return nil
}
