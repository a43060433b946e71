package alerts

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/extract"
)

// messageServer answers POST /messages with status and body, and records
// the request bodies.
func messageServer(t *testing.T, status int, body string) (*extract.Client, func() []string) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		require.Equal(t, "/api/shared/v1/messages", r.URL.Path)
		mu.Lock()
		got = append(got, string(b))
		mu.Unlock()
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	c := extract.NewClient(extract.ClientConfig{BaseURL: srv.URL + "/api/shared/v1", Token: "t", MaxRetries: 1, Timeout: 2 * time.Second})
	return c, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
}

func TestAPISenderBody(t *testing.T) {
	c, got := messageServer(t, http.StatusCreated, `{"data":{"id":1}}`)
	require.NoError(t, APISender{c}.PostMessage(t.Context(), "10001", `6 user_2fa_fail for <@12345> "quoted"`))
	require.Equal(t, []string{`{"message":{"entity_type":"user","entity_id":10001,"content":"6 user_2fa_fail for <@12345> \"quoted\""}}` + "\n"}, got())
}

func TestAPISenderErrors(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
		status           int
	}{
		{"401", `{"error":"invalid_token","error_description":"revoked"}`,
			"message to user 10001: the API refused POST /messages (401 invalid_token: revoked): check source.token; sending alerts needs a token with scope messages:create", 401},
		{"403", `{"error":"insufficient_scope","error_description":"The token lacks a scope"}`,
			"message to user 10001: the API refused POST /messages (403 insufficient_scope: The token lacks a scope): alerts need a token with scope messages:create", 403},
		{"422", `{"errors":[{"key":"content","value":null,"message":"content cannot be empty","code":"blank","payload":null}]}`,
			"message to user 10001: the API refused POST /messages (422 blank: content cannot be empty, parameter content)", 422},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, got := messageServer(t, tc.status, tc.body)
			require.EqualError(t, APISender{c}.PostMessage(t.Context(), "10001", "hello"), tc.want)
			require.Len(t, got(), 1, "a permanent refusal is not retried")
		})
	}
}

func TestAPISenderBadUserID(t *testing.T) {
	c, got := messageServer(t, http.StatusCreated, `{}`)
	for _, id := range []string{"", "0", "-5", "+5", "12a", "1.5", " 7", "2147483648", "99999999999"} {
		err := APISender{c}.PostMessage(t.Context(), id, "hello")
		require.EqualError(t, err, `message recipient "`+id+`": not a user id (a positive integer)`, id)
	}
	require.Empty(t, got(), "nothing is sent for a bad id")
	require.NoError(t, APISender{c}.PostMessage(t.Context(), "2147483647", "hello"))
}
