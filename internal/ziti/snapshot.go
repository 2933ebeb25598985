package ziti

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/openziti/edge-api/rest_model"
)

const fabricPath = "/fabric/v1"

// SnapshotDB asks the controller to write a consistent copy of its database (a bbolt read transaction) to path
// on the controller's own filesystem, and returns the path it wrote. The controller expands __DB_DIR__ (the
// directory of its database), __DB_FILE__, __DATE__, __TIME__ and __RAFT_INDEX__ in path — and, beware, also
// the bare words DB_DIR, DB_FILE, DATE, TIME and RAFT_INDEX anywhere in it. "__DB_DIR__/name" puts the copy next
// to the database, on the volume a backup can read, without knowing where that volume is mounted in the
// controller. "" lets the controller choose (__DB_DIR__/__DB_FILE__-__DATE__-__TIME__).
//
// The controller takes at most one snapshot a minute (default and explicit path together); sooner, the error
// satisfies IsRateLimited and the call may be repeated later. The caller owns the file and removes it.
func (c *Client) SnapshotDB(ctx context.Context, path string) (string, error) {
	op := "snapshot the controller database"
	if path != "" {
		op += " to " + path
	}
	body, err := json.Marshal(map[string]string{"path": path})
	if err != nil {
		return "", err
	}
	if err := c.Login(ctx); err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	var out string
	for attempt := 0; ; attempt++ {
		var status int
		out, status, err = c.snapshotOnce(ctx, body)
		if status == http.StatusUnauthorized && attempt == 0 {
			if lerr := c.login(ctx); lerr != nil {
				return "", fmt.Errorf("%s: session expired and logging in again failed: %w", op, lerr)
			}
			continue
		}
		break
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	return out, nil
}

func (c *Client) snapshotOnce(ctx context.Context, body []byte) (path string, status int, err error) {
	u := c.URL()
	u.Path += fabricPath + "/database/snapshot"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("zt-session", c.sessionToken())
	resp, err := c.hc.Do(req)
	if err != nil {
		if cerr := classifyTLS(err, c.base, c.opts.CAFile == ""); cerr != nil {
			return "", 0, cerr
		}
		return "", 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", resp.StatusCode, fmt.Errorf("read the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var env rest_model.APIErrorEnvelope
		if json.Unmarshal(raw, &env) == nil && env.Error != nil {
			return "", resp.StatusCode, fromEnvelope(resp.StatusCode, env.Error, true)
		}
		return "", resp.StatusCode, &APIError{Status: resp.StatusCode, Message: http.StatusText(resp.StatusCode)}
	}
	var ok struct {
		Data struct {
			Path string `json:"path"`
		} `json:"data"`
	}
	if err := json.Unmarshal(raw, &ok); err != nil || ok.Data.Path == "" {
		return "", resp.StatusCode, fmt.Errorf("the controller answered 200 without the snapshot's path (%.200s)", raw)
	}
	return ok.Data.Path, resp.StatusCode, nil
}

// IsRateLimited reports whether err is the controller refusing a request for now because the same kind was
// made too recently (a database snapshot within the last minute).
func IsRateLimited(err error) bool {
	var e *APIError
	return errors.As(err, &e) && (e.Status == http.StatusTooManyRequests || e.Code == "RATE_LIMITED")
}
