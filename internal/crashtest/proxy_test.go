package crashtest

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls/callfaults"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
)

// Proxies stand in front of a real server of the test bed so that a test can take the server away (stop:
// the listener closes and every connection drops; start: it comes back on the same address) or make it
// answer badly (an Injector's faults), without touching the server others use.

// listener is the part every proxy shares: one address that can be closed and opened again, and the
// connections accepted on it.
type listener struct {
	network, addr string
	mu            sync.Mutex
	ln            net.Listener
	conns         map[net.Conn]bool
	serve         func(net.Listener) // runs until the listener closes
}

func (l *listener) start(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln != nil {
		return
	}
	var err error
	for i := 0; i < 50; i++ { // a closed TCP port can take a moment to be free again
		if l.ln, err = net.Listen(l.network, l.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	testutil.Must(t, err)
	l.addr = l.ln.Addr().String()
	if l.conns == nil {
		l.conns = map[net.Conn]bool{}
	}
	go l.serve(&tracked{Listener: l.ln, l: l})
}

// stop closes the listener and every connection: the server is gone (connection refused, reset).
func (l *listener) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln != nil {
		l.ln.Close()
		l.ln = nil
	}
	for c := range l.conns {
		c.Close()
	}
	l.conns = map[net.Conn]bool{}
}

// tracked remembers the connections it accepts, so that stop can drop them.
type tracked struct {
	net.Listener
	l *listener
}

func (t *tracked) Accept() (net.Conn, error) {
	c, err := t.Listener.Accept()
	if err != nil {
		return nil, err
	}
	t.l.mu.Lock()
	if t.l.ln == nil {
		t.l.mu.Unlock()
		c.Close()
		return nil, net.ErrClosed
	}
	t.l.conns[c] = true
	t.l.mu.Unlock()
	return c, nil
}

// pipe copies bytes between its clients and the server at target (TLS and gRPC pass through unchanged).
func pipe(t *testing.T, network, addr, targetNetwork, target string) *listener {
	l := &listener{network: network, addr: addr}
	l.serve = func(ln net.Listener) {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				s, err := net.Dial(targetNetwork, target)
				if err != nil {
					return
				}
				defer s.Close()
				done := make(chan struct{}, 2)
				go func() { io.Copy(s, c); done <- struct{}{} }()
				go func() { io.Copy(c, s); done <- struct{}{} }()
				<-done
			}()
		}
	}
	l.start(t)
	t.Cleanup(l.stop)
	return l
}

// httpProxy forwards HTTP to target through callfaults.FaultTransport: inj decides which requests fail. An
// injected reset closes the client's connection. When stopAfterWrites > 0, the proxy stops (the server is gone)
// as the write after that many arrives, dropping it. Logins (a Keycloak token request, a Ziti /authenticate)
// are not writes, as calls.Transport counts them.
type httpProxy struct {
	*listener
	inj             *callfaults.Injector
	stopAfterWrites atomic.Int64
	writes          atomic.Int64
	caFile          string // with TLS: the PEM file of the proxy's own certificate, for the client to pin
}

// sessionPaths end the paths of the logins the proxy does not count as writes.
var sessionPaths = []string{"/protocol/openid-connect/token", "/authenticate"}

// newHTTPProxy returns a plain HTTP proxy to target.
func newHTTPProxy(t *testing.T, target string) *httpProxy { return newProxy(t, target, nil) }

// newTLSProxy returns an HTTPS proxy to the HTTPS server target, whose CA is in the PEM file targetCA: it
// terminates TLS with a certificate of its own for 127.0.0.1 (in caFile, for the client to pin) and verifies
// the server against targetCA.
func newTLSProxy(t *testing.T, target, targetCA string) *httpProxy {
	pemCA, err := os.ReadFile(targetCA)
	testutil.Must(t, err)
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemCA) {
		t.Fatalf("%s holds no PEM certificate", targetCA)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	return newProxy(t, target, tr)
}

