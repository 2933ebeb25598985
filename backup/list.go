package backup

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// SetState is what a listing can tell about a set.
type SetState string

// The states of a set.
const (
	Complete   SetState = "complete"    // a manifest, and every object it names is stored with its size
	InProgress SetState = "in progress" // no manifest yet, and active within the grace period
	Incomplete SetState = "incomplete"  // no manifest, and idle for longer than the grace period: a failed run
	Damaged    SetState = "damaged"     // a manifest, but an object is missing or has another size, or the manifest is unreadable
)

// SetInfo is one set as listed.
type SetInfo struct {
	ID           string
	Started      time.Time // from the set ID
	State        SetState
	Manifest     *Manifest // nil unless the manifest could be read
	Objects      []ObjectInfo
	Size         int64     // bytes of all its stored objects
	LastModified time.Time // of its newest object
	Problem      string    // why it is damaged, or a note (e.g. a manifest whose MAC could not be checked)
}

// Lister lists the sets under a prefix.
type Lister struct {
	Store  Store
	Prefix string
	Key    *Key // verifies the manifests of encrypted sets; without it they are listed unverified
	// Grace is how long a set without a manifest counts as still being written (default DefaultGrace).
	Grace time.Duration
}

// DefaultGrace is how long a set without a manifest is presumed to be still being written.
const DefaultGrace = 6 * time.Hour

// maxManifest bounds a manifest's size.
const maxManifest = 1 << 20

// List returns the sets, oldest first. Keys under the prefix that are not in a set-ID folder are ignored: they
// are not ours.
func (l *Lister) List(ctx context.Context, now time.Time) ([]SetInfo, error) {
	prefix := normPrefix(l.Prefix)
	objs, err := l.Store.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("list sets: %w", err)
	}
	grace := l.Grace
	if grace <= 0 {
		grace = DefaultGrace
	}
	byID := map[string]*SetInfo{}
	for _, o := range objs {
		rest := strings.TrimPrefix(o.Key, prefix)
		id, _, ok := strings.Cut(rest, "/")
		t, valid := setTime(id)
		if !ok || !valid {
			continue
		}
		s := byID[id]
		if s == nil {
			s = &SetInfo{ID: id, Started: t, LastModified: t}
			byID[id] = s
		}
		s.Objects = append(s.Objects, o)
		s.Size += o.Size
		if o.Modified.After(s.LastModified) {
			s.LastModified = o.Modified
		}
	}
	out := make([]SetInfo, 0, len(byID))
	for _, s := range byID {
		l.classify(ctx, s, prefix, grace, now)
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, ctx.Err()
}

func (l *Lister) classify(ctx context.Context, s *SetInfo, prefix string, grace time.Duration, now time.Time) {
	dir := prefix + s.ID + "/"
	sizes := map[string]int64{}
	for _, o := range s.Objects {
		sizes[strings.TrimPrefix(o.Key, dir)] = o.Size
	}
	if _, ok := sizes[ManifestName]; !ok {
		if now.Sub(s.LastModified) < grace {
			s.State = InProgress
		} else {
			s.State = Incomplete
		}
		return
	}
	b, err := readAll(ctx, l.Store, dir+ManifestName, maxManifest)
	if err != nil {
		s.State, s.Problem = Damaged, "manifest unreadable: "+err.Error()
		return
	}
	m, err := parseManifest(b, l.Key)
	var ke *KeyError
	switch {
	case errors.As(err, &ke):
		s.Problem = "manifest not verified: " + err.Error()
	case err != nil:
		s.State, s.Problem = Damaged, "manifest: "+err.Error()
		return
	}
	s.Manifest = m
	if m.Set != s.ID {
		s.State, s.Problem = Damaged, fmt.Sprintf("manifest names set %s", m.Set)
		return
	}
	for _, o := range m.Objects {
		size, ok := sizes[o.Key]
		switch {
		case !ok:
			s.State, s.Problem = Damaged, fmt.Sprintf("object %s is missing", l.Store.Where(dir+o.Key))
			return
		case size != o.Size:
			s.State, s.Problem = Damaged, fmt.Sprintf("object %s is %d bytes; the manifest says %d", l.Store.Where(dir+o.Key), size, o.Size)
			return
		}
	}
	s.State = Complete
}

// NewestComplete returns the newest complete set, if any.
func NewestComplete(sets []SetInfo) (SetInfo, bool) {
	for i := len(sets) - 1; i >= 0; i-- {
		if sets[i].State == Complete {
			return sets[i], true
		}
	}
	return SetInfo{}, false
}
