package callfaults

// Package callfaults injects faults into calls, for tests only: no code of the tool imports it, so it is in no
// release binary. FaultTransport and FaultInterceptor wrap a client's transport (or a test proxy's way to the
// real server) and make chosen calls fail the way a sick server or network does. (The crash hook, which kills
// the process before a chosen write, is in package calls, compiled in only with the build tag zbcrashhook.)

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls"
)

// FaultKind is how a call fails.
type FaultKind string

const (
	// FaultStatus answers without reaching the server: HTTP Fault.Status (503 when 0), gRPC Unavailable.
	FaultStatus FaultKind = "status"
	// FaultTimeout never answers: the call is held until its context ends (or Fault.Delay passes), then fails
	// with a timeout. The server does not see it.
	FaultTimeout FaultKind = "timeout"
	// FaultReset closes the connection before the request reaches the server.
	FaultReset FaultKind = "reset"
	// FaultLostAnswer lets the server carry the call out, then closes the connection before its answer arrives:
	// the client cannot know whether its write happened.
	FaultLostAnswer FaultKind = "lost-answer"
	// FaultMalformed lets the server carry the call out and corrupts its answer: truncated JSON (HTTP, status
	// 200), bytes that are not a valid protobuf message (gRPC).
	FaultMalformed FaultKind = "malformed"
)

// Fault says which calls fail and how.
type Fault struct {
	Kind FaultKind
	// After lets this many matching calls through first: "fail after N calls".
	After int
	// Times is how many calls fail after that; 0: every call from then on (the server is gone).
	Times int
	// Status is the HTTP status of FaultStatus; 503 when 0.
	Status int
	// Delay bounds how long FaultTimeout holds a call; 0: until the call's context ends.
	Delay time.Duration
	// Match selects the calls the fault counts and hits: HTTP method and URL path, or "" and the gRPC method.
	// nil matches every call.
	Match func(method, target string) bool
}

// OnlyWrites matches mutating calls as Transport and UnaryInterceptor count them (without session paths).
func OnlyWrites(method, target string) bool { return calls.IsWrite(method, target) }

// Injector decides, call by call, whether its fault hits. It is safe for concurrent use, and its fault can be
// changed while calls run ("the server goes away now").
type Injector struct {
	mu       sync.Mutex
	fault    *Fault
	seen     int
	injected int
}

// NewInjector returns an injector of f; a nil f injects nothing until Set.
func NewInjector(f *Fault) *Injector { return &Injector{fault: f} }

// Set replaces the fault and restarts its counts; nil clears it.
func (i *Injector) Set(f *Fault) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.fault, i.seen, i.injected = f, 0, 0
}

// Injected is how many calls the current fault hit.
func (i *Injector) Injected() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.injected
}

// Next counts one call and returns the fault when it hits that call.
func (i *Injector) Next(method, target string) (Fault, bool) {
	if i == nil {
		return Fault{}, false
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	f := i.fault
	if f == nil || (f.Match != nil && !f.Match(method, target)) {
		return Fault{}, false
	}
	i.seen++
	if i.seen <= f.After || (f.Times > 0 && i.injected >= f.Times) {
		return Fault{}, false
	}
	i.injected++
	return *f, true
}

// InjectedError is the error of an injected reset, lost answer or timeout (a net.Error: Timeout tells which).
type InjectedError struct {
	Kind FaultKind
	Call string
}

func (e *InjectedError) Error() string {
	switch e.Kind {
	case FaultTimeout:
		return fmt.Sprintf("%s: i/o timeout (injected)", e.Call)
	case FaultLostAnswer:
		return fmt.Sprintf("%s: connection reset by peer after the request was sent (injected)", e.Call)
	}
	return fmt.Sprintf("%s: connection reset by peer (injected)", e.Call)
}
func (e *InjectedError) Timeout() bool   { return e.Kind == FaultTimeout }
func (e *InjectedError) Temporary() bool { return true }
func (e *InjectedError) Unwrap() error {
	if e.Kind == FaultTimeout {
		return os.ErrDeadlineExceeded
	}
	return syscall.ECONNRESET
}

// IsInjectedReset reports whether err is an injected reset or lost answer: a proxy closes the client's
// connection on it.
func IsInjectedReset(err error) bool {
	var ie *InjectedError
	return errors.As(err, &ie) && (ie.Kind == FaultReset || ie.Kind == FaultLostAnswer)
}

// malformedJSON is the body of a FaultMalformed HTTP answer: the start of a JSON document, cut off.
const malformedJSON = `{"data":{"id":"`

// FaultTransport wraps base (http.DefaultTransport when nil) and lets inj fail the requests it chooses.
func FaultTransport(base http.RoundTripper, inj *Injector) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &faultTransport{base: base, inj: inj}
}

