package deploy

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/safefile"
)

// DigestsFile is the file of the dev state directory where DevDigests keeps the digits of secrets' names.
const DigestsFile = "secret-name-digests.json"

// DevDigests remembers, in the dev state directory, the slow digits that name the Swarm secrets whose data is one
// of that directory's own files (stacks.SecretDigests): an `up --dev` process then computes none of those Argon2
// hashes again (~20 ms of CPU each, most of what a no-op `up --dev` process spends before its first Engine call).
// The names stay those of every other run (deployed secrets keep theirs). Issue 15's point stands: an entry is
// found by HMAC-SHA256 under a random key kept in the same file, never by a plain hash, and only data that the
// directory (0700, files 0600) already holds in plain text is entered, so reading the file tells nothing that
// reading the directory does not; secrets given otherwise (a *_FILE elsewhere, the environment) are hashed
// every run, as before.
type DevDigests struct {
	path    string
	allowed map[string]bool // the state's file contents
	mu      sync.Mutex
	file    digestsFile
	changed bool
}

type digestsFile struct {
	Key    string            `json:"key"`    // hex, 32 random bytes
	Digits map[string]string `json:"digits"` // hex HMAC of salt and data → digits
}

// OpenDevDigests reads the digests file of the state directory dir, whose files (the paths among defaults, the
// dev defaults) are the data it may remember. A missing or unreadable file starts empty: the digits are computed
// again.
func OpenDevDigests(dir string, defaults map[string]string) (*DevDigests, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	d := &DevDigests{path: filepath.Join(dir, DigestsFile), allowed: map[string]bool{}}
	for name, p := range defaults {
		if !strings.HasSuffix(name, "_FILE") || filepath.Dir(p) != dir {
			continue
		}
		b, err := safefile.ReadValue(p)
		if err != nil {
			return nil, fmt.Errorf("dev state: %w", err)
		}
		d.allowed[string(b)] = true
		d.allowed[strings.TrimRight(string(b), "\r\n")] = true // as the configuration reads a *_FILE
	}
	if b, err := safefile.Read(d.path, safefile.MaxDocument); err == nil {
		if json.Unmarshal(b, &d.file) != nil || len(d.file.Key) != 64 {
			d.file = digestsFile{}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		d.file = digestsFile{}
	}
	if d.file.Key == "" {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		d.file = digestsFile{Key: hex.EncodeToString(key)}
	}
	if d.file.Digits == nil {
		d.file.Digits = map[string]string{}
	}
	return d, nil
}

func (d *DevDigests) id(salt string, data []byte) string {
	key, _ := hex.DecodeString(d.file.Key)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(salt))
	m.Write([]byte{0})
	m.Write(data)
	return hex.EncodeToString(m.Sum(nil))
}

func (d *DevDigests) Lookup(salt string, data []byte) (string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.allowed[string(data)] {
		return "", false
	}
	h, ok := d.file.Digits[d.id(salt, data)]
	return h, ok
}

func (d *DevDigests) Remember(salt string, data []byte, digits string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.allowed[string(data)] {
		return
	}
	d.file.Digits[d.id(salt, data)] = digits
	d.changed = true
}

// Save writes what was remembered (mode 0600, replaced at once), if anything.
func (d *DevDigests) Save() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.changed {
		return nil
	}
	b, err := json.Marshal(d.file)
	if err != nil {
		return err
	}
	if err := replaceFile(d.path, b); err != nil {
		return err
	}
	d.changed = false
	return nil
}

// replaceFile writes b to path (mode 0600) through a temporary file renamed over it: a reader sees the old
// file or the new one, whole.
func replaceFile(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
