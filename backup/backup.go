package backup

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/progress"
)

// Backup takes snapshot sets: one run, one set under Prefix/<set ID>/, holding one object per source and, written
// last, the manifest.
type Backup struct {
	Store   Store
	Prefix  string   // key prefix of every set (BACKUP_PREFIX); "" puts sets at the bucket's top
	Sources []Source // snapshotted one after the other, in this order
	Key     *Key     // nil: objects are stored unencrypted
	TempDir string   // scratch space for copies that must go through a file (SQLite); "" is os.TempDir()
	Tool    string   // ziti-bootstrap's version, for the manifest
	Log     *slog.Logger
	Now     func() time.Time
	// Level is the zstd level (default zstd.SpeedFastest: database snapshots compress about as well as with
	// SpeedDefault, at several times the speed, so compression never holds back the upload).
	Level zstd.EncoderLevel
}

// SetError is a run that did not produce a complete set. The set has no manifest, so nothing counts it as
// complete; its objects were removed (or, if that failed too, are removed by retention after the grace period).
type SetError struct {
	Set    string
	Source string // the source that failed; "" when the failure was not a source's
	Err    error
}

func (e *SetError) Error() string {
	if e.Source == "" {
		return fmt.Sprintf("backup set %s incomplete: %v", e.Set, e.Err)
	}
	return fmt.Sprintf("backup set %s incomplete: %s: %v", e.Set, e.Source, e.Err)
}

func (e *SetError) Unwrap() error { return e.Err }

// MaxClockSkew is how far this host's clock and the S3 server's may differ: a run whose started marker the server
// dates further from this clock is refused, and a listed set whose ID is dated more than this after its manifest
// was stored (or after now) is invalid (future-dated).
const MaxClockSkew = 10 * time.Minute

// Run takes one set and returns its manifest.
func (b *Backup) Run(ctx context.Context) (*Manifest, error) {
	now := time.Now
	if b.Now != nil {
		now = b.Now
	}
	log := b.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(b.Sources) == 0 {
		return nil, errors.New("backup: no sources configured")
	}
	seen := map[string]bool{}
	for _, s := range b.Sources {
		if seen[s.Name()] {
			return nil, fmt.Errorf("backup: two sources named %q", s.Name())
		}
		seen[s.Name()] = true
	}
	tmp := b.TempDir
	if tmp == "" {
		tmp = os.TempDir()
	}
	level := b.Level
	if level == 0 {
		level = zstd.SpeedFastest
	}
	host, _ := os.Hostname()
	m := &Manifest{Format: FormatVersion, Started: now().UTC(), Host: host, Tool: b.Tool, Compression: Compression}
	m.Set = newSetID(m.Started)
	if b.Key != nil {
		m.Encryption = &Encryption{Scheme: EncryptionScheme, KeyID: b.Key.ID()}
	}
	dir := normPrefix(b.Prefix) + m.Set + "/"
	log.Info("backup started", "set", m.Set, "where", b.Store.Where(dir))
	progress.Report(ctx, progress.Event{Stage: progress.Set, Detail: m.Set})
	for _, s := range b.Sources {
		progress.Report(ctx, progress.Event{Source: s.Name(), Stage: progress.Queued})
	}

	fail := func(source string, err error) (*Manifest, error) {
		// Best effort: the set has no manifest and never counts; removing its objects only saves space.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if objs, lerr := b.Store.List(cctx, dir); lerr == nil {
			for _, o := range objs {
				_ = b.Store.Remove(cctx, o.Key)
			}
		}
		log.Error("backup failed", "set", m.Set, "source", source, "error", err)
		progress.Report(ctx, progress.Event{Source: source, Stage: progress.Done, Err: err})
		return nil, &SetError{Set: m.Set, Source: source, Err: err}
	}

	marker, err := jsonReader(started{Set: m.Set, Started: m.Started, Host: host, PID: os.Getpid(), Tool: b.Tool})
	if err != nil {
		return nil, err
	}
	info, err := b.Store.Put(ctx, dir+StartedName, marker)
	if err != nil {
		return fail("", fmt.Errorf("write the started marker: %w", err))
	}
	// Set IDs come from this clock; listing judges them by the store's (see MaxClockSkew).
	if skew := m.Started.Sub(info.Modified); !info.Modified.IsZero() && (skew > MaxClockSkew || skew < -MaxClockSkew) {
		return fail("", fmt.Errorf("this host's clock (%s) is %s off the S3 server's (%s), more than %s: set IDs would misorder sets; fix the clock (NTP)",
			m.Started.Format(time.RFC3339), skew.Round(time.Second), info.Modified.UTC().Format(time.RFC3339), MaxClockSkew))
	}
	for _, src := range b.Sources {
		o, err := b.one(progress.Source(ctx, src.Name()), src, m.Set, dir, tmp, level, now)
		if err != nil {
			return fail(src.Name(), err)
		}
		progress.Report(ctx, progress.Event{Source: src.Name(), Stage: progress.Done, Bytes: o.Size, Detail: o.ServerVersion})
		log.Info("backup object stored", "set", m.Set, "source", o.Source, "key", o.Key, "bytes", o.Size, "rawBytes", o.RawSize,
			"serverVersion", o.ServerVersion, "durationMs", o.DurationMS)
		m.Objects = append(m.Objects, o)
	}
	m.Finished = now().UTC()
	progress.Report(ctx, progress.Event{Stage: progress.Manifest})
	body, err := m.marshal(b.Prefix, b.Key)
	if err != nil {
		return fail("", err)
	}
	// The manifest goes last: from here on the set is complete.
	if _, err := b.Store.Put(ctx, dir+ManifestName, bytes.NewReader(body)); err != nil {
		return fail("", fmt.Errorf("write the manifest: %w", err))
	}
	progress.Report(ctx, progress.Event{Stage: progress.Done, Bytes: m.Size(), Detail: m.Set})
	log.Info("backup complete", "set", m.Set, "objects", len(m.Objects), "bytes", m.Size(),
		"duration", m.Finished.Sub(m.Started).Round(time.Millisecond).String())
	return m, nil
}

