package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Target puts one source's snapshot back into its server.
type Target interface {
	// Source is the name of the source whose object it restores (ziti, spire, keycloak).
	Source() string
	// String says what it replaces and how the server is stopped and started, for the plan.
	String() string
	// Check tells whether the staged snapshot (a local file) can be restored here, changing nothing.
	Check(ctx context.Context, path string) error
	// Restore stops the server, puts the snapshot at path in place of its state, and starts it again. set names
	// the set restored (e.g. for the name under which the replaced state is kept).
	Restore(ctx context.Context, path, set string) error
}

// CorruptError is a set that fails verification; nothing was changed.
type CorruptError struct {
	Set    string
	Object string // where the object is, e.g. s3://bucket/prefix/set/ziti.bbolt.zst
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("set %s is not restorable, nothing was changed: %s: %s", e.Set, e.Object, e.Reason)
}

// IncompleteError is a set without a manifest; nothing was changed.
type IncompleteError struct {
	Set   string
	Where string
}

func (e *IncompleteError) Error() string {
	return fmt.Sprintf("set %s is incomplete (no %s: its run failed or is still running) and cannot be restored; nothing was changed; `backup list` shows the complete sets", e.Set, e.Where)
}

// IsCorrupt reports whether err refuses a set as corrupt, truncated or incomplete.
func IsCorrupt(err error) bool {
	var c *CorruptError
	var i *IncompleteError
	return errors.As(err, &c) || errors.As(err, &i)
}

// Restore restores sets.
type Restore struct {
	Store   Store
	Prefix  string
	Key     *Key
	TempDir string // staging space for the downloaded and decoded objects; "" is os.TempDir()
	// Targets in the order they are restored.
	Targets []Target
	Log     *slog.Logger
}

// Latest is the set name that means the newest set with a manifest (sets without one are skipped; a damaged
// newest set is refused, not passed over).
const Latest = "latest"

// Resolve returns the manifest of set (an ID, or Latest), checked: a set without a manifest is refused, and so
// is one encrypted with another key, or whose manifest does not verify.
func (r *Restore) Resolve(ctx context.Context, set string) (*Manifest, error) {
	prefix := normPrefix(r.Prefix)
	if set == Latest {
		sets, err := (&Lister{Store: r.Store, Prefix: prefix, Key: r.Key}).List(ctx, time.Now())
		if err != nil {
			return nil, err
		}
		// The newest set with a manifest: a damaged one is refused below rather than passed over for an older
		// one, which the operator should choose knowingly.
		found := false
		for i := len(sets) - 1; i >= 0 && !found; i-- {
			if sets[i].State == Complete || sets[i].State == Damaged {
				set, found = sets[i].ID, true
			}
		}
		if !found {
			return nil, fmt.Errorf("no complete set under %s", r.Store.Where(prefix))
		}
	}
	if !IsSetID(set) {
		return nil, fmt.Errorf("%q is not a set ID (like 20261126T033700Z-1a2b) or %q", set, Latest)
	}
	key := prefix + set + "/" + ManifestName
	b, err := readAll(ctx, r.Store, key, maxManifest)
	if err != nil {
		if IsNotExist(err) {
			objs, lerr := r.Store.List(ctx, prefix+set+"/")
			if lerr == nil && len(objs) == 0 {
				return nil, fmt.Errorf("no set %s under %s", set, r.Store.Where(prefix))
			}
			return nil, &IncompleteError{Set: set, Where: r.Store.Where(key)}
		}
		return nil, err
	}
	m, err := parseManifest(b, r.Key)
	if err != nil {
		var ke *KeyError
		if errors.As(err, &ke) {
			return nil, err
		}
		return nil, &CorruptError{Set: set, Object: r.Store.Where(key), Reason: err.Error()}
	}
	if m.Set != set {
		return nil, &CorruptError{Set: set, Object: r.Store.Where(key), Reason: "the manifest names set " + m.Set}
	}
	return m, nil
}

// Prepared is a set downloaded, verified and decoded into local files; nothing has been changed yet.
type Prepared struct {
	Manifest *Manifest
	Dir      string            // staging directory
	Files    map[string]string // source → decoded snapshot
	targets  []Target
	log      *slog.Logger
}

