package ziti

import (
	"context"
	"encoding/pem"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls/callfaults"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/invalid"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/redact"
)

// Dial builds the client without any network call (TOFU included); the first call that needs the controller
// connects. A missing setting fails Dial at once.
func TestDialMakesNoNetworkCall(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			c.Close()
		}
	}()
	u, _ := url.Parse("https://" + ln.Addr().String())
	c, err := Dial(Options{URL: u, User: "admin", Password: redact.NewSecret("pw"), TOFU: true})
	if err != nil {
		t.Fatal(err)
	}
	if n := conns.Load(); n != 0 {
		t.Fatalf("Dial opened %d connection(s)", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Ping(ctx); err == nil {
		t.Fatal("Ping of a server that closes every connection succeeded")
	}
	if conns.Load() == 0 {
		t.Fatal("Ping made no connection")
	}

	if _, err := Dial(Options{URL: u, User: "admin"}); !invalid.Is(err) {
		t.Errorf("no password: %v", err)
	}
}

// A controller that accepts the connection and never answers fails the login after the answer timeout, instead
// of holding the run (and its lock) until the caller's context ends.
func TestControllerThatNeverAnswersTimesOut(t *testing.T) {
	srv := callfaults.HangingServer(t, true)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(srv.URL)
	callfaults.EndsAtTheAnswerTimeout(t, func(ctx context.Context) error {
		_, err := New(ctx, Options{URL: u, User: "admin", Password: redact.NewSecret("x"), CAFile: ca, AnswerTimeout: 300 * time.Millisecond})
		return err
	})
}
