package extract

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type postedRequest struct {
	method, path, auth, contentType string
	body                            string
}

// messageServer answers POST /messages with the replies in order, then 201,
// and records every request.
func messageServer(t *testing.T, replies ...reply) (*httptest.Server, func() []postedRequest) {
	var mu sync.Mutex
	var got []postedRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		mu.Lock()
		i := len(got)
		got = append(got, postedRequest{r.Method, r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), string(b)})
		mu.Unlock()
		rp := reply{status: http.StatusCreated, body: `{"data":{"id":194275}}`}
		if i < len(replies) {
			rp = replies[i]
		}
		if rp.reset {
			conn, _, err := w.(http.Hijacker).Hijack()
			require.NoError(t, err)
			conn.Close()
			return
		}
		for k, v := range rp.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(rp.status)
		w.Write([]byte(rp.body))
	}))
	t.Cleanup(srv.Close)
	return srv, func() []postedRequest {
		mu.Lock()
		defer mu.Unlock()
		return append([]postedRequest(nil), got...)
	}
}

func TestPostSendsJSON(t *testing.T) {
	srv, got := messageServer(t)
	c, _ := testClient(srv.URL + "/api/shared/v1/")
	require.NoError(t, c.Post(t.Context(), "/messages", []byte(`{"message":{"content":"hi"}}`)))
	reqs := got()
	require.Len(t, reqs, 1)
	require.Equal(t, postedRequest{
		method:      http.MethodPost,
		path:        "/api/shared/v1/messages",
		auth:        "Bearer t",
		contentType: "application/json",
		body:        `{"message":{"content":"hi"}}`,
	}, reqs[0])
	require.EqualValues(t, 1, c.Stats().Requests.Load())
}

func TestPostRetryOrFail(t *testing.T) {
	cases := []struct {
		name     string
		replies  []reply
		requests int
		errText  string // "" = success
		slept    []time.Duration
	}{
		{name: "201", requests: 1},
		{name: "200 counts as success", replies: []reply{{status: 200, body: "not even json"}}, requests: 1},
		{name: "503 with Retry-After then ok", replies: []reply{{status: 503, header: map[string]string{"Retry-After": "7"}}}, requests: 2, slept: []time.Duration{7 * time.Second}},
		{name: "500 then ok", replies: []reply{{status: 500, body: "oops"}}, requests: 2},
		{name: "reset then ok", replies: []reply{{reset: true}}, requests: 2},
		{name: "429 then ok", replies: []reply{{status: 429, header: map[string]string{"Retry-After": "0.01"}}}, requests: 2},
		{name: "gives up", replies: []reply{{status: 502}, {status: 502}, {status: 502}, {status: 502}}, requests: 4, errText: "giving up after 3 retries: server error 502"},
		{name: "403", replies: []reply{{status: 403, body: `{"error":"insufficient_scope","error_description":"The token lacks a scope"}`}}, requests: 1,
			errText: "the API refused POST /messages (403 insufficient_scope: The token lacks a scope)"},
		{name: "401", replies: []reply{{status: 401, body: `{"error":"invalid_token","error_description":"revoked"}`}}, requests: 1,
			errText: "the API refused POST /messages (401 invalid_token: revoked)"},
		{name: "422", replies: []reply{{status: 422, body: `{"errors":[{"key":"content","value":null,"message":"content cannot be empty","code":"blank","payload":null}]}`}}, requests: 1,
			errText: "the API refused POST /messages (422 blank: content cannot be empty, parameter content)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, got := messageServer(t, tc.replies...)
			c, slept := testClient(srv.URL)
			err := c.Post(t.Context(), "/messages", []byte(`{}`))
			require.Len(t, got(), tc.requests)
			if tc.errText != "" {
				require.EqualError(t, err, tc.errText)
				return
			}
			require.NoError(t, err)
			require.EqualValues(t, tc.requests-1, c.Stats().Retries.Load())
			if tc.slept != nil {
				require.Equal(t, tc.slept, *slept)
			}
		})
	}
}

// TestPostThrottledSharesLimiter: a 429 to a POST pauses the
// client's one limiter, which the audit requests wait for too.
func TestPostThrottledSharesLimiter(t *testing.T) {
	srv, got := messageServer(t, reply{status: 429, header: map[string]string{"Retry-After": "1"}})
	c, _ := testClient(srv.URL)
	c.limiter = NewLimiter(100)
	start := time.Now()
	require.NoError(t, c.Post(t.Context(), "/messages", []byte(`{}`)))
	require.GreaterOrEqual(t, time.Since(start), time.Second)
	require.Len(t, got(), 2)
	require.EqualValues(t, 1, c.Stats().Throttled.Load())
	require.Less(t, c.Limiter().Rate(), 100.0)
}

func TestPostCancelled(t *testing.T) {
	srv, got := messageServer(t, reply{status: 503}, reply{status: 503})
	c := NewClient(ClientConfig{BaseURL: srv.URL, Token: "t", MaxRetries: 5})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, c.Post(ctx, "/messages", []byte(`{}`)), context.Canceled)
	require.Empty(t, got())
}
