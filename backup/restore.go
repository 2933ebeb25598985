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
	"syscall"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/progress"
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

// IsCorrupt reports whether err refuses a set as corrupt, truncated, incomplete or invalid.
func IsCorrupt(err error) bool {
	var c *CorruptError
	var i *IncompleteError
	var v *InvalidError
	return errors.As(err, &c) || errors.As(err, &i) || errors.As(err, &v)
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
	// AllowUnauthenticated lets Prepare restore a set that is not authenticated (no Key: nothing is). Without it
	// such a set is refused with an UnauthenticatedError.
	AllowUnauthenticated bool
}

// Latest is the set name that means the newest valid set: complete (every object present), and authenticated
// when a key is configured. Newer sets that are not (in progress, damaged, invalid, of another key) are passed
// over, each logged with the reason.
const Latest = "latest"

// Resolve returns the manifest of set (an ID, or Latest), checked: a set without a manifest is refused, and so
// is one encrypted with another key, or whose manifest is not valid (parseManifest). A set read without a key is
// returned: Prepare, not Resolve, asks for AllowUnauthenticated.
func (r *Restore) Resolve(ctx context.Context, set string) (*Manifest, error) {
	m, _, err := r.resolve(ctx, set)
	return m, err
}

func (r *Restore) resolve(ctx context.Context, set string) (*Manifest, bool, error) {
	prefix := normPrefix(r.Prefix)
	if set == Latest {
		sets, err := (&Lister{Store: r.Store, Prefix: prefix, Key: r.Key}).List(ctx, time.Now())
		if err != nil {
			return nil, false, err
		}
		found := false
		var otherKey *KeyError // the newest set of another key, to name the key when no set is valid
		for i := len(sets) - 1; i >= 0 && !found; i-- {
			s := sets[i]
			switch {
			case s.State.Valid():
				set, found = s.ID, true
			case s.State == OtherKey && otherKey == nil && s.Manifest != nil && s.Manifest.Encryption != nil:
				otherKey = &KeyError{Set: s.ID, Want: s.Manifest.Encryption.KeyID}
				if r.Key != nil {
					otherKey.Have = r.Key.ID()
				}
				fallthrough
			case s.State != Incomplete:
				r.log().Warn("latest: newer set passed over", "set", s.ID, "state", string(s.State), "problem", s.Problem)
			}
		}
		if !found && otherKey != nil {
			return nil, false, otherKey
		}
		if !found {
			return nil, false, fmt.Errorf("no valid set under %s (`backup list` shows the sets and why each is not)", r.Store.Where(prefix))
		}
	}
	if !IsSetID(set) {
		return nil, false, fmt.Errorf("%q is not a set ID (like 20261126T033700Z-1a2b) or %q", set, Latest)
	}
	key := prefix + set + "/" + ManifestName
	b, err := readAll(ctx, r.Store, key, maxManifest)
	if err != nil {
		if IsNotExist(err) {
			objs, lerr := r.Store.List(ctx, prefix+set+"/")
			if lerr == nil && len(objs) == 0 {
				return nil, false, fmt.Errorf("no set %s under %s", set, r.Store.Where(prefix))
			}
			return nil, false, &IncompleteError{Set: set, Where: r.Store.Where(key)}
		}
		return nil, false, err
	}
	m, authenticated, err := parseManifest(b, prefix, set, r.Key)
	var ie *InvalidError
	if errors.As(err, &ie) {
		return nil, false, &InvalidError{Set: set, Reason: r.Store.Where(key) + ": " + ie.Reason}
	}
	return m, authenticated, err
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
func (r *Restore) Prepare(ctx context.Context, set string, only []string) (p *Prepared, err error) {
	progress.Report(ctx, progress.Event{Stage: progress.Resolve, Detail: set})
	defer func() {
		if err != nil {
			progress.Report(ctx, progress.Event{Stage: progress.Done, Err: err})
		}
	}()
	m, authenticated, err := r.resolve(ctx, set)
	if err != nil {
		return nil, err
	}
	progress.Report(ctx, progress.Event{Stage: progress.Set, Detail: m.Set})
	if !authenticated && !r.AllowUnauthenticated {
		return nil, &UnauthenticatedError{Set: m.Set}
	}
	if !authenticated {
		r.log().Warn("restoring an unauthenticated set: anyone who can write to the bucket could have written it", "set", m.Set)
	}
	targets, objs, err := r.pick(m, only)
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		progress.Report(ctx, progress.Event{Source: o.Source, Stage: progress.Queued})
	}
	p, err = r.stage(ctx, m, objs)
	if err != nil {
		return nil, err
	}
	p.targets = targets
	for _, t := range targets {
		progress.Report(ctx, progress.Event{Source: t.Source(), Stage: progress.Check})
		if err := t.Check(ctx, p.Files[t.Source()]); err != nil {
			p.Close()
			o, _ := m.Object(t.Source())
			return nil, &CorruptError{Set: m.Set, Object: r.Store.Where(normPrefix(r.Prefix) + m.Set + "/" + o.Key),
				Reason: fmt.Sprintf("not restorable into %s: %v", t, err)}
		}
	}
	for _, t := range targets {
		progress.Report(ctx, progress.Event{Source: t.Source(), Stage: progress.Queued, Detail: "verified"})
	}
	return p, nil
}

