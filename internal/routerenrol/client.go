package routerenrol

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
)

// Client asks the enrolment server for its router's JWT.
type Client struct {
	Identity Identity    // the router's X509-SVID and the trust bundle
	URL      *url.URL    // https://host:port of the server
	ServerID spiffeid.ID // the SPIFFE ID the server must present
	// Deadline bounds the wait for the server (connection refused, 5xx); 0 means one attempt.
	Deadline time.Duration
	Progress wait.Progress // optional: hears of each failed attempt
}

// RefusedError is the server's refusal (4xx): retrying will not help.
type RefusedError struct {
	Status int
	Reason string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("the enrolment server refused (HTTP %d): %s", e.Status, e.Reason)
}

// Enrol asks for the JWT, retrying with backoff while the server is not there or fails (5xx) until the deadline
// (then a *wait.UnreachableError). A refusal is a *RefusedError; a server presenting another SPIFFE ID than
// ServerID is a *config.Error naming ZB_ROUTER_ENROL_SERVER_ID; neither is retried.
func (c *Client) Enrol(ctx context.Context, reenrol bool) (Response, error) {
	if c.URL == nil || c.URL.Scheme != "https" || c.URL.Host == "" {
		return Response{}, &config.Error{Problems: []config.Problem{{Var: "ZB_ROUTER_ENROL_URL", Msg: "required: the enrolment server's https://host:port"}}}
	}
	var mismatch error
	authorize := func(id spiffeid.ID, _ [][]*x509.Certificate) error {
		if id != c.ServerID {
			mismatch = fmt.Errorf("the server at %s presents SPIFFE ID %s, not %s", c.URL.Host, id, c.ServerID)
			return mismatch
		}
		return nil
	}
	tr := &http.Transport{TLSClientConfig: tlsconfig.MTLSClientConfig(c.Identity, c.Identity, authorize), ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	body, _ := json.Marshal(Request{Reenrol: reenrol})
	u := c.URL.JoinPath(Path)
	var out Response
	err := wait.For(ctx, wait.Target{What: "router enrolment server", Where: c.URL.Host, Deadline: c.Deadline, Progress: c.Progress},
		func(ctx context.Context) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
			if err != nil {
				return wait.Permanent(err)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := hc.Do(req)
			if err != nil {
				if mismatch != nil {
					return wait.Permanent(&config.Error{Problems: []config.Problem{{Var: "ZB_ROUTER_ENROL_SERVER_ID", Msg: mismatch.Error() +
						"; check --server-id, or the server's registration entry"}}})
				}
				return err
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			if resp.StatusCode != http.StatusOK {
				var e struct {
					Error string `json:"error"`
				}
				if json.Unmarshal(raw, &e) != nil || e.Error == "" {
					e.Error = strings.TrimSpace(string(raw))
				}
				if resp.StatusCode >= 500 {
					return fmt.Errorf("HTTP %d: %s", resp.StatusCode, e.Error)
				}
				return wait.Permanent(&RefusedError{Status: resp.StatusCode, Reason: e.Error})
			}
			if err := json.Unmarshal(raw, &out); err != nil {
				return fmt.Errorf("answer: %w", err)
			}
			if _, err := ziti.JWTClaims(out.JWT); err != nil {
				return fmt.Errorf("answer: the enrolment token: %w", err)
			}
			return nil
		})
	return out, err
}

// WriteFile writes data to path atomically (a temporary file in the same directory, synced, then renamed over
// path), readable and writable by its owner only. On failure path is left as it was.
func WriteFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil { // make the rename durable
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// IsRefused reports whether err is the server's refusal.
func IsRefused(err error) bool {
	var r *RefusedError
	return errors.As(err, &r)
}
