// Package spireagent is ziti-bootstrap's one client for a SPIRE agent's Workload API (go-spiffe's
// workloadapi): it opens an X509Source that keeps the caller's X509-SVID and trust bundle current as they rotate,
// waiting with a deadline for the agent and for an identity, and it turns an SVID into a TLS certificate.
//
// A workload needs no credential to call the Workload API: the agent attests the calling process (its uid, its
// container's labels, ...) and answers with the SVIDs of the registration entries that select it, or
// PermissionDenied ("no identity issued") when none does.
package spireagent

import (
	"context"
	"crypto/tls"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
)

// Options say which agent to ask and which SVID to keep.
type Options struct {
	// Socket is the Workload API address (unix:///path/api.sock or tcp://IP:port).
	Socket string
	// Want, when not zero, picks the SVID of this SPIFFE ID among those the agent gives; the source fails to open
	// while the agent gives none of that ID.
	Want spiffeid.ID
	// Deadline bounds the wait for the first SVID; 0 waits as long as ctx.
	Deadline time.Duration
	// OnError, when set, hears of each failed attempt to read from the Workload API (also after the source
	// opened, e.g. while the agent restarts); the source keeps retrying with backoff.
	OnError func(error)
}

// Open connects to the agent and waits until it has served an X509-SVID (of opts.Want, when set). After the
// deadline the error is a *wait.UnreachableError naming the socket and the agent's last answer (for a workload
// no entry selects: PermissionDenied, no identity issued). Close the source when done.
func Open(ctx context.Context, opts Options) (*workloadapi.X509Source, error) {
	rec := &recorder{onError: opts.OnError}
	start := time.Now()
	wctx, cancel := wait.Within(ctx, opts.Deadline)
	defer cancel()
	srcOpts := []workloadapi.X509SourceOption{workloadapi.WithClientOptions(workloadapi.WithAddr(opts.Socket), workloadapi.WithLogger(rec),
		workloadapi.WithBackoffStrategy(retries{}))}
	if !opts.Want.IsZero() {
		srcOpts = append(srcOpts, workloadapi.WithDefaultX509SVIDPicker(func(svids []*x509svid.SVID) *x509svid.SVID {
			for _, s := range svids {
				if s.ID == opts.Want {
					return s
				}
			}
			rec.Errorf("the Workload API gave %d SVID(s), none of %s (%s)", len(svids), opts.Want, ids(svids))
			return nil
		}))
	}
	src, err := workloadapi.NewX509Source(wctx, srcOpts...)
	if err == nil {
		if err = waitForSVID(wctx, src); err == nil {
			return src, nil
		}
		src.Close()
	}
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case wctx.Err() != nil:
		last := rec.last()
		if last == nil {
			last = err
		}
		return nil, &wait.UnreachableError{What: "SPIRE agent Workload API (X509-SVID)", Where: opts.Socket, Waited: time.Since(start), Attempts: rec.count() + 1, Last: last}
	}
	return nil, fmt.Errorf("SPIRE agent Workload API at %s: %w", opts.Socket, err)
}

// waitForSVID waits for updates of src until it holds an SVID (the picker gives none while the agent serves
// other SPIFFE IDs only).
func waitForSVID(ctx context.Context, src *workloadapi.X509Source) error {
	for {
		if _, err := src.GetX509SVID(); err == nil {
			return nil
		}
		if err := src.WaitUntilUpdated(ctx); err != nil {
			return err
		}
	}
}

func ids(svids []*x509svid.SVID) string {
	s := ""
	for i, v := range svids {
		if i > 0 {
			s += ", "
		}
		s += v.ID.String()
	}
	if s == "" {
		return "none"
	}
	return s
}

// recorder is go-spiffe's logger: it keeps the last error (for the deadline's message) and passes errors on.
type recorder struct {
	mu      sync.Mutex
	err     error
	n       int
	onError func(error)
}

func (r *recorder) Debugf(string, ...any) {}
func (r *recorder) Infof(string, ...any)  {}
func (r *recorder) Warnf(format string, args ...any) {
	r.Errorf(format, args...)
}
func (r *recorder) Errorf(format string, args ...any) {
	err := fmt.Errorf(format, args...)
	r.mu.Lock()
	r.err, r.n = err, r.n+1
	r.mu.Unlock()
	if r.onError != nil {
		r.onError(err)
	}
}

func (r *recorder) last() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// retries is how often a source asks the agent again after a failed read. A workload that starts before its
// entry exists (the router, the router enrolment service: their entries are registered by the bootstrap job)
// asks every second for a minute, so it has its SVID within a second of the agent's: go-spiffe's default waits 1,
// 2, 3, … s, and 6 s had passed between two attempts when the SVID came. The agent is local and its answer cheap.
// After a minute of failures (an agent down) the wait grows by a second an attempt, up to 30 s, as the default.
type retries struct{}

func (retries) NewBackoff() workloadapi.Backoff { return &retry{} }

type retry struct{ n int }

const (
	retryFast  = 60               // attempts at most retryEvery apart
	retryEvery = time.Second      // their cap; the first waits are 250 ms, 500 ms
	retryMax   = 30 * time.Second // the cap after them
)

func (b *retry) Next() time.Duration {
	b.n++
	if b.n <= retryFast {
		return min(retryEvery, 125*time.Millisecond<<min(b.n, 4))
	}
	return min(time.Duration(b.n-retryFast)*time.Second, retryMax)
}

func (b *retry) Reset() { b.n = 0 }

// Certificate is svid as a TLS client or server certificate: the leaf, then the intermediates SPIRE sent.
func Certificate(svid *x509svid.SVID) tls.Certificate {
	c := tls.Certificate{PrivateKey: svid.PrivateKey, Leaf: svid.Certificates[0]}
	for _, x := range svid.Certificates {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	return c
}

// Serial is the serial number of svid's leaf certificate in lower-case hex, as the workload's log lines give it.
func Serial(svid *x509svid.SVID) string { return SerialOf(svid.Certificates[0].SerialNumber) }

// SerialOf writes a certificate serial number in lower-case hex.
func SerialOf(n *big.Int) string {
	if n == nil {
		return ""
	}
	return n.Text(16)
}
