package backup

import (
	"bytes"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// BenchmarkEncode measures the encoding pipeline alone (no store): zstd, encryption, both SHA-256s.
func BenchmarkEncode(b *testing.B) {
	const n = 64 << 20
	data := make([]byte, n)
	rng := rand.NewChaCha8([32]byte{})
	_, _ = rng.Read(data)
	db := bytes.Clone(data)
	text := []byte(strings.Repeat("spiffe://zb.test/workload/ziti-router selector docker:label:app:router ", 64))
	for p := 0; p < n; p += 4096 {
		copy(db[p+2048:p+4096], text[(p/4096)%64:])
	}
	for _, c := range []struct {
		name  string
		data  []byte
		level zstd.EncoderLevel
		enc   bool
	}{
		{"random/fastest", data, zstd.SpeedFastest, true},
		{"random/stored", data, 0, true}, // what backup does with a snapshot that does not compress
		{"random/default", data, zstd.SpeedDefault, true},
		{"random/default-noenc", data, zstd.SpeedDefault, false},
		{"dblike/fastest", db, zstd.SpeedFastest, true},
		{"dblike/default", db, zstd.SpeedDefault, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			var key *Key
			if c.enc {
				key = testKey(b)
			}
			b.SetBytes(n)
			for range b.N {
				e := encode(NewSnapshot("bbolt", "", bytes.NewReader(c.data), nil), key, "x", c.level)
				_, err := io.Copy(io.Discard, e.Reader())
				res, ferr := e.Finish(err)
				if ferr != nil {
					b.Fatal(ferr)
				}
				b.ReportMetric(float64(res.Size)/float64(res.RawSize), "stored/raw")
			}
		})
	}
}
