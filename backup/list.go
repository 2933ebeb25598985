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
	Complete   SetState = "complete"    // a valid manifest (authenticated with the key, when one is configured), and every object it names is stored with its size
	InProgress SetState = "in progress" // no manifest yet, and active within the grace period
	Incomplete SetState = "incomplete"  // no manifest, and idle for longer than the grace period: a failed run
	Damaged    SetState = "damaged"     // a valid manifest, but an object is missing or has another size, or the manifest could not be read
	OtherKey   SetState = "other key"   // encrypted with a key that is not the one configured (or with none configured): not verifiable here
	Invalid    SetState = "invalid"     // not a set this tool wrote with this key: manifest unauthenticated, altered, copied, malformed or future-dated
)

// Valid reports whether a set in state s may be restored and counts for retention: only a complete one.
func (s SetState) Valid() bool { return s == Complete }

// SetInfo is one set as listed.
type SetInfo struct {
	ID           string
	Started      time.Time // from the set ID
	State        SetState
	Manifest     *Manifest // nil unless the manifest could be read
	Objects      []ObjectInfo
	Size         int64     // bytes of all its stored objects
	LastModified time.Time // of its newest object
	Problem      string    // why it is not complete, or a note
	// Authenticated says the manifest's MAC verified with the configured key; without a key no set is.
	Authenticated bool
}

// Lister lists the sets under a prefix.
type Lister struct {
	Store  Store
	Prefix string
	Key    *Key // verifies the manifests; with it, a set without a valid MAC is Invalid
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
			s = &SetInfo{ID: id, Started: t}
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
		if s.LastModified.IsZero() { // a store that dates nothing: the ID's time
			s.LastModified = s.Started
		}
		l.classify(ctx, s, prefix, grace, now)
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, ctx.Err()
}

func (l *Lister) classify(ctx context.Context, s *SetInfo, prefix string, grace time.Duration, now time.Time) {
	dir := prefix + s.ID + "/"
	stored := map[string]ObjectInfo{}
	for _, o := range s.Objects {
		stored[strings.TrimPrefix(o.Key, dir)] = o
	}
	manifest, ok := stored[ManifestName]
	if !ok {
		// LastModified is the store's clock: a set dated in the future is not kept "in progress" by its ID.
		if now.Sub(s.LastModified) < grace {
			s.State = InProgress
		} else {
			s.State = Incomplete
		}
		return
	}
	// A set's ID comes from the clock of the host that wrote it, which Backup checks against the store's (at most
	// MaxClockSkew apart); the manifest's modification time is the store's.
	if limit := manifest.Modified.Add(MaxClockSkew); s.Started.After(limit) || s.Started.After(now.Add(MaxClockSkew)) {
		s.State, s.Problem = Invalid, fmt.Sprintf("dated in the future: its ID says %s, its manifest was stored at %s", s.Started.Format(time.RFC3339), manifest.Modified.UTC().Format(time.RFC3339))
		return
	}
	b, err := readAll(ctx, l.Store, dir+ManifestName, maxManifest)
	if err != nil {
		s.State, s.Problem = Damaged, "manifest unreadable: "+err.Error()
		return
	}
	m, authenticated, err := parseManifest(b, prefix, s.ID, l.Key)
	var ke *KeyError
	var ie *InvalidError
	switch {
	case errors.As(err, &ke):
		s.State, s.Problem, s.Manifest = OtherKey, ke.Error(), m
		return
	case errors.As(err, &ie):
		s.State, s.Problem = Invalid, ie.Reason
		return
	case err != nil:
		s.State, s.Problem = Damaged, "manifest: "+err.Error()
		return
	}
	s.Manifest, s.Authenticated = m, authenticated
	for _, o := range m.Objects {
		got, ok := stored[o.Key]
		switch {
		case !ok:
			s.State, s.Problem = Damaged, fmt.Sprintf("object %s is missing", l.Store.Where(dir+o.Key))
			return
		case got.Size != o.Size:
			s.State, s.Problem = Damaged, fmt.Sprintf("object %s is %d bytes; the manifest says %d", l.Store.Where(dir+o.Key), got.Size, o.Size)
			return
		}
	}
	s.State = Complete
	if !authenticated {
		s.Problem = "unauthenticated (no key configured)"
	}
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
