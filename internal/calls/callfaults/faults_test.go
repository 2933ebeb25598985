package callfaults

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

func jsonServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Accept-Encoding") == "gzip" {
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			fmt.Fprint(zw, `{"data":{"id":"x"}}`)
			zw.Close()
			return
		}
		fmt.Fprint(w, `{"data":{"id":"x"}}`)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestFaultTransport(t *testing.T) {
	for _, tc := range []struct {
		fault      Fault
		reachesSrv bool
		check      func(t *testing.T, resp *http.Response, err error)
	}{
		{Fault{Kind: FaultStatus, Status: 502}, false, func(t *testing.T, resp *http.Response, err error) {
			if err != nil || resp.StatusCode != 502 {
				t.Fatalf("got %v %v, want 502", resp, err)
			}
		}},
		{Fault{Kind: FaultStatus}, false, func(t *testing.T, resp *http.Response, err error) {
			if err != nil || resp.StatusCode != 503 {
				t.Fatalf("got %v %v, want 503", resp, err)
			}
		}},
		{Fault{Kind: FaultTimeout, Delay: 50 * time.Millisecond}, false, func(t *testing.T, _ *http.Response, err error) {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("got %v, want a timeout", err)
			}
		}},
		{Fault{Kind: FaultReset}, false, func(t *testing.T, _ *http.Response, err error) {
			if !errors.Is(err, syscall.ECONNRESET) || !IsInjectedReset(err) {
				t.Fatalf("got %v, want a reset", err)
			}
		}},
		{Fault{Kind: FaultLostAnswer}, true, func(t *testing.T, _ *http.Response, err error) {
			if !errors.Is(err, syscall.ECONNRESET) || !IsInjectedReset(err) {
				t.Fatalf("got %v, want a reset", err)
			}
		}},
		{Fault{Kind: FaultMalformed}, true, func(t *testing.T, resp *http.Response, err error) {
			if err != nil {
				t.Fatal(err)
			}
			var v any
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || json.Unmarshal(b, &v) == nil {
				t.Fatalf("got %d %q, want 200 with malformed JSON", resp.StatusCode, b)
			}
			// the server's gzip answer (jsonServer: "gzip" requested) is replaced as it is: not announced as gzip
			if enc := resp.Header.Get("Content-Encoding"); enc != "" || string(b) != malformedJSON {
				t.Fatalf("Content-Encoding %q, body %q: want the plain malformed JSON", enc, b)
			}
		}},
	} {
		t.Run(string(tc.fault.Kind), func(t *testing.T) {
			srv, hits := jsonServer(t)
			hc := &http.Client{Transport: FaultTransport(nil, NewInjector(&tc.fault))}
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/x", strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept-Encoding", "gzip") // asked for explicitly, as API clients do: not decompressed for us
			resp, err := hc.Do(req)
			tc.check(t, resp, err)
			if got := hits.Load() == 1; got != tc.reachesSrv {
				t.Errorf("server saw %d request(s); reaches server: want %v", hits.Load(), tc.reachesSrv)
			}
		})
	}
}

func TestFaultTimeoutHoldsUntilContextEnds(t *testing.T) {
	srv, _ := jsonServer(t)
	hc := &http.Client{Transport: FaultTransport(nil, NewInjector(&Fault{Kind: FaultTimeout})), Timeout: 100 * time.Millisecond}
	t0 := time.Now()
	_, err := hc.Get(srv.URL)
	if err == nil || time.Since(t0) > 5*time.Second {
		t.Fatalf("got %v after %s; want the client's timeout", err, time.Since(t0))
	}
}

func TestFaultAfterTimesAndMatch(t *testing.T) {
	srv, hits := jsonServer(t)
	inj := NewInjector(&Fault{Kind: FaultStatus, After: 2, Times: 1, Match: OnlyWrites})
	hc := &http.Client{Transport: FaultTransport(nil, inj)}
	var codes []int
	for _, m := range []string{"GET", "POST", "POST", "POST", "PUT"} {
		req, _ := http.NewRequest(m, srv.URL+"/r", nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
	}
	// The GET does not match; the first two writes pass; the third fails; Times=1, so the fourth passes.
	if fmt.Sprint(codes) != "[200 200 200 503 200]" || inj.Injected() != 1 || hits.Load() != 4 {
		t.Fatalf("statuses %v, injected %d, server hits %d", codes, inj.Injected(), hits.Load())
	}
	inj.Set(nil)
	if _, ok := inj.Next("POST", "/r"); ok {
		t.Fatal("cleared injector still injects")
	}
}

// countingHealth is a gRPC health service that counts the calls it serves.
type countingHealth struct {
	grpc_health_v1.UnimplementedHealthServer
	hits atomic.Int64
}

func (h *countingHealth) Check(context.Context, *grpc_health_v1.HealthCheckRequest) (*grpc_health_v1.HealthCheckResponse, error) {
	h.hits.Add(1)
	return &grpc_health_v1.HealthCheckResponse{Status: grpc_health_v1.HealthCheckResponse_SERVING}, nil
}

func TestFaultInterceptor(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "h.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	h := &countingHealth{}
	grpc_health_v1.RegisterHealthServer(srv, h)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)

	for _, tc := range []struct {
		kind       FaultKind
		code       codes.Code
		text       string
		reachesSrv bool
	}{
		{FaultStatus, codes.Unavailable, "unavailable", false},
		{FaultTimeout, codes.DeadlineExceeded, "", false},
		{FaultReset, codes.Unavailable, "connection reset", false},
		{FaultLostAnswer, codes.Unavailable, "after the request was sent", true},
		{FaultMalformed, codes.Internal, "unmarshal", true},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			inj := NewInjector(&Fault{Kind: tc.kind, After: 1})
			conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()),
				grpc.WithUnaryInterceptor(FaultInterceptor(inj)))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			hc := grpc_health_v1.NewHealthClient(conn)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if _, err := hc.Check(ctx, &grpc_health_v1.HealthCheckRequest{}); err != nil {
				t.Fatalf("first call (After: 1) failed: %v", err)
			}
			before := h.hits.Load()
			ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel2()
			_, err = hc.Check(ctx2, &grpc_health_v1.HealthCheckRequest{})
			st := status.Convert(err)
			if st.Code() != tc.code || !strings.Contains(st.Message(), tc.text) {
				t.Fatalf("got %v, want %s containing %q", err, tc.code, tc.text)
			}
			if got := h.hits.Load() > before; got != tc.reachesSrv {
				t.Errorf("reached the server: %v, want %v", got, tc.reachesSrv)
			}
		})
	}
}
