package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/extract"
)

// TestRetryLog: the first retries of an incident are logged with their
// cause, then a count every 30 s, and the rest when the plan ends; after
// 30 s without a retry, a new incident is logged in full again.
func TestRetryLog(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	l := newRetryLog(slog.New(slog.NewJSONHandler(&buf, nil)), func() time.Time { return now })
	refused := extract.Retry{Attempt: 1, Wait: 250 * time.Millisecond, Err: errors.New("request failed: dial tcp 127.0.0.1:1: connect: connection refused")}
	lines := func() []map[string]any {
		var out []map[string]any
		for _, s := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			if s == "" {
				continue
			}
			var m map[string]any
			require.NoError(t, json.Unmarshal([]byte(s), &m))
			require.Equal(t, "WARN", m["level"])
			out = append(out, m)
		}
		buf.Reset()
		return out
	}

	for range 100 { // 100 retries within a second
		l.observe(refused)
		now = now.Add(10 * time.Millisecond)
	}
	got := lines()
	require.Len(t, got, retryLogFirst)
	require.Equal(t, "request failed: dial tcp 127.0.0.1:1: connect: connection refused", got[0]["cause"])
	require.Equal(t, "250ms", got[0]["wait"])
	require.Contains(t, got[retryLogFirst-1]["next"], "counted every 30s")

	for range 29 { // one a second
		now = now.Add(time.Second)
		l.observe(refused)
	}
	require.Empty(t, lines())
	now = now.Add(time.Second)
	l.observe(extract.Retry{Attempt: 3, Throttled: true, Err: errors.New("429 Too Many Requests")})
	got = lines()
	require.Len(t, got, 1, "a count once 30 s passed")
	require.EqualValues(t, 95+30, got[0]["retries"])
	require.EqualValues(t, 1, got[0]["throttled"])
	require.Equal(t, "429 Too Many Requests", got[0]["last_cause"])
	require.Equal(t, "31s", got[0]["since"], "since the incident began")

	now = now.Add(time.Second)
	l.observe(refused)
	l.flush()
	got = lines()
	require.Len(t, got, 1, "the end of the plan logs what is pending")
	require.EqualValues(t, 1, got[0]["retries"])
	l.flush()
	require.Empty(t, lines(), "nothing pending, nothing logged")

	now = now.Add(time.Minute) // quiet: the next failure is a new incident
	l.observe(refused)
	got = lines()
	require.Len(t, got, 1)
	require.Equal(t, "API request failed, retrying", got[0]["msg"])
}

// TestRetryLogLongWait: a wait of a minute or more (a 429's Retry-After)
// is logged at once with when it ends, even after the first lines of an
// incident, once for the requests in flight that got the same 429 (was:
// counted with the others, and the count logged only at the next retry,
// ten minutes later).
func TestRetryLogLongWait(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	l := newRetryLog(slog.New(slog.NewJSONHandler(&buf, nil)), func() time.Time { return now })
	for range retryLogFirst {
		l.observe(extract.Retry{Attempt: 1, Wait: time.Second, Err: errors.New("server error 503")})
	}
	buf.Reset()
	throttled := extract.Retry{Attempt: 1, Throttled: true, Wait: 10 * time.Minute, Err: errors.New("429 Too Many Requests")}
	for range 8 { // the workers' requests in flight, refused together
		l.observe(throttled)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 1, buf.String())
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &m))
	require.Equal(t, "WARN", m["level"])
	require.Equal(t, "10m0s", m["wait"])
	require.Equal(t, "2026-11-01T00:10:00Z", m["until"])
	require.Equal(t, true, m["throttled"])
	require.NotContains(t, m, "next")
}
