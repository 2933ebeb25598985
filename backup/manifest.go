package backup

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// FormatVersion is the manifest format this code writes and reads.
const FormatVersion = 1

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
	Source        string `json:"source"`        // which server: ziti, spire, keycloak
	Key           string `json:"key"`           // object key relative to the set, e.g. ziti.bbolt.zst
	Format        string `json:"format"`        // bbolt, sqlite3, pg_dump-custom
	ServerVersion string `json:"serverVersion"` // the version the server reported, "" when unknown
	Size          int64  `json:"size"`          // bytes stored
	SHA256        string `json:"sha256"`        // of the bytes stored
	RawSize       int64  `json:"rawSize"`       // bytes of the snapshot itself (decrypted, decompressed)
	RawSHA256     string `json:"rawSha256"`
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

// envelope is the manifest object: the manifest's exact bytes and, for an encrypted set, their MAC.
type envelope struct {
	Manifest json.RawMessage `json:"manifest"`
	MAC      string          `json:"mac,omitempty"`
}

// marshal encodes m; with a key the manifest is authenticated.
func (m *Manifest) marshal(key *Key) ([]byte, error) {
	body, err := json.MarshalIndent(m, "  ", "  ")
	if err != nil {
		return nil, err
	}
	env := envelope{Manifest: body}
	if key != nil {
		env.MAC = key.MAC(body)
	}
	return json.MarshalIndent(env, "", "  ")
}

// parseManifest decodes and checks a manifest object. An encrypted set needs key, and its MAC must verify.
func parseManifest(b []byte, key *Key) (*Manifest, error) {
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil || len(env.Manifest) == 0 {
		return nil, fmt.Errorf("not a manifest: %v", orNoBody(err))
	}
	var m Manifest
	if err := json.Unmarshal(env.Manifest, &m); err != nil {
		return nil, fmt.Errorf("not a manifest: %w", err)
	}
	if m.Format != FormatVersion {
		return nil, fmt.Errorf("manifest format %d; this ziti-bootstrap reads format %d", m.Format, FormatVersion)
	}
	if m.Encryption != nil {
		switch {
		case key == nil:
			return &m, &KeyError{Set: m.Set, Want: m.Encryption.KeyID}
		case key.ID() != m.Encryption.KeyID:
			return &m, &KeyError{Set: m.Set, Want: m.Encryption.KeyID, Have: key.ID()}
		case env.MAC == "" || env.MAC != key.MAC(env.Manifest):
			return &m, fmt.Errorf("manifest MAC does not verify: the manifest was altered")
		}
	}
	return &m, nil
}

func orNoBody(err error) any {
	if err != nil {
		return err
	}
	return "no manifest body"
}

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
