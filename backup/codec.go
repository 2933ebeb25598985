package backup

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"

	"github.com/klauspost/compress/zstd"
)

// Compression names how stored objects are compressed; an object whose snapshot does not compress is stored
// as it is (Object.Compression NoCompression).
const Compression = "zstd"

// NoCompression is the Object.Compression of a snapshot stored uncompressed.
const NoCompression = "none"

// sampleSize is how much of a snapshot's start decides whether it is compressed.
const sampleSize = 256 << 10

// compressible reads the start of r (up to sampleSize bytes; r keeps them) and reports whether zstd at its
// fastest level saves at least 3 % of it. Database files and dumps do (about half); already compressed or
// encrypted data does not, and compressing it would only cost time.
func compressible(r *bufio.Reader) bool {
	sample, _ := r.Peek(sampleSize)
	if len(sample) == 0 {
		return true
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(1<<20))
	if err != nil {
		return true
	}
	defer enc.Close()
	out := enc.EncodeAll(sample, make([]byte, 0, len(sample)))
	return float64(len(out)) < 0.97*float64(len(sample))
}

// digest counts and hashes (SHA-256) what is written to it.
type digest struct {
	h hash.Hash // nil: count only
	n int64
}

func newDigest() *digest { return &digest{h: sha256.New()} }

// newCounter counts without hashing.
func newCounter() *digest { return &digest{} }

func (d *digest) Write(p []byte) (int, error) {
	if d.h != nil {
		d.h.Write(p)
	}
	d.n += int64(len(p))
	return len(p), nil
}

func (d *digest) sum() string {
	if d.h == nil {
		return ""
	}
	return hex.EncodeToString(d.h.Sum(nil))
}

// encoded is what encoding one snapshot produced.
type encoded struct {
	RawSize   int64
	RawSHA256 string // "" for an encrypted object
	Size      int64  // bytes stored
	SHA256    string
}

// encoder turns a snapshot into its stored form (zstd, then optionally encryption), hashing both sides, in a
// goroutine that writes into a pipe: nothing is held beyond the compressor's window and one encryption chunk.
type encoder struct {
	pr   *io.PipeReader
	done chan struct{}
	res  encoded
	err  error
}

// encode starts encoding snap (read to its end and then closed) for the object called name; level 0 stores
// it uncompressed.
func encode(snap *Snapshot, key *Key, name string, level zstd.EncoderLevel) *encoder {
	pr, pw := io.Pipe()
	e := &encoder{pr: pr, done: make(chan struct{})}
	go func() {
		defer close(e.done)
		err := e.run(snap, pw, key, name, level)
		if cerr := snap.Close(); cerr != nil && err == nil {
			err = cerr
		}
		// The store sees EOF only after the snapshot's producer (e.g. pg_dump) has exited successfully; any error
		// reaches the store's reader instead, and the upload is abandoned.
		pw.CloseWithError(err)
		e.err = err
	}()
	return e
}

func (e *encoder) run(snap *Snapshot, pw io.Writer, key *Key, name string, level zstd.EncoderLevel) error {
	stored := newDigest()
	var w io.Writer = io.MultiWriter(stored, pw)
	var enc io.WriteCloser
	if key != nil {
		var err error
		if enc, err = newEncWriter(w, key, name); err != nil {
			return err
		}
		w = enc
	}
	var zw io.WriteCloser = nopCloser{w}
	if level != 0 {
		var err error
		if zw, err = zstd.NewWriter(w, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(1<<20), zstd.WithEncoderCRC(true)); err != nil {
			return err
		}
	}
	// An encrypted object's snapshot is not hashed: the AEAD authenticates every chunk of it, bound to the set and
	// the object (and its stored SHA-256 is in the authenticated manifest). That is one SHA-256 pass less, about a
	// second of CPU per GiB, which a 2-core machine shares with the S3 server (BenchmarkStream1GiB).
	raw := newDigest()
	if key != nil {
		raw = newCounter()
	}
	if _, err := io.Copy(zw, io.TeeReader(snap.R, raw)); err != nil {
		zw.Close()
		return fmt.Errorf("read the snapshot: %w", err)
	}
	if err := snap.Close(); err != nil { // the producer's verdict, before the last bytes reach the store
		zw.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("compress: %w", err)
	}
	if enc != nil {
		if err := enc.Close(); err != nil {
			return fmt.Errorf("encrypt: %w", err)
		}
	}
	e.res = encoded{RawSize: raw.n, RawSHA256: raw.sum(), Size: stored.n, SHA256: stored.sum()}
	return nil
}

// Reader is the stored form, for the store's Put.
func (e *encoder) Reader() io.Reader { return e.pr }

// Finish waits for the encoder after the store's Put returned putErr, and returns what was encoded. A failed Put
// stops the encoder (and the snapshot's producer).
func (e *encoder) Finish(putErr error) (encoded, error) {
	if putErr != nil {
		e.pr.CloseWithError(putErr)
	}
	<-e.done
	if putErr != nil {
		return e.res, putErr
	}
	if e.err != nil {
		return e.res, e.err
	}
	return e.res, nil
}

// nopCloser is a writer whose Close does nothing (the encoder's stage when nothing is compressed).
type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// decode reverses encode: r is the stored form of the object called name, compressed unless compressed is false.
func decode(r io.Reader, key *Key, name string, compressed bool) (io.ReadCloser, error) {
	if key != nil {
		var err error
		if r, err = newDecReader(r, key, name); err != nil {
			return nil, err
		}
	}
	if !compressed {
		return io.NopCloser(r), nil
	}
	zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(64<<20))
	if err != nil {
		return nil, err
	}
	return zr.IOReadCloser(), nil
}
