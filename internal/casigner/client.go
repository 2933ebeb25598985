package casigner

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// Client calls a SPIRE CA signer on its unix socket. Create it with Dial (no call is made).
type Client struct {
	socket string
	http   *http.Client
}

// Dial returns a client of the signer at address: unix:///path or /path.
func Dial(address string) (*Client, error) {
	p := strings.TrimPrefix(address, "unix://")
	if !strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("SPIRE CA signer address %q: want unix:///path/to/socket", address)
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return d.DialContext(ctx, "unix", p)
	}}
	return &Client{socket: p, http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}, nil
}

// PublicKeys returns the public keys of the roots the signer can sign for.
func (c *Client) PublicKeys(ctx context.Context) ([]crypto.PublicKey, error) {
	var doc keysDoc
	if err := c.call(ctx, http.MethodGet, PathKeys, nil, &doc); err != nil {
		return nil, err
	}
	var out []crypto.PublicKey
	for _, der := range doc.Keys {
		k, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			return nil, fmt.Errorf("SPIRE CA signer at %s: a public key does not parse: %w", c.socket, err)
		}
		out = append(out, k)
	}
	return out, nil
}

// Prove returns the verification certificate (PEM) for token, signed by root's key; ErrNoKey (wrapped) when the
// signer holds none.
func (c *Client) Prove(ctx context.Context, token string, root *x509.Certificate) (string, error) {
	if err := CheckToken(token); err != nil {
		return "", err
	}
	var resp proofResponse
	if err := c.call(ctx, http.MethodPost, PathProof, proofRequest{Token: token, Root: rootPEM(root)}, &resp); err != nil {
		return "", err
	}
	return resp.Certificate, nil
}

// Health returns the signer's health message, or why it is not healthy.
func (c *Client) Health(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://signer"+PathHealth, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("SPIRE CA signer at %s: %w", c.socket, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return string(body), fmt.Errorf("SPIRE CA signer at %s: %s: %s", c.socket, resp.Status, strings.TrimSpace(string(body)))
	}
	return string(body), nil
}

func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://signer"+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("SPIRE CA signer at %s: %w", c.socket, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("SPIRE CA signer at %s: %s %s: %w", c.socket, method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e errorDoc
		_ = json.Unmarshal(raw, &e)
		err := fmt.Errorf("SPIRE CA signer at %s: %s %s: %s: %s", c.socket, method, path, resp.Status, e.Error)
		if resp.StatusCode == http.StatusNotFound {
			err = fmt.Errorf("%w (%v)", ErrNoKey, err)
		}
		return err
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("SPIRE CA signer at %s: %s %s: %w", c.socket, method, path, err)
	}
	return nil
}
