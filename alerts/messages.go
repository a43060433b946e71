package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/pachca-export/pachca-export/extract"
)

// Poster sends a JSON body to a path of the Pachca API under the client's
// limiter and retry policy; *extract.Client is one.
type Poster interface {
	Post(ctx context.Context, path string, body []byte) error
}

// APISender sends alerts as direct messages through POST /messages
// (entity_type user; the token needs scope messages:create).
type APISender struct{ API Poster }

// PostMessage sends content to user userID, a positive decimal integer (the
// API's int32 entity_id). Errors name the recipient and, for a refused
// token or scope, what the token needs. Safe for concurrent use.
func (s APISender) PostMessage(ctx context.Context, userID, content string) error {
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
	if err := s.API.Post(ctx, "/messages", body.Bytes()); err != nil {
		return fmt.Errorf("message to user %s: %w", userID, explain(err))
	}
	return nil
}

// explain adds what the token needs to a refused message.
func explain(err error) error {
	var ae *extract.APIError
	if !errors.As(err, &ae) {
		return err
	}
	switch ae.Status {
	case 401:
		return fmt.Errorf("%w: check source.token; sending alerts needs a token with scope messages:create", err)
	case 403:
		return fmt.Errorf("%w: alerts need a token with scope messages:create", err)
	case 402:
		return fmt.Errorf("%w: the workspace's plan does not allow sending this message", err)
	case 404:
		return fmt.Errorf("%w: check the recipient's user id and source.base_url", err)
	}
	return err
}

// parseUserID reads a recipient that Validate accepts (isUserID).
func parseUserID(s string) (int64, error) {
	if !isUserID(s) {
		return 0, fmt.Errorf("message recipient %q: not a user id (a positive integer)", s)
	}
	return strconv.ParseInt(s, 10, 32)
}