// newProxy returns a proxy to target; with a transport (to an HTTPS target), the proxy serves HTTPS itself.
func newProxy(t *testing.T, target string, tr *http.Transport) *httpProxy {
	u, err := url.Parse(target)
	testutil.Must(t, err)
	p := &httpProxy{listener: &listener{network: "tcp", addr: "127.0.0.1:0"}, inj: callfaults.NewInjector(nil)}
	var cert *tls.Certificate
	if tr != nil {
		cert, p.caFile = selfSigned(t)
	} else {
		tr = http.DefaultTransport.(*http.Transport).Clone()
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Host = u.Host // the server sees its own address: Keycloak's issuer does not change
			// Answers uncompressed: a malformed answer (callfaults.FaultMalformed keeps the server's headers) must
			// reach the client as malformed JSON, not as a body that fails to gunzip.
			r.Out.Header.Del("Accept-Encoding")
		},
		Transport: callfaults.FaultTransport(tr, p.inj),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if callfaults.IsInjectedReset(err) {
				hangUp(w)
				return
			}
			http.Error(w, err.Error(), http.StatusBadGateway)
		},
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if callfaults.OnlyWrites(r.Method, r.URL.Path) && !slices.ContainsFunc(sessionPaths, func(s string) bool { return strings.HasSuffix(r.URL.Path, s) }) {
			if n := p.stopAfterWrites.Load(); n > 0 && p.writes.Add(1) > n {
				hangUp(w)
				go p.stop()
				return
			}
		}
		rp.ServeHTTP(w, r)
	})
	p.serve = func(ln net.Listener) {
		srv := &http.Server{Handler: handler, ErrorLog: log.New(io.Discard, "", 0)} // stop cuts handshakes short
		if cert != nil {
			ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12})
		}
		srv.Serve(ln)
	}
	p.start(t)
	t.Cleanup(p.stop)
	return p
}

func (p *httpProxy) url() string {
	if p.caFile != "" {
		return "https://" + p.addr
	}
	return "http://" + p.addr
}

// selfSigned returns a TLS certificate for 127.0.0.1 that is its own CA, and the PEM file holding it.
func selfSigned(t *testing.T) (*tls.Certificate, string) {
	key := testutil.NewKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "zbcrash proxy"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	testutil.Must(t, err)
	file := filepath.Join(t.TempDir(), "proxy-ca.pem")
	testutil.Must(t, os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, file
}

// hangUp closes the client's connection without an answer.
func hangUp(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			c.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// grpcProxy forwards unary gRPC calls, as raw bytes, from a unix socket to the server at target; calls to
// the server go through callfaults.FaultInterceptor, so inj decides which fail (a malformed answer reaches the
// client as the bytes the interceptor's codec produced).
type grpcProxy struct {
	*listener
	inj *callfaults.Injector
}

func newGRPCProxy(t *testing.T, target string) *grpcProxy {
	p := &grpcProxy{listener: &listener{network: "unix", addr: filepath.Join(t.TempDir(), "spire-proxy.sock")}, inj: callfaults.NewInjector(nil)}
	up, err := grpc.NewClient("unix://"+target, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(callfaults.FaultInterceptor(p.inj)))
	testutil.Must(t, err)
	t.Cleanup(func() { up.Close() })
	forward := func(_ any, stream grpc.ServerStream) error {
		method, _ := grpc.MethodFromServerStream(stream)
		in := new(frame)
		if err := stream.RecvMsg(in); err != nil {
			return err
		}
		md, _ := metadata.FromIncomingContext(stream.Context())
		out := new(frame)
		if err := up.Invoke(metadata.NewOutgoingContext(stream.Context(), md), method, in, out, grpc.ForceCodecV2(rawCodec{})); err != nil {
			return err
		}
		return stream.SendMsg(out)
	}
	p.serve = func(ln net.Listener) {
		// Serve returns when stop closes the listener; stop drops the connections.
		grpc.NewServer(grpc.ForceServerCodecV2(rawCodec{}), grpc.UnknownServiceHandler(forward)).Serve(ln)
	}
	p.start(t)
	t.Cleanup(func() { p.stop(); os.Remove(p.addr) })
	return p
}

// frame is one gRPC message as bytes.
type frame struct{ b []byte }

// rawCodec moves frames without decoding them.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.(*frame).b)}, nil
}
func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	f, ok := v.(*frame)
	if !ok {
		return errors.New("rawCodec: not a frame")
	}
	f.b = data.Materialize()
	return nil
}
func (rawCodec) Name() string { return "proto" }

// onSteps calls fn once every one of steps has logged "step done".
func onSteps(fn func(), steps ...string) func(string) {
	var mu sync.Mutex
	left := map[string]bool{}
	for _, s := range steps {
		left[s] = true
	}
	return func(line string) {
		if !strings.Contains(line, `"msg":"step done"`) {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for s := range left {
			if strings.Contains(line, `"step":"`+s+`"`) {
				delete(left, s)
				if len(left) == 0 {
					fn()
				}
			}
		}
	}
}

// onStep returns a stderr line handler that calls fn once, when the step named step is logged as done.
func onStep(step string, fn func()) func(string) { return onSteps(fn, step) }