// Prepare resolves set, picks the targets of the sources in only (all the manifest's when empty), downloads their
// objects and checks each one's size and SHA-256 against the manifest, decodes them (decryption authenticates
// every chunk) and checks the decoded size and SHA-256, and lets each target check its file. Any failure refuses
// the set naming the object, and nothing is changed. Close the result to remove the staged files.
func (r *Restore) Prepare(ctx context.Context, set string, only []string) (*Prepared, error) {
	m, err := r.Resolve(ctx, set)
	if err != nil {
		return nil, err
	}
	targets, objs, err := r.pick(m, only)
	if err != nil {
		return nil, err
	}
	p, err := r.stage(ctx, m, objs)
	if err != nil {
		return nil, err
	}
	p.targets = targets
	for _, t := range targets {
		if err := t.Check(ctx, p.Files[t.Source()]); err != nil {
			p.Close()
			o, _ := m.Object(t.Source())
			return nil, &CorruptError{Set: m.Set, Object: r.Store.Where(normPrefix(r.Prefix) + m.Set + "/" + o.Key),
				Reason: fmt.Sprintf("not restorable into %s: %v", t, err)}
		}
	}
	return p, nil
}

// Verify downloads and checks a set as Prepare does, without targets, keeping nothing.
func (r *Restore) Verify(ctx context.Context, set string) (*Manifest, error) {
	m, err := r.Resolve(ctx, set)
	if err != nil {
		return nil, err
	}
	p, err := r.stage(ctx, m, m.Objects)
	if err != nil {
		return nil, err
	}
	return m, p.Close()
}

// pick matches the sources to restore with targets.
func (r *Restore) pick(m *Manifest, only []string) ([]Target, []Object, error) {
	want := only
	if len(want) == 0 {
		for _, o := range m.Objects {
			want = append(want, o.Source)
		}
	}
	var targets []Target
	var objs []Object
	for _, t := range r.Targets {
		if !slices.Contains(want, t.Source()) {
			continue
		}
		o, ok := m.Object(t.Source())
		if !ok {
			if len(only) > 0 {
				return nil, nil, fmt.Errorf("set %s holds no %s snapshot (it has %s); leave %s out of the sources to restore", m.Set, t.Source(), sources(m), t.Source())
			}
			continue
		}
		targets = append(targets, t)
		objs = append(objs, o)
	}
	for _, w := range want {
		if !slices.ContainsFunc(targets, func(t Target) bool { return t.Source() == w }) {
			if _, ok := m.Object(w); !ok {
				return nil, nil, fmt.Errorf("set %s holds no %s snapshot (it has %s); leave %s out of the sources to restore", m.Set, w, sources(m), w)
			}
			return nil, nil, fmt.Errorf("set %s holds a %s snapshot, but no restore target is configured for it; configure one or leave %s out of the sources to restore", m.Set, w, w)
		}
	}
	return targets, objs, nil
}

func sources(m *Manifest) string {
	var s []string
	for _, o := range m.Objects {
		s = append(s, o.Source)
	}
	return strings.Join(s, ", ")
}

// stage downloads and decodes objs into a new staging directory.
func (r *Restore) stage(ctx context.Context, m *Manifest, objs []Object) (*Prepared, error) {
	tmp := r.TempDir
	if tmp == "" {
		tmp = os.TempDir()
	}
	dir, err := os.MkdirTemp(tmp, "zb-restore-"+m.Set+"-")
	if err != nil {
		return nil, fmt.Errorf("staging directory: %w", err)
	}
	p := &Prepared{Manifest: m, Dir: dir, Files: map[string]string{}, log: r.log()}
	setDir := normPrefix(r.Prefix) + m.Set + "/"
	// All downloads are checked before any object is decoded or used.
	stored := map[string]string{}
	for _, o := range objs {
		path := filepath.Join(dir, o.Key)
		if err := r.download(ctx, m.Set, setDir+o.Key, path, o); err != nil {
			p.Close()
			return nil, err
		}
		stored[o.Source] = path
	}
	for _, o := range objs {
		raw := filepath.Join(dir, o.Source+".raw")
		if err := r.decodeFile(m.Set, setDir+o.Key, stored[o.Source], raw, o); err != nil {
			p.Close()
			return nil, err
		}
		_ = os.Remove(stored[o.Source])
		p.Files[o.Source] = raw
	}
	return p, nil
}

