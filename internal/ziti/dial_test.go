package ziti

import (
	"context"
	"net"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

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