type faultTransport struct {
	base http.RoundTripper
	inj  *Injector
}

func (t *faultTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f, hit := t.inj.Next(r.Method, r.URL.Path)
	if !hit {
		return t.base.RoundTrip(r)
	}
	call := r.Method + " " + r.URL.Path
	switch f.Kind {
	case FaultStatus:
		drain(r)
		code := f.Status
		if code == 0 {
			code = http.StatusServiceUnavailable
		}
		return answer(r, code, "text/plain", http.StatusText(code)+" (injected)\n"), nil
	case FaultTimeout:
		drain(r)
		if err := hold(r.Context(), f.Delay); err != nil {
			return nil, err
		}
		return nil, &InjectedError{FaultTimeout, call}
	case FaultReset:
		drain(r)
		return nil, &InjectedError{FaultReset, call}
	}
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	if f.Kind == FaultLostAnswer {
		return nil, &InjectedError{FaultLostAnswer, call}
	}
	out := answer(r, resp.StatusCode, "application/json", malformedJSON) // FaultMalformed
	out.Header = resp.Header.Clone()
	out.Header.Set("Content-Length", strconv.Itoa(len(malformedJSON)))
	// the body is ours, as it is: not the server's encoding (a gzip answer would fail as "invalid header", not as
	// the malformed JSON the fault is about)
	out.Header.Del("Content-Encoding")
	out.Uncompressed = false
	return out, nil
}

func drain(r *http.Request) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
}

func answer(r *http.Request, code int, ctype, body string) *http.Response {
	return &http.Response{
		Status: fmt.Sprintf("%d %s", code, http.StatusText(code)), StatusCode: code,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {ctype}, "Content-Length": {strconv.Itoa(len(body))}},
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)), Request: r,
	}
}

// hold waits until ctx ends (its error is returned) or d passes (nil); d == 0 waits for ctx only.
func hold(ctx context.Context, d time.Duration) error {
	var after <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		after = t.C
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-after:
		return nil
	}
}

// FaultInterceptor lets inj fail the unary gRPC calls it chooses.
func FaultInterceptor(inj *Injector) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		f, hit := inj.Next("", method)
		if !hit {
			return invoker(ctx, method, req, reply, cc, opts...)
		}
		switch f.Kind {
		case FaultStatus:
			return status.Errorf(codes.Unavailable, "%s: service unavailable (injected)", method)
		case FaultTimeout:
			if err := hold(ctx, f.Delay); err != nil {
				return status.FromContextError(err).Err()
			}
			return status.Errorf(codes.DeadlineExceeded, "%s: timed out (injected)", method)
		case FaultReset:
			return status.Error(codes.Unavailable, (&InjectedError{FaultReset, method}).Error())
		case FaultLostAnswer:
			if err := invoker(ctx, method, req, reply, cc, opts...); err != nil {
				return err
			}
			return status.Error(codes.Unavailable, (&InjectedError{FaultLostAnswer, method}).Error())
		}
		// FaultMalformed: decode the server's answer from invalid bytes, with the codec the call would use.
		base := encoding.GetCodecV2("proto")
		for _, o := range opts {
			if fc, ok := o.(grpc.ForceCodecV2CallOption); ok {
				base = fc.CodecV2
			}
		}
		return invoker(ctx, method, req, reply, cc, append(opts, grpc.ForceCodecV2(corruptCodec{base}))...)
	}
}

// malformedProto is not a protobuf message: field 1, length-delimited, claims more bytes than follow.
var malformedProto = []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01}

// corruptCodec encodes requests as base does, and decodes every answer from malformedProto.
type corruptCodec struct{ base encoding.CodecV2 }

func (c corruptCodec) Marshal(v any) (mem.BufferSlice, error) { return c.base.Marshal(v) }
func (c corruptCodec) Name() string                           { return c.base.Name() }
func (c corruptCodec) Unmarshal(_ mem.BufferSlice, v any) error {
	return c.base.Unmarshal(mem.BufferSlice{mem.SliceBuffer(bytes.Clone(malformedProto))}, v)
}

// isGRPCRead is UnaryInterceptor's read classification.
