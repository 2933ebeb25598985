package calls

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestTransportCountsWritesNotReadsOrLogins(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	c := New()
	hc := &http.Client{Transport: Transport(c, "ziti", nil, "/authenticate")}
	for _, req := range []struct{ method, path string }{
		{"GET", "/cas"}, {"POST", "/edge/management/v1/authenticate"}, {"POST", "/cas"}, {"PATCH", "/cas/1"}, {"DELETE", "/cas/1"}, {"HEAD", "/"},
	} {
		r, _ := http.NewRequest(req.method, srv.URL+req.path, nil)
		resp, err := hc.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if got := c.Writes(); got != 3 {
		t.Fatalf("writes = %d, want 3 (POST, PATCH, DELETE on /cas)", got)
	}
	per, log := c.Snapshot()
	if per["ziti"] != 3 || len(log) != 3 || log[0] != "ziti POST /cas" {
		t.Fatalf("per=%v log=%v", per, log)
	}
}

func TestNilCounterIsSafe(t *testing.T) {
	var c *Counter
	c.Write("x", "y")
	c.Read("x")
	if c.Writes() != 0 {
		t.Fatal("nil counter counted")
	}
}