// one snapshots src and stores it as one object of the set (in dir).
func (b *Backup) one(ctx context.Context, src Source, set, dir, tmp string, level zstd.EncoderLevel, now func() time.Time) (Object, error) {
	start := now()
	progress.Report(ctx, progress.Event{Stage: progress.Snapshot})
	snap, err := src.Snapshot(ctx, tmp)
	if err != nil {
		return Object{}, fmt.Errorf("snapshot: %w", err)
	}
	br := bufio.NewReaderSize(snap.R, sampleSize)
	snap.R = br
	compression := ""
	if !compressible(br) {
		compression, level = NoCompression, 0
	}
	name := objectName(src.Name(), snap.Format, compression == "", b.Key != nil)
	enc := encode(snap, b.Key, objectID(set, name), level)
	progress.Report(ctx, progress.Event{Stage: progress.Upload})
	info, putErr := b.Store.Put(ctx, dir+name, progress.Reader(ctx, enc.Reader(), progress.Event{Stage: progress.Upload}))
	res, err := enc.Finish(putErr)
	if err != nil {
		return Object{}, err
	}
	progress.Report(ctx, progress.Event{Stage: progress.Verify, Bytes: info.Size})
	if info.Size != res.Size { // a checked write: what the store holds is what we produced
		return Object{}, fmt.Errorf("%s holds %d bytes, %d were written", b.Store.Where(dir+name), info.Size, res.Size)
	}
	return Object{Source: src.Name(), Key: name, Format: snap.Format, ServerVersion: snap.Version, Compression: compression,
		Size: res.Size, SHA256: res.SHA256, RawSize: res.RawSize, RawSHA256: res.RawSHA256,
		DurationMS: now().Sub(start).Milliseconds()}, nil
}

// objectName is the key of a source's object within its set, e.g. spire.sqlite3.zst.enc.
func objectName(source, format string, compressed, encrypted bool) string {
	ext := map[string]string{"bbolt": ".bbolt", "sqlite3": ".sqlite3", "pg_dump-custom": ".pgdump"}[format]
	if ext == "" {
		ext = ".bin"
	}
	n := source + ext
	if compressed {
		n += ".zst"
	}
	if encrypted {
		n += ".enc"
	}
	return n
}

// readAll reads a small object (a manifest), refusing more than max bytes.
func readAll(ctx context.Context, s Store, key string, max int64) ([]byte, error) {
	rc, _, err := s.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", s.Where(key), err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", s.Where(key), max)
	}
	return b, nil
}