func (r *Restore) download(ctx context.Context, set, key, path string, o Object) error {
	where := r.Store.Where(key)
	corrupt := func(format string, a ...any) error {
		return &CorruptError{Set: set, Object: where, Reason: fmt.Sprintf(format, a...)}
	}
	rc, info, err := r.Store.Get(ctx, key)
	if err != nil {
		if IsNotExist(err) {
			return corrupt("missing")
		}
		return err
	}
	defer rc.Close()
	if info.Size != o.Size {
		return corrupt("the store holds %d bytes; the manifest says %d (truncated or replaced)", info.Size, o.Size)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	d := newDigest()
	_, cerr := io.Copy(io.MultiWriter(f, d), rc)
	if err := f.Close(); err != nil && cerr == nil {
		cerr = err
	}
	if cerr != nil {
		if errors.Is(cerr, io.ErrUnexpectedEOF) {
			return corrupt("download ended after %d of %d bytes", d.n, o.Size)
		}
		return fmt.Errorf("download %s: %w", where, cerr)
	}
	switch {
	case d.n != o.Size:
		return corrupt("%d bytes downloaded; the manifest says %d (truncated or replaced)", d.n, o.Size)
	case d.sum() != o.SHA256:
		return corrupt("SHA-256 %s; the manifest says %s (altered)", d.sum(), o.SHA256)
	}
	r.log().Info("restore object verified", "set", set, "object", where, "bytes", d.n)
	return nil
}

func (r *Restore) decodeFile(set, key, in, out string, o Object) error {
	corrupt := func(format string, a ...any) error {
		return &CorruptError{Set: set, Object: r.Store.Where(key), Reason: fmt.Sprintf(format, a...)}
	}
	src, err := os.Open(in)
	if err != nil {
		return err
	}
	defer src.Close()
	if o.Compression != "" && o.Compression != NoCompression {
		return corrupt("unknown compression %q (made by a newer ziti-bootstrap?)", o.Compression)
	}
	dr, err := decode(src, r.Key, o.Key, o.Compression != NoCompression)
	if err != nil {
		return corrupt("%v", err)
	}
	defer dr.Close()
	dst, err := os.OpenFile(out, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	d := newDigest()
	_, cerr := io.Copy(io.MultiWriter(dst, d), dr)
	if err := dst.Close(); err != nil && cerr == nil {
		return err
	}
	switch {
	case cerr != nil:
		return corrupt("does not decode: %v", cerr)
	case d.n != o.RawSize || d.sum() != o.RawSHA256:
		return corrupt("decodes to %d bytes with SHA-256 %s; the manifest says %d bytes, %s", d.n, d.sum(), o.RawSize, o.RawSHA256)
	}
	return nil
}

func (r *Restore) log() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}

// Plan lists what Apply will do, one line per target.
func (p *Prepared) Plan() []string {
	var out []string
	for _, t := range p.targets {
		o, _ := p.Manifest.Object(t.Source())
		out = append(out, fmt.Sprintf("%s: restore %s (%s, %s, %d bytes) into %s", t.Source(), o.Key, o.Format, orUnknown(o.ServerVersion), o.RawSize, t))
	}
	return out
}

func orUnknown(s string) string {
	if s == "" {
		return "version unknown"
	}
	return s
}

// Apply restores the targets one after the other, in order; it stops at the first failure, or once ctx has ended
// (a target it started is finished: its server is started again). It returns the sources restored.
func (p *Prepared) Apply(ctx context.Context) ([]string, error) {
	var done []string
	for i, t := range p.targets {
		// progress says what was and was not restored when the restore stops before its end
		progress := func() string {
			var msg string
			if len(done) > 0 {
				msg += fmt.Sprintf(" (already restored: %s)", strings.Join(done, ", "))
			}
			var left []string
			for _, u := range p.targets[i+1:] {
				left = append(left, u.Source())
			}
			if len(left) > 0 {
				msg += fmt.Sprintf(" (not attempted: %s)", strings.Join(left, ", "))
			}
			return msg
		}
		if ctx.Err() != nil { // interrupted, or the lock lost, after the previous target: touch no other
			return done, fmt.Errorf("restore of set %s stopped before %s: %w%s", p.Manifest.Set, t.Source(), context.Cause(ctx), progress())
		}
		p.log.Info("restore started", "set", p.Manifest.Set, "source", t.Source(), "target", t.String())
		if err := t.Restore(ctx, p.Files[t.Source()], p.Manifest.Set); err != nil {
			return done, fmt.Errorf("restore %s from set %s: %w%s", t.Source(), p.Manifest.Set, err, progress())
		}
		p.log.Info("restore done", "set", p.Manifest.Set, "source", t.Source())
		done = append(done, t.Source())
	}
	return done, nil
}

// Close removes the staged files.
func (p *Prepared) Close() error { return os.RemoveAll(p.Dir) }
