package s3store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/minio/minio-go/v7"
)

// Part sizes of streaming uploads.
const (
	MinPartSize        = 5 << 20 // S3's smallest part (all but the last)
	MaxPartSize        = 5 << 30 // S3's largest part
	DefaultPartSize    = 6 << 20
	DefaultConcurrency = 3
	maxParts           = 10000 // S3's limit: with 6 MiB parts an object may reach 58 GiB
)

// Put stores everything r yields under key, without knowing its size in advance and without holding more than
// (Concurrency+1) part buffers: a reader fills one part while up to Concurrency parts are being sent. An object
// that fits in one part is sent with a single PUT; a larger one as a multipart upload, aborted on any error, so a
// failed Put leaves no object (an existing object under key is replaced only by a complete new one).
//
// Writes are checked: every request carries the SHA-256 of its payload in its signature, so the server refuses a
// part that arrives altered, and the stored object's size is compared with the bytes read before Put returns.
func (c *Client) Put(ctx context.Context, key string, r io.Reader) (Object, error) {
	if err := ctx.Err(); err != nil {
		return Object{}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	first, err := c.getBuf(ctx)
	if err != nil {
		return Object{}, err
	}
	n, rerr := io.ReadFull(r, first)
	if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
		defer c.putBuf(first)
		sum := sha256.Sum256(first[:n])
		_, err := c.core.PutObject(ctx, c.bucket, key, bytes.NewReader(first[:n]), int64(n), "", hex.EncodeToString(sum[:]),
			minio.PutObjectOptions{DisableContentSha256: true})
		if err != nil {
			return Object{}, c.wrap("put", key, err)
		}
		return c.checkSize(ctx, key, int64(n))
	}
	if rerr != nil {
		c.putBuf(first)
		return Object{}, fmt.Errorf("put s3://%s/%s: read the data: %w", c.bucket, key, rerr)
	}

	uploadID, err := c.core.NewMultipartUpload(ctx, c.bucket, key, minio.PutObjectOptions{})
	if err != nil {
		c.putBuf(first)
		return Object{}, c.wrap("start multipart upload of", key, err)
	}
	parts, total, err := c.sendParts(ctx, key, uploadID, r, first)
	if err == nil {
		_, err = c.core.CompleteMultipartUpload(ctx, c.bucket, key, uploadID, parts, minio.PutObjectOptions{})
		if err != nil {
			err = c.wrap("complete multipart upload of", key, err)
		}
	}
	if err != nil {
		// Abort with a fresh context: ctx may be why we failed.
		actx, acancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
		defer acancel()
		if aerr := c.core.AbortMultipartUpload(actx, c.bucket, key, uploadID); aerr != nil {
			err = errors.Join(err, fmt.Errorf("abort the upload (a lifecycle rule for incomplete multipart uploads cleans it up): %w", aerr))
		}
		return Object{}, err
	}
	return c.checkSize(ctx, key, total)
}

type part struct {
	num int
	buf []byte
	n   int
}

// sendParts reads r into part buffers (the first one already full) and uploads them with c.concurrency workers.
func (c *Client) sendParts(ctx context.Context, key, uploadID string, r io.Reader, first []byte) ([]minio.CompletePart, int64, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan part)
	var (
		mu    sync.Mutex
		done  []minio.CompletePart
		wg    sync.WaitGroup
		total int64
	)
	for range c.concurrency {
		wg.Go(func() {
			for p := range jobs {
				sum := sha256.Sum256(p.buf[:p.n])
				op, err := c.core.PutObjectPart(ctx, c.bucket, key, uploadID, p.num, bytes.NewReader(p.buf[:p.n]), int64(p.n),
					minio.PutObjectPartOptions{Sha256Hex: hex.EncodeToString(sum[:]), DisableContentSha256: true})
				c.putBuf(p.buf)
				if err != nil {
					cancel(c.wrap(fmt.Sprintf("upload part %d of", p.num), key, err))
					continue
				}
				mu.Lock()
				done = append(done, minio.CompletePart{PartNumber: p.num, ETag: op.ETag})
				mu.Unlock()
			}
		})
	}
	readErr := func() error {
		buf, n, last := first, len(first), false
		for num := 1; ; num++ {
			if num > maxParts {
				c.putBuf(buf)
				return fmt.Errorf("put s3://%s/%s: more than %d parts of %d bytes; raise the part size", c.bucket, key, maxParts, c.partSize)
			}
			total += int64(n)
			select {
			case jobs <- part{num: num, buf: buf, n: n}:
			case <-ctx.Done():
				c.putBuf(buf)
				return nil // a worker's error, or the caller's: see context.Cause below
			}
			if last {
				return nil
			}
			var err error
			if buf, err = c.getBuf(ctx); err != nil {
				return nil
			}
			n, err = io.ReadFull(r, buf)
			switch {
			case err == io.EOF:
				c.putBuf(buf)
				return nil
			case err == io.ErrUnexpectedEOF:
				last = true // a short, final part
			case err != nil:
				c.putBuf(buf)
				return fmt.Errorf("put s3://%s/%s: read the data: %w", c.bucket, key, err)
			}
		}
	}()
	close(jobs)
	wg.Wait()
	if readErr != nil {
		return nil, 0, readErr
	}
	if err := context.Cause(ctx); err != nil {
		return nil, 0, err
	}
	sort.Slice(done, func(i, j int) bool { return done[i].PartNumber < done[j].PartNumber })
	return done, total, nil
}

// checkSize compares the stored object's size with what was sent.
func (c *Client) checkSize(ctx context.Context, key string, want int64) (Object, error) {
	o, err := c.Stat(ctx, key)
	if err != nil {
		return Object{}, fmt.Errorf("check the stored object: %w", err)
	}
	if o.Size != want {
		return o, fmt.Errorf("put s3://%s/%s: the store holds %d bytes, %d were sent", c.bucket, key, o.Size, want)
	}
	return o, nil
}

// getBuf returns a part buffer, waiting for one when (Concurrency+1) are in use.
func (c *Client) getBuf(ctx context.Context) ([]byte, error) {
	select {
	case b := <-c.bufs:
		return b, nil
	default:
	}
	c.mu.Lock()
	if c.allocated < cap(c.bufs) {
		c.allocated++
		c.mu.Unlock()
		return allocPart(c.partSize), nil
	}
	c.mu.Unlock()
	select {
	case b := <-c.bufs:
		return b, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

func (c *Client) putBuf(b []byte) {
	select {
	case c.bufs <- b:
	default: // cannot happen: no more buffers exist than the channel holds
	}
}
