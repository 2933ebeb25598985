package backup

import (
	"bufio"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/invalid"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/redact"
)

// EncryptionScheme names the client-side encryption of stored objects (see the package documentation).
const EncryptionScheme = "zbe1: AES-256-GCM, 64 KiB chunks, STREAM nonces, HKDF-SHA256 per-object keys"

const (
	encMagic  = "ZBE1"
	saltSize  = 32
	chunkSize = 64 << 10
	tagSize   = 16
)

// ErrDecrypt is the error of an encrypted object that does not decrypt: altered, truncated, or another key.
var ErrDecrypt = errors.New("decryption failed: the object was altered or truncated, or was encrypted with another key")

// Key is the secret that encrypts snapshot sets. It never prints.
type Key struct {
	master []byte
	id     string
}

// ParseKey reads a key of 32 random bytes written as base64 (standard or URL alphabet, padded or not) or as 64
// hex digits, e.g. the output of `openssl rand -base64 32`. Passphrases are refused: the key is used directly.
func ParseKey(s redact.Secret) (*Key, error) {
	v := strings.TrimSpace(s.Value())
	var raw []byte
	if b, err := hex.DecodeString(v); err == nil && len(b) == 32 {
		raw = b
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw != nil {
			break
		}
		if b, err := enc.DecodeString(v); err == nil && len(b) == 32 {
			raw = b
		}
	}
	if raw == nil {
		return nil, &invalid.Error{Problems: []invalid.Problem{{Var: "BACKUP_ENCRYPTION_KEY",
			Msg: "must be 32 random bytes written as base64 or 64 hex digits; make one with `openssl rand -base64 32` and keep a copy outside the backups"}}}
	}
	id, err := hkdf.Expand(sha256.New, raw, "ziti-bootstrap backup key id v1", 8)
	if err != nil {
		return nil, err
	}
	return &Key{master: raw, id: hex.EncodeToString(id)}, nil
}

// ID identifies the key without revealing it; manifests record it, so a restore with the wrong key is refused
// before anything is downloaded.
func (k *Key) ID() string { return k.id }

func (k *Key) String() string   { return "backup key " + k.id }
func (k *Key) GoString() string { return k.String() }

// manifestMAC authenticates a manifest's exact bytes, bound to where the set lies: the MAC key is derived from k
// and the set ID, and the MAC covers the prefix, the set ID and the bytes, each length-prefixed. A manifest
// copied under another set ID or prefix, or altered in any byte (the objects' digests included), does not verify.
func (k *Key) manifestMAC(prefix, set string, body []byte) string {
	mk, _ := hkdf.Expand(sha256.New, k.master, "ziti-bootstrap backup manifest mac v2\x00"+set, 32)
	m := hmac.New(sha256.New, mk)
	for _, part := range [][]byte{[]byte(prefix), []byte(set), body} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		m.Write(n[:])
		m.Write(part)
	}
	return hex.EncodeToString(m.Sum(nil))
}

// objectID names an object for its key derivation: its set and its key within the set.
func objectID(set, key string) string { return set + "\x00" + key }

