package backup

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/invalid"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/redact"
)

func testKey(t testing.TB) *Key {
	t.Helper()
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	k, err := ParseKey(redact.NewSecret(base64.StdEncoding.EncodeToString(b)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestParseKey(t *testing.T) {
	raw := bytes.Repeat([]byte{7}, 32)
	want, err := ParseKey(redact.NewSecret(hex.EncodeToString(raw)))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		base64.StdEncoding.EncodeToString(raw), base64.RawStdEncoding.EncodeToString(raw),
		base64.URLEncoding.EncodeToString(raw), " " + base64.StdEncoding.EncodeToString(raw) + "\n",
	} {
		k, err := ParseKey(redact.NewSecret(s))
		if err != nil || k.ID() != want.ID() {
			t.Errorf("ParseKey(%q) = %v, %v; want key %s", s, k, err, want.ID())
		}
	}
	for _, s := range []string{"", "correct horse battery staple", base64.StdEncoding.EncodeToString(raw[:16]), hex.EncodeToString(raw[:31])} {
		if _, err := ParseKey(redact.NewSecret(s)); !invalid.Is(err) || !strings.Contains(err.Error(), "BACKUP_ENCRYPTION_KEY") {
			t.Errorf("ParseKey(%q): %v; want an invalid-configuration error naming BACKUP_ENCRYPTION_KEY", s, err)
		}
	}
	if s := want.String(); strings.Contains(s, hex.EncodeToString(raw)) {
		t.Fatalf("the key prints its value: %s", s)
	}
}

func encryptAll(t *testing.T, k *Key, name string, data []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := newEncWriter(&out, k, name)
	if err != nil {
		t.Fatal(err)
	}
	// odd write sizes, to cross chunk boundaries mid-write
	for p := data; len(p) > 0; {
		n := min(len(p), 10007)
		if _, err := w.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func decryptAll(k *Key, name string, data []byte) ([]byte, error) {
	r, err := newDecReader(bytes.NewReader(data), k, name)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func TestEncryptionRoundTrip(t *testing.T) {
	k := testKey(t)
	for _, n := range []int{0, 1, chunkSize - 1, chunkSize, chunkSize + 1, 3 * chunkSize, 3*chunkSize + 17} {
		data := make([]byte, n)
		_, _ = rand.Read(data)
		enc := encryptAll(t, k, "obj", data)
		chunks := max(1, (n+chunkSize-1)/chunkSize)
		if want := len(encMagic) + saltSize + n + chunks*tagSize; len(enc) != want {
			t.Errorf("%d bytes: %d encrypted bytes, want %d", n, len(enc), want)
		}
		got, err := decryptAll(k, "obj", enc)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d bytes: round trip failed: %v", n, err)
		}
	}
}

func TestEncryptionRefusesTampering(t *testing.T) {
	k := testKey(t)
	data := make([]byte, 3*chunkSize+100)
	_, _ = rand.Read(data)
	enc := encryptAll(t, k, "obj", data)
	hdr := len(encMagic) + saltSize
	full := chunkSize + tagSize
	cases := map[string][]byte{
		"flipped byte":              flip(enc, len(enc)/2),
		"flipped salt":              flip(enc, len(encMagic)+3),
		"truncated mid-chunk":       enc[:len(enc)-50],
		"truncated at chunk border": enc[:hdr+2*full],
		"last chunk dropped":        enc[:hdr+3*full],
		"chunks swapped":            swap(enc, hdr, full),
		"header only":               enc[:hdr],
	}
	for name, c := range cases {
		if _, err := decryptAll(k, "obj", c); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: %v; want ErrDecrypt", name, err)
		}
	}
	if _, err := decryptAll(testKey(t), "obj", enc); !errors.Is(err, ErrDecrypt) {
		t.Errorf("another key: %v; want ErrDecrypt", err)
	}
	if _, err := decryptAll(k, "other-object", enc); !errors.Is(err, ErrDecrypt) {
		t.Errorf("another object's name: %v; want ErrDecrypt", err)
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 0x01
	return c
}

func swap(b []byte, hdr, full int) []byte {
	c := append([]byte(nil), b...)
	copy(c[hdr:hdr+full], b[hdr+full:hdr+2*full])
	copy(c[hdr+full:hdr+2*full], b[hdr:hdr+full])
	return c
}
