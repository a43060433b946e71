package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/testkit/logbuf"
)

func TestBadFlagsExit2WithOneLine(t *testing.T) {
	for name, args := range map[string][]string{
		"unknown flag": {"--nope"},
		"bad number":   {"--events", "many"},
		"bad time":     {"--from", "last tuesday"},
		"empty range":  {"--from", "2026-11-02", "--to", "2026-11-01"},
		"fault kind":   {"--fault-rate", "0.1", "--faults", "500,meteor"},
		"limit model":  {"--rate", "5", "--limit-model", "leaky-bucket"},
		"argument":     {"extra"},
	} {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			require.Equal(t, 2, run(t.Context(), args, &stdout, &stderr))
			require.Empty(t, stdout.String())
			line := stderr.String()
			require.True(t, strings.HasPrefix(line, "pachca-sim: "), line)
			require.Equal(t, 1, strings.Count(line, "\n"), line)
		})
	}
}

func TestHelpExits0(t *testing.T) {
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, run(t.Context(), []string{"-h"}, &stdout, &stderr))
	require.Contains(t, stderr.String(), "-accessed-events")
}

func TestServesUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	var stdout logbuf.Buffer
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"--addr", "127.0.0.1:0", "--events", "500", "--from", "2026-11-01",
			"--to", "2026-11-02T00:00:00Z", "--token", "t0k", "--rate", "100", "--faults", "500,reset"}, &stdout, io.Discard)
	}()
	var base string
	require.Eventually(t, func() bool {
		base = strings.TrimSpace(stdout.String())
		return base != ""
	}, 5*time.Second, 10*time.Millisecond)
	require.True(t, strings.HasSuffix(base, "/api/shared/v1"), base)

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet,
		base+"/audit_events?start_time=2026-11-01T00:00:00.000Z&end_time=2026-11-01T23:59:59.999Z", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer t0k")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	cancel()
	select {
	case c := <-code:
		require.Equal(t, 0, c)
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}

func TestPaginationFaultFlags(t *testing.T) {
	cfg, _, err := parseFlags([]string{"--fault-rate", "0.2", "--faults", "cursor_loop, empty_page,dup_page"}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, []string{simulator.FaultCursorLoop, simulator.FaultEmptyPage, simulator.FaultDupPage}, cfg.Faults)
	require.NoError(t, cfg.Validate())

	cfg, _, err = parseFlags(nil, io.Discard)
	require.NoError(t, err)
	require.NotContains(t, cfg.Faults, simulator.FaultCursorLoop, "a bare --fault-rate never loops")

	var stderr bytes.Buffer
	require.Equal(t, 0, run(t.Context(), []string{"-h"}, io.Discard, &stderr))
	require.Contains(t, stderr.String(), "cursor_loop")
}

func TestLimitModelFlag(t *testing.T) {
	for _, m := range simulator.LimitModels() {
		cfg, _, err := parseFlags([]string{"--rate", "50", "--limit-model", m}, io.Discard)
		require.NoError(t, err)
		require.Equal(t, m, cfg.LimitModel)
		require.NoError(t, cfg.Validate())
	}
	cfg, _, err := parseFlags(nil, io.Discard)
	require.NoError(t, err)
	require.Equal(t, simulator.LimitTokenBucket, cfg.LimitModel)
}

// TestOwnerIDFlag: a simulator started for a second workspace names
// another owner for its token, as GET /oauth/token/info does for another
// workspace's owner, so that the exporter's refusal of one workspace's
// token in another's configuration can be shown with the binaries (was:
// every simulator's token was user 10001's).
func TestOwnerIDFlag(t *testing.T) {
	cfg, _, err := parseFlags([]string{"--owner-id", "20002", "--token", "tok-globex"}, io.Discard)
	require.NoError(t, err)
	require.EqualValues(t, 20002, cfg.OwnerID)
	cfg, _, err = parseFlags(nil, io.Discard)
	require.NoError(t, err)
	require.Zero(t, cfg.OwnerID, "the default owner, 10001")
}

// TestTokensFlag: a simulator accepts further tokens from the start, so
// that a rotation can be shown with the binaries (was: one token only).
func TestTokensFlag(t *testing.T) {
	cfg, _, err := parseFlags([]string{"--tokens", "tok-a, tok-b"}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, []string{"tok-a", "tok-b"}, cfg.Tokens)
	require.NoError(t, cfg.Validate())
}
