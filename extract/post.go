package extract

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Post sends body, a JSON document, to POST {base}{path} (for example
// "/messages"). It waits for the shared limiter and retries exactly as Page
// does: a 429 pauses every request of the client, 5xx and network errors back
// off up to MaxRetries; other answers end with an *APIError naming the path.
// Any 2xx is success. A network error after the request was sent is retried
// too, so in rare cases the server acts twice; it is never lost silently.
// Safe for concurrent use.
func (c *Client) Post(ctx context.Context, path string, body []byte) error {
	return c.retry(ctx, func(ctx context.Context) (time.Duration, error) {
		return c.post(ctx, path, body)
	})
}

// post sends one POST with a JSON body; its errors are classified as get's are.
func (c *Client) post(ctx context.Context, path string, body []byte) (retryAfter time.Duration, err error) {
	rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, c.cfg.BaseURL+path, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("bad request URL (check source.base_url): %w", stripURL(err))
	}
	req.Header.Set("Authorization", "Bearer "+c.tokenOf(ctx))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	resp, err := c.do(req)
	if err != nil {
		return 0, c.netError("request failed", "no answer", ctx, rctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		// The server acted: an unreadable answer must not make it act again.
		n, _ := io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
		c.stats.Bytes.Add(n)
		return 0, nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	c.stats.Bytes.Add(int64(len(b)))
	ra, err := c.statusError(resp.StatusCode, resp.Header, b)
	var ae *APIError
	if errors.As(err, &ae) {
		ae.Method, ae.Path = http.MethodPost, path
	}
	return ra, err
}

// TokenInfo is what GET /oauth/token/info tells of the client's token.
type TokenInfo struct {
	// UserID is the token's owner. Only a workspace's owner has scope
	// audit_events:read, so a token that reads the audit log names its
	// workspace by this: another workspace's token has another owner.
	UserID int64
	Scopes []string
}

// TokenInfo asks GET /oauth/token/info, which any token may ask, once
// under the limiter (no retry: its callers go on without the answer): the
// token's owner (a configuration copied with another workspace's token)
// and its scopes beyond audit_events:read (messages:create, which sending
// alerts needs).
func (c *Client) TokenInfo(ctx context.Context) (TokenInfo, error) {
	const path = "/oauth/token/info"
	var ti TokenInfo
	err := c.once(ctx, func(ctx context.Context) (time.Duration, error) {
		body, ra, err := c.getBody(ctx, c.cfg.BaseURL+path)
		if err != nil {
			var ae *APIError
			if errors.As(err, &ae) {
				ae.Method, ae.Path = http.MethodGet, path
			}
			return ra, err
		}
		var info struct {
			Data *struct {
				UserID *int64   `json:"user_id"`
				Scopes []string `json:"scopes"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &info); err != nil || info.Data == nil || info.Data.UserID == nil {
			return 0, &retryableError{msg: "malformed response", err: fmt.Errorf("GET %s: no data.user_id (body starts %q)", path, snippet(c.scrub.Bytes(body)))}
		}
		ti = TokenInfo{UserID: *info.Data.UserID, Scopes: info.Data.Scopes}
		return 0, nil
	})
	return ti, err
}
