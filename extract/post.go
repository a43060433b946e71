package extract

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// opMessages marks the APIErrors of POST /messages.
const opMessages = "messages"

// PostMessage sends content to user userID as a direct message (POST
// /messages, entity_type user; the token needs scope messages:create). It
// waits for the shared limiter and retries exactly as Page does: a 429 pauses
// every request of the client, 5xx and network errors back off up to
// MaxRetries; other answers end with an *APIError. Any 2xx is success. A
// network error after the request was sent is retried too, so in rare cases
// a message arrives twice; it is never lost silently. userID must be a
// positive decimal integer (the API's int32 entity_id). Safe for concurrent use.
func (c *Client) PostMessage(ctx context.Context, userID string, content string) error {
	id, err := parseUserID(userID)
	if err != nil {
		return err
	}
	type message struct {
		EntityType string `json:"entity_type"`
		EntityID   int64  `json:"entity_id"`
		Content    string `json:"content"`
	}
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false) // mentions such as <@123> stay readable
	if err := enc.Encode(struct {
		Message message `json:"message"`
	}{message{EntityType: "user", EntityID: id, Content: content}}); err != nil {
		return fmt.Errorf("message to user %s: %w", userID, err)
	}
	err = c.retry(ctx, func(ctx context.Context) (time.Duration, error) {
		return c.post(ctx, c.cfg.BaseURL+"/messages", body.Bytes())
	})
	if err != nil {
		return fmt.Errorf("message to user %s: %w", userID, err)
	}
	return nil
}

// parseUserID accepts what the API takes as a user's entity_id: 1..2^31-1,
// digits only.
func parseUserID(s string) (int64, error) {
	bad := fmt.Errorf("message recipient %q: not a user id (a positive integer)", s)
	if s == "" || len(s) > 10 {
		return 0, bad
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, bad
		}
	}
	id, err := strconv.ParseInt(s, 10, 32)
	if err != nil || id < 1 {
		return 0, bad
	}
	return id, nil
}

// post sends one POST with a JSON body; its errors are classified as get's are.
func (c *Client) post(ctx context.Context, u string, body []byte) (retryAfter time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("bad request URL (check source.base_url): %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	c.stats.Requests.Add(1)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, &retryableError{msg: "request failed", err: stripURL(err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		// The message exists now: an unreadable answer must not send it again.
		n, _ := io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
		c.stats.Bytes.Add(n)
		return 0, nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	c.stats.Bytes.Add(int64(len(b)))
	ra, err := statusError(resp.StatusCode, resp.Header, b)
	var ae *APIError
	if errors.As(err, &ae) {
		ae.Op = opMessages
	}
	return ra, err
}