// Verify downloads and checks a set as Prepare does, without targets, keeping nothing. authenticated is false for
// a set checked without a key: its objects match its manifest, but nothing proves this tool wrote it.
func (r *Restore) Verify(ctx context.Context, set string) (m *Manifest, authenticated bool, err error) {
	m, authenticated, err = r.resolve(ctx, set)
	if err != nil {
		return nil, false, err
	}
	p, err := r.stage(ctx, m, m.Objects)
	if err != nil {
		return nil, false, err
	}
	return m, authenticated, p.Close()
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
	if err := checkSpace(dir, objs); err != nil {
		p.Close()
		return nil, err
	}
	setDir := normPrefix(r.Prefix) + m.Set + "/"
	// Local names are made here, from the object's index: nothing from the bucket becomes a path (the manifest's
	// keys, checked by parseManifest, only name objects under setDir). All downloads are checked before any
	// object is decoded or used; any refusal removes the whole staging directory.
	stored := make([]string, len(objs))
	for i, o := range objs {
		stored[i] = filepath.Join(dir, fmt.Sprintf("object-%d.stored", i))
		if err := r.download(progress.Source(ctx, o.Source), m.Set, setDir+o.Key, stored[i], o); err != nil {
			p.Close()
			return nil, err
		}
	}
	for i, o := range objs {
		raw := filepath.Join(dir, fmt.Sprintf("object-%d.raw", i))
		progress.Report(ctx, progress.Event{Source: o.Source, Stage: progress.Verify, Total: o.RawSize})
		if err := r.decodeFile(m.Set, setDir+o.Key, stored[i], raw, o); err != nil {
			p.Close()
			return nil, err
		}
		_ = os.Remove(stored[i])
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
	progress.Report(ctx, progress.Event{Stage: progress.Download, Total: o.Size})
	body := progress.Reader(ctx, rc, progress.Event{Stage: progress.Download, Total: o.Size})
	_, cerr := io.Copy(io.MultiWriter(f, d), io.LimitReader(body, o.Size+1)) // never more than declared (+1: to see it)
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
	dr, err := decode(src, r.Key, objectID(set, o.Key), o.Compression != NoCompression)
	if err != nil {
		return corrupt("%v", err)
	}
	defer dr.Close()
	dst, err := os.OpenFile(out, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	d := newDigest()
	if o.RawSHA256 == "" { // encrypted: decryption authenticated every chunk
		d = newCounter()
	}
	// Decoding stops one byte past the declared size (check bounds it by MaxSnapshotSize): a small object that
	// expands without end (a zstd bomb) writes at most RawSize+1 bytes before it is refused.
	_, cerr := io.Copy(io.MultiWriter(dst, d), io.LimitReader(dr, o.RawSize+1))
	if err := dst.Close(); err != nil && cerr == nil {
		return err
	}
	switch {
	case cerr != nil:
		return corrupt("does not decode: %v", cerr)
	case d.n > o.RawSize:
		return corrupt("decodes to more than the %d bytes the manifest says (stopped there)", o.RawSize)
	case d.n != o.RawSize || (o.RawSHA256 != "" && d.sum() != o.RawSHA256):
		return corrupt("decodes to %d bytes with SHA-256 %s; the manifest says %d bytes, %s", d.n, d.sum(), o.RawSize, o.RawSHA256)
	}
	return nil
}

// checkSpace refuses to stage objs in dir when its file system lacks the room for them (stored and decoded).
func checkSpace(dir string, objs []Object) error {
	var need int64
	for _, o := range objs {
		need += o.Size + o.RawSize
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return nil // unknown: decoding is bounded anyway
	}
	if free := int64(st.Bavail) * int64(st.Bsize); need > free {
		return fmt.Errorf("staging the set needs %d bytes in %s, which has %d free: free space or point BACKUP_TMPDIR elsewhere; nothing was changed", need, dir, free)
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
func (p *Prepared) Apply(ctx context.Context) (done []string, err error) {
	// Before anything is stopped, every service that keeps a journal (SwarmService) records its replica count
	// and the set; one not reached is forgotten at the end.
	var recorded []*SwarmService
	defer func() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		for _, s := range recorded {
			if ferr := s.Forget(fctx); ferr != nil {
				err = errors.Join(err, ferr)
			}
		}
	}()
	for _, t := range p.targets {
		if s, ok := targetService(t).(*SwarmService); ok {
			if err := s.Record(ctx, p.Manifest.Set); err != nil {
				return nil, fmt.Errorf("record the replica count of %s before the restore (nothing was stopped): %w", s, err)
			}
			recorded = append(recorded, s)
		}
	}
	crashPoint("before-stop")
	progress.Report(ctx, progress.Event{Stage: progress.Restore})
	defer func() { progress.Report(ctx, progress.Event{Stage: progress.Done, Err: err}) }()
	for i, t := range p.targets {
		// left says what was and was not restored when the restore stops before its end
		left := func() string {
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
			return done, fmt.Errorf("restore of set %s stopped before %s: %w%s", p.Manifest.Set, t.Source(), context.Cause(ctx), left())
		}
		p.log.Info("restore started", "set", p.Manifest.Set, "source", t.Source(), "target", t.String())
		if err := t.Restore(progress.Source(ctx, t.Source()), p.Files[t.Source()], p.Manifest.Set); err != nil {
			err = fmt.Errorf("restore %s from set %s: %w%s", t.Source(), p.Manifest.Set, err, left())
			progress.Report(ctx, progress.Event{Source: t.Source(), Stage: progress.Done, Err: err})
			return done, err
		}
		p.log.Info("restore done", "set", p.Manifest.Set, "source", t.Source())
		progress.Report(ctx, progress.Event{Source: t.Source(), Stage: progress.Done})
		done = append(done, t.Source())
	}
	return done, nil
}

// Close removes the staged files.
func (p *Prepared) Close() error { return os.RemoveAll(p.Dir) }
