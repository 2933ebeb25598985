package backup

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// FormatVersion is the manifest format this code writes and reads.
//
// Format 2 (ziti-bootstrap after issue 14) binds a set's MAC and its objects' keys to the set ID and the prefix;
// format 1 sets are refused (restore them with the ziti-bootstrap that made them).
const FormatVersion = 2

// Names of the marker objects of a set.
const (
	ManifestName = "manifest.json" // written last: a set without it is incomplete
	StartedName  = "started.json"  // written first: makes a set being written visible to list and retention
)

// Manifest describes a complete snapshot set.
type Manifest struct {
	Format   int       `json:"format"`
	Set      string    `json:"set"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Host     string    `json:"host,omitempty"`
	Tool     string    `json:"tool,omitempty"` // ziti-bootstrap's version
	// Compression (unless an object says otherwise) and Encryption apply to every object.
	Compression string      `json:"compression"`
	Encryption  *Encryption `json:"encryption,omitempty"`
	Objects     []Object    `json:"objects"`
}

// Encryption says how the objects were encrypted, and with which key (by ID).
type Encryption struct {
	Scheme string `json:"scheme"`
	KeyID  string `json:"keyId"`
}

// Object is one stored snapshot.
type Object struct {
	Source        string `json:"source"`              // which server: ziti, spire, keycloak
	Key           string `json:"key"`                 // object key relative to the set, e.g. ziti.bbolt.zst
	Format        string `json:"format"`              // bbolt, sqlite3, pg_dump-custom
	ServerVersion string `json:"serverVersion"`       // the version the server reported, "" when unknown
	Size          int64  `json:"size"`                // bytes stored
	SHA256        string `json:"sha256"`              // of the bytes stored
	RawSize       int64  `json:"rawSize"`             // bytes of the snapshot itself (decrypted, decompressed)
	RawSHA256     string `json:"rawSha256,omitempty"` // "" for an encrypted object: decryption authenticates every chunk
	DurationMS    int64  `json:"durationMs"`
	// Compression is NoCompression for a snapshot stored as it is (it did not compress); "" means the
	// manifest's Compression.
	Compression string `json:"compression,omitempty"`
}

// Object returns the manifest's object of source.
func (m *Manifest) Object(source string) (Object, bool) {
	for _, o := range m.Objects {
		if o.Source == source {
			return o, true
		}
	}
	return Object{}, false
}

// Size is the sum of the stored objects' sizes.
func (m *Manifest) Size() int64 {
	var n int64
	for _, o := range m.Objects {
		n += o.Size
	}
	return n
}

// envelope is the manifest object: the manifest's exact bytes and, with a key, their MAC (Key.manifestMAC).
type envelope struct {
	Manifest json.RawMessage `json:"manifest"`
	MAC      string          `json:"mac,omitempty"`
}

// marshal encodes m, the manifest of the set under prefix; with a key the manifest is authenticated.
func (m *Manifest) marshal(prefix string, key *Key) ([]byte, error) {
	body, err := json.MarshalIndent(m, "  ", "  ")
	if err != nil {
		return nil, err
	}
	env := envelope{Manifest: body}
	if key != nil {
		env.MAC = key.manifestMAC(normPrefix(prefix), m.Set, body)
	}
	return json.MarshalIndent(env, "", "  ")
}

// InvalidError is a set this tool did not write (with the configured key), or whose manifest breaks the rules a
// set this tool wrote always keeps: it is never restored, never counted by retention, and `backup prune
// --invalid` deletes it.
type InvalidError struct {
	Set    string
	Reason string
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("set %s is refused, nothing was changed: %s", e.Set, e.Reason)
}

// UnauthenticatedError is a set without a MAC read without a key: anyone who can write to the bucket could have
// written it. Restoring it needs Restore.AllowUnauthenticated (restore --allow-unauthenticated).
type UnauthenticatedError struct{ Set string }

func (e *UnauthenticatedError) Error() string {
	return fmt.Sprintf("set %s is not authenticated (no BACKUP_ENCRYPTION_KEY is configured): anyone who can write to the bucket could have written it; configure the key it was made with, or pass --allow-unauthenticated to restore it anyway; nothing was changed", e.Set)
}

// parseManifest decodes and checks the manifest object of the set called set under prefix. With a key the set
// must be encrypted with it and its MAC must verify; without one, an encrypted set is a KeyError and an
// unencrypted one is returned unauthenticated (authenticated false). Any other failure is an InvalidError. The
// manifest's names are checked (checkNames) before it is returned: nothing in it is ever used as a path.
func parseManifest(b []byte, prefix, set string, key *Key) (m *Manifest, authenticated bool, err error) {
	invalid := func(format string, a ...any) (*Manifest, bool, error) {
		return nil, false, &InvalidError{Set: set, Reason: fmt.Sprintf(format, a...)}
	}
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil || len(env.Manifest) == 0 {
		return invalid("not a manifest: %v", orNoBody(err))
	}
	m = &Manifest{}
	if err := json.Unmarshal(env.Manifest, m); err != nil {
		return invalid("not a manifest: %v", err)
	}
	if m.Format != FormatVersion {
		return invalid("manifest format %d; this ziti-bootstrap reads format %d", m.Format, FormatVersion)
	}
	switch {
	case key != nil && (m.Encryption == nil || env.MAC == ""):
		return invalid("not authenticated (no encryption, no MAC) although a key is configured: not written by ziti-bootstrap with this key (a forged or downgraded set, or one made before the key was configured)")
	case key != nil && m.Encryption.KeyID != key.ID():
		return m, false, &KeyError{Set: set, Want: m.Encryption.KeyID, Have: key.ID()}
	case key != nil && !hmac.Equal([]byte(env.MAC), []byte(key.manifestMAC(normPrefix(prefix), set, env.Manifest))):
		return invalid("manifest MAC does not verify: the manifest was altered, or copied from another set or prefix")
	case key == nil && m.Encryption != nil:
		return m, false, &KeyError{Set: set, Want: m.Encryption.KeyID}
	}
	if err := m.check(set); err != nil {
		return invalid("%v", err)
	}
	return m, key != nil, nil
}

func orNoBody(err error) any {
	if err != nil {
		return err
	}
	return "no manifest body"
}

// MaxSnapshotSize is the hard ceiling on a snapshot's size (stored or decoded): a manifest declaring more is
// refused, and decoding never writes more, whatever the manifest says.
const MaxSnapshotSize int64 = 256 << 30

// Formats are the snapshot formats, by source: a manifest's object must be one of these.
var Formats = map[string]string{"ziti": "bbolt", "spire": "sqlite3", "keycloak": "pg_dump-custom"}

// check checks a manifest against the rules every set this tool writes keeps: it names set, its start time is
// the set ID's, each object is of a known source (once) in that source's format, with the key this tool gives
// such an object (objectName: one plain name, so it lies under the set's prefix) and sizes within MaxSnapshotSize.
func (m *Manifest) check(set string) error {
	if m.Set != set {
		return fmt.Errorf("the manifest names set %q", m.Set)
	}
	if t, _ := setTime(set); !m.Started.UTC().Truncate(time.Second).Equal(t) {
		return fmt.Errorf("the manifest says the set started at %s, its ID at %s", m.Started.UTC().Format(time.RFC3339), t.Format(time.RFC3339))
	}
	if m.Compression != Compression {
		return fmt.Errorf("unknown compression %q (made by a newer ziti-bootstrap?)", m.Compression)
	}
	if len(m.Objects) == 0 {
		return errors.New("the manifest names no object")
	}
	sources := map[string]bool{}
	for i, o := range m.Objects {
		format, known := Formats[o.Source]
		switch {
		case !known:
			return fmt.Errorf("object %d: unknown source %q (known: ziti, spire, keycloak)", i, o.Source)
		case sources[o.Source]:
			return fmt.Errorf("object %d: a second %s object", i, o.Source)
		case o.Format != format:
			return fmt.Errorf("object %d (%s): format %q, not %s", i, o.Source, o.Format, format)
		case o.Compression != "" && o.Compression != NoCompression:
			return fmt.Errorf("object %d (%s): unknown compression %q (made by a newer ziti-bootstrap?)", i, o.Source, o.Compression)
		case o.Key != objectName(o.Source, o.Format, o.Compression != NoCompression, m.Encryption != nil):
			return fmt.Errorf("object %d (%s): key %q is not the one this tool gives it (%s)", i, o.Source, o.Key,
				objectName(o.Source, o.Format, o.Compression != NoCompression, m.Encryption != nil))
		case o.Size < 0 || o.Size > MaxSnapshotSize || o.RawSize < 0 || o.RawSize > MaxSnapshotSize:
			return fmt.Errorf("object %d (%s): sizes %d stored, %d raw: beyond 0..%d", i, o.Source, o.Size, o.RawSize, MaxSnapshotSize)
		case !isSHA256(o.SHA256) || (m.Encryption == nil && !isSHA256(o.RawSHA256)) || (m.Encryption != nil && o.RawSHA256 != ""):
			return fmt.Errorf("object %d (%s): a digest is not a SHA-256 (or, encrypted, has a snapshot digest)", i, o.Source)
		}
		sources[o.Source] = true
	}
	return nil
}

var sha256Pattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

func isSHA256(s string) bool { return sha256Pattern.MatchString(s) }

// KeyError is a set that cannot be read with the key given (or without one).
type KeyError struct {
	Set        string
	Want, Have string // key IDs; Have is "" when no key was given
}

func (e *KeyError) Error() string {
	if e.Have == "" {
		return fmt.Sprintf("set %s is encrypted with key %s: set BACKUP_ENCRYPTION_KEY to that key", e.Set, e.Want)
	}
	return fmt.Sprintf("set %s is encrypted with key %s, not with the configured key %s: set BACKUP_ENCRYPTION_KEY to the key it was made with", e.Set, e.Want, e.Have)
}

// setIDLayout is the time part of a set ID: sets sort by ID in the order they were started.
const setIDLayout = "20060102T150405Z"

var setIDPattern = regexp.MustCompile(`^\d{8}T\d{6}Z-[0-9a-f]{4}$`)

// newSetID names a set started at t.
func newSetID(t time.Time) string {
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	return t.UTC().Format(setIDLayout) + "-" + hex.EncodeToString(b)
}

// IsSetID reports whether s has the form of a set ID.
func IsSetID(s string) bool { return setIDPattern.MatchString(s) }

// setTime is when the set called id was started.
func setTime(id string) (time.Time, bool) {
	if !IsSetID(id) {
		return time.Time{}, false
	}
	t, err := time.Parse(setIDLayout, id[:len(setIDLayout)])
	return t, err == nil
}

// normPrefix makes "", "x" and "/x/" into "" , "x/" and "x/".
func normPrefix(p string) string {
	p = strings.Trim(p, "/")
	if p == "" {
		return ""
	}
	return p + "/"
}

// started is the body of the started marker.
type started struct {
	Set     string    `json:"set"`
	Started time.Time `json:"started"`
	Host    string    `json:"host,omitempty"`
	PID     int       `json:"pid,omitempty"`
	Tool    string    `json:"tool,omitempty"`
}

func jsonReader(v any) (*bytes.Reader, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return bytes.NewReader(b), nil
}