// aead returns the cipher of one object: a key derived from the master key, the object's random salt and its
// ID (objectID: set and name), so objects cannot be swapped within a set or moved between sets.
func (k *Key) aead(salt []byte, id string) (cipher.AEAD, error) {
	ok, err := hkdf.Key(sha256.New, k.master, salt, "ziti-bootstrap backup object v2\x00"+id, 32)
	if err != nil {
		return nil, err
	}
	b, err := aes.NewCipher(ok)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// nonce is the STREAM construction: an 11-byte chunk counter and a last-chunk flag, so chunks can be neither
// reordered nor dropped, and a stream cut at a chunk boundary does not verify.
func nonce(n *[12]byte, counter uint64, last bool) []byte {
	clear(n[:])
	binary.BigEndian.PutUint64(n[3:11], counter)
	if last {
		n[11] = 1
	}
	return n[:]
}

// encWriter encrypts what is written to it, in chunks, to w. Close writes the last chunk.
type encWriter struct {
	w       io.Writer
	aead    cipher.AEAD
	buf     []byte
	n       int
	counter uint64
	nonce   [12]byte
	closed  bool
}

func newEncWriter(w io.Writer, k *Key, name string) (io.WriteCloser, error) {
	salt := make([]byte, saltSize)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	a, err := k.aead(salt, name)
	if err != nil {
		return nil, err
	}
	if _, err := io.WriteString(w, encMagic); err != nil {
		return nil, err
	}
	if _, err := w.Write(salt); err != nil {
		return nil, err
	}
	return &encWriter{w: w, aead: a, buf: make([]byte, chunkSize+tagSize)}, nil
}

func (e *encWriter) Write(p []byte) (int, error) {
	if e.closed {
		return 0, errors.New("write to a closed encrypter")
	}
	written := 0
	for len(p) > 0 {
		if e.n == chunkSize { // a full chunk is sealed only once more data follows: the last chunk may be full
			if err := e.seal(false); err != nil {
				return written, err
			}
		}
		c := copy(e.buf[e.n:chunkSize], p)
		e.n += c
		p = p[c:]
		written += c
	}
	return written, nil
}

func (e *encWriter) seal(last bool) error {
	out := e.aead.Seal(e.buf[:0], nonce(&e.nonce, e.counter, last), e.buf[:e.n], nil)
	e.counter++
	e.n = 0
	_, err := e.w.Write(out)
	return err
}

func (e *encWriter) Close() error {
	if e.closed {
		return nil
	}
	e.closed = true
	return e.seal(true)
}

// decReader decrypts what encWriter wrote.
type decReader struct {
	r       *bufio.Reader
	aead    cipher.AEAD
	buf     []byte
	plain   []byte
	counter uint64
	done    bool
	nonce   [12]byte
}

func newDecReader(r io.Reader, k *Key, name string) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	hdr := make([]byte, len(encMagic)+saltSize)
	if _, err := io.ReadFull(br, hdr); err != nil {
		return nil, fmt.Errorf("%w (no header: %v)", ErrDecrypt, err)
	}
	if string(hdr[:len(encMagic)]) != encMagic {
		return nil, fmt.Errorf("%w (not an encrypted object: header %q)", ErrDecrypt, hdr[:len(encMagic)])
	}
	a, err := k.aead(hdr[len(encMagic):], name)
	if err != nil {
		return nil, err
	}
	return &decReader{r: br, aead: a, buf: make([]byte, chunkSize+tagSize)}, nil
}

func (d *decReader) Read(p []byte) (int, error) {
	for len(d.plain) == 0 {
		if d.done {
			return 0, io.EOF
		}
		if err := d.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, d.plain)
	d.plain = d.plain[n:]
	return n, nil
}

func (d *decReader) next() error {
	n, err := io.ReadFull(d.r, d.buf)
	last := false
	switch {
	case err == io.EOF:
		return fmt.Errorf("%w (truncated after chunk %d)", ErrDecrypt, d.counter)
	case err == io.ErrUnexpectedEOF:
		last = true
	case err != nil:
		return err
	default:
		if _, perr := d.r.Peek(1); perr == io.EOF {
			last = true
		} else if perr != nil {
			return perr
		}
	}
	if n < tagSize {
		return fmt.Errorf("%w (chunk %d is %d bytes)", ErrDecrypt, d.counter, n)
	}
	out, oerr := d.aead.Open(d.buf[:0], nonce(&d.nonce, d.counter, last), d.buf[:n], nil)
	if oerr != nil {
		return fmt.Errorf("%w (chunk %d does not authenticate)", ErrDecrypt, d.counter)
	}
	d.counter++
	d.plain = out
	d.done = last
	return nil
}
