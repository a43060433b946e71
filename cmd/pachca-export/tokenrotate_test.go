package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/state"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
	"github.com/pachca-export/pachca-export/testkit/logbuf"
)

// The tokens of the rotation tests: long enough to be redacted, and
// unlike anything else in a log line.
const (
	rotTokenA     = "rotated-token-aaaa-1111"
	rotTokenB     = "rotated-token-bbbb-2222"
	rotTokenOther = "rotated-token-globex-3333"
)

// rotation is a follow process (Main, in this process) reading its token
// from a file mounted as Kubernetes mounts a Secret, against a live
// simulator behind a proxy that sees every request's token.
type rotation struct {
	t       *testing.T
	sim     *simulator.Server
	dir     string // the Secret's mount
	cfg     *config.Config
	view    *state.View
	from    time.Time
	stderr  logbuf.Buffer
	code    chan int
	cancel  context.CancelFunc
	mu      sync.Mutex
	carried map[string]int // audit_events requests by token
	// before, when set, is called with each request's token before the
	// simulator answers it; it may answer instead (true).
	before func(w http.ResponseWriter, req *http.Request, token string) bool
}

func startRotation(t *testing.T) *rotation {
	t.Helper()
	sc := simulator.DefaultConfig()
	sc.Token, sc.Events = rotTokenA, 0
	sc.Live = simulator.Live{Rate: 100}
	sim, err := simulator.New(sc)
	require.NoError(t, err)
	_, err = sim.Start("127.0.0.1:0") // for its live events; requests go through the proxy
	require.NoError(t, err)
	t.Cleanup(func() { sim.Close() })
	r := &rotation{t: t, sim: sim, dir: filepath.Join(t.TempDir(), "secret"), carried: map[string]int{}, code: make(chan int, 1)}
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		tok := strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer ")
		r.mu.Lock()
		if strings.HasSuffix(req.URL.Path, "/audit_events") {
			r.carried[tok]++
		}
		before := r.before
		r.mu.Unlock()
		if before != nil && before(w, req, tok) {
			return
		}
		sim.Handler().ServeHTTP(w, req)
	}))
	t.Cleanup(proxy.Close)
	require.NoError(t, os.Mkdir(r.dir, 0o700))
	r.write(rotTokenA + "\n")
	require.NoError(t, os.Symlink(filepath.Join("..data", "token"), filepath.Join(r.dir, "token")))
	path := writeConfig(t, proxy.URL+simulator.BasePath, "", `source:
  base_url: %BASE%
  token_file: `+filepath.Join(r.dir, "token")+`
  workspace: acme
  timeout: 5s
  requests_per_second: 200
period:
  lag: 1s
follow:
  interval: 300ms
  lookback: 2s
sinks:
  - type: ndjson
    dir: %DIR%/out
    compression: none
state:
  dir: %DIR%/state
`)
	r.cfg, err = config.Load(path, os.LookupEnv)
	require.NoError(t, err)
	r.view, err = state.Peek(r.cfg.State.Dir, pipeline.Identity(r.cfg))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	r.cancel = cancel
	r.from = time.Now().UTC().Add(-time.Second)
	go func() {
		var stdout bytes.Buffer
		r.code <- Main(ctx, []string{"follow", "-c", path, "--from", r.from.Format(time.RFC3339Nano), "--log-format", "json"}, &stdout, &r.stderr)
	}()
	t.Cleanup(cancel)
	return r
}

// write puts content into the token file the way the kubelet updates a
// Secret's files: a new directory, the link ..data swapped to it by a
// rename, the old directory removed.
func (r *rotation) write(content string) {
	r.t.Helper()
	gen, err := os.MkdirTemp(r.dir, "..gen_")
	require.NoError(r.t, err)
	require.NoError(r.t, os.WriteFile(filepath.Join(gen, "token"), []byte(content), 0o600))
	old, _ := os.Readlink(filepath.Join(r.dir, "..data"))
	require.NoError(r.t, os.Symlink(filepath.Base(gen), filepath.Join(r.dir, "..data_tmp")))
	require.NoError(r.t, os.Rename(filepath.Join(r.dir, "..data_tmp"), filepath.Join(r.dir, "..data")))
	if old != "" {
		require.NoError(r.t, os.RemoveAll(filepath.Join(r.dir, old)))
	}
}

func (r *rotation) seq() int64 {
	f, _, err := r.view.Follow()
	require.NoError(r.t, err)
	return int64(f.Seq)
}

// cycles waits for n more committed cycles, failing if the process ends.
func (r *rotation) cycles(n int64) {
	r.t.Helper()
	want := r.seq() + n
	deadline := time.Now().Add(time.Minute)
	for r.seq() < want {
		select {
		case code := <-r.code:
			r.t.Fatalf("follow ended with exit %d:\n%s", code, r.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		require.False(r.t, time.Now().After(deadline), "timed out waiting for %d cycles:\n%s", n, r.stderr.String())
	}
}

// requests is how many GET /audit_events carried token.
func (r *rotation) requests(token string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.carried[token]
}

// stop stops the process and checks that it exited 0, that every event
// up to its watermark is exported exactly once, and that no token is in
// its output.
func (r *rotation) stop() {
	r.t.Helper()
	for { // events of a few seconds under the watermark, whatever the pace of the cycles
		f, _, err := r.view.Follow()
		require.NoError(r.t, err)
		if f.Watermark.After(r.from.Add(2 * time.Second)) {
			break
		}
		r.cycles(1)
	}
	r.cancel()
	select {
	case code := <-r.code:
		require.Equal(r.t, 0, code, r.stderr.String())
	case <-time.After(time.Minute):
		r.t.Fatal("follow did not stop")
	}
	f, _, err := r.view.Follow()
	require.NoError(r.t, err)
	got := exporttest.ReadNDJSON(r.t, r.cfg.Sinks[0].File.Dir) // fails on an event twice
	want := exporttest.Expected(r.sim, r.from, f.Watermark, r.cfg.Transform.DropEventKeys...)
	require.NotEmpty(r.t, want)
	for _, e := range want {
		require.Contains(r.t, got, e.ID, "event %s at %s", e.ID, e.CreatedAt)
	}
	r.noToken()
}

func (r *rotation) noToken() {
	r.t.Helper()
	for _, tok := range []string{rotTokenA, rotTokenB, rotTokenOther, "rotated-token"} {
		require.NotContains(r.t, r.stderr.String(), tok)
	}
}

// TestFollowTokenFileRotated: a follow loop reading its token from a file
// mounted as Kubernetes mounts a Secret goes on when the token is rotated:
// the new token written into the file (the link ..data swapped), then the
// old one revoked. Every request after the swap carries the new token,
// every event lands once, and neither token is in the log, even where a
// server echoes it (was: the old token was sent until it was revoked, and
// the loop then ended with exit 2, which the systemd unit does not
// restart).
func TestFollowTokenFileRotated(t *testing.T) {
	t.Parallel()
	r := startRotation(t)
	r.cycles(2)
	r.sim.AddToken(rotTokenB, 0)
	var echo sync.Once
	r.mu.Lock()
	r.before = func(w http.ResponseWriter, req *http.Request, tok string) (answered bool) {
		if tok == rotTokenB && strings.HasSuffix(req.URL.Path, "/audit_events") {
			echo.Do(func() { // a gateway's error page that quotes the request
				w.WriteHeader(http.StatusBadGateway)
				w.Write([]byte("upstream failed for Authorization: Bearer " + tok))
				answered = true
			})
		}
		return answered
	}
	r.mu.Unlock()
	r.write(rotTokenB + "\r\n")
	r.cycles(2)
	r.sim.RevokeToken(rotTokenA)
	sentA := r.requests(rotTokenA)
	r.cycles(3)
	require.Equal(t, sentA, r.requests(rotTokenA), "the old token is sent no more")
	require.Positive(t, r.requests(rotTokenB))
	require.Contains(t, r.stderr.String(), "a new token read from")
	require.Contains(t, r.stderr.String(), "Bearer [REDACTED]", "the echo, redacted")
	r.stop()
}

// TestFollowTokenRevokedBeforeTheFileChanged: the old token revoked first
// and the new one written into the file just after, while a request with
// the old one is on its way: the API's 401 has the file read again, and
// the request is sent again with the new token instead of ending the loop
// (was: exit 2).
func TestFollowTokenRevokedBeforeTheFileChanged(t *testing.T) {
	t.Parallel()
	r := startRotation(t)
	r.cycles(2)
	var once sync.Once
	r.mu.Lock()
	r.before = func(_ http.ResponseWriter, _ *http.Request, tok string) bool {
		if tok == rotTokenA {
			once.Do(func() {
				r.sim.AddToken(rotTokenB, 0)
				r.sim.RevokeToken(rotTokenA)
				r.write(rotTokenB)
			})
		}
		return false
	}
	r.mu.Unlock()
	r.cycles(3)
	require.True(t, slices.ContainsFunc(r.sim.Stats().Log, func(q simulator.Request) bool { return q.Status == http.StatusUnauthorized }),
		"the old token was refused on its way")
	require.Positive(t, r.requests(rotTokenB))
	r.stop()
}

// TestFollowTokenFileOfAnotherOwner: a token written into the file that
// is another user's (another workspace's owner) is refused at the next
// cycle, exit 2, naming both owners, as at a start with it (was: its
// owner was checked once, at the first cycle).
func TestFollowTokenFileOfAnotherOwner(t *testing.T) {
	t.Parallel()
	r := startRotation(t)
	r.cycles(2)
	r.sim.AddToken(rotTokenOther, 20002)
	r.write(rotTokenOther)
	select {
	case code := <-r.code:
		require.Equal(t, 2, code, r.stderr.String())
	case <-time.After(time.Minute):
		t.Fatalf("the loop went on with another owner's token:\n%s", r.stderr.String())
	}
	require.Contains(t, r.stderr.String(), "the token is user 20002's (GET /oauth/token/info), but this state's days were exported with user 10001's token")
	r.noToken()
}

// TestFollowTokenFileBadContent: a content written into the token file
// that is no token (empty, a byte order mark only, a zero-width space)
// leaves the last good token in use, with one warning each; the loop goes
// on, and a good token written after is used.
func TestFollowTokenFileBadContent(t *testing.T) {
	t.Parallel()
	r := startRotation(t)
	r.cycles(1)
	for _, content := range []string{"", "\uFEFF\n", "rotated-token-\u200bbbbb-2222"} {
		r.write(content)
		r.cycles(2)
	}
	r.sim.AddToken(rotTokenB, 0)
	r.write(rotTokenB)
	r.cycles(2)
	r.sim.RevokeToken(rotTokenA)
	r.cycles(2)
	log := r.stderr.String()
	require.Equal(t, 2, strings.Count(log, "is empty: write the token into it"), log)
	require.Equal(t, 1, strings.Count(log, "holds an invisible character"), log)
	require.Equal(t, 3, strings.Count(log, `"level":"WARN"`), log)
	require.Positive(t, r.requests(rotTokenB))
	r.stop()
}

// TestRunTokenFileOfAnotherOwnerMidRun: a token of another owner written
// into the file while a run fetches its days is refused before anything
// fetched with it is committed, exit 2 (was: the run went on and
// delivered the rest of its days with it; only the next run was refused).
func TestRunTokenFileOfAnotherOwnerMidRun(t *testing.T) {
	t.Parallel()
	sc := simulator.DefaultConfig()
	sc.Token = rotTokenA
	sim, err := simulator.New(sc)
	require.NoError(t, err)
	t.Cleanup(func() { sim.Close() })
	dir := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.Mkdir(dir, 0o700))
	file := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(file, []byte(rotTokenA), 0o600))
	var mu sync.Mutex
	asked, swapped := false, false
	var after []string // the tokens of the requests after the swap
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		tok := strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer ")
		mu.Lock()
		if swapped {
			after = append(after, tok)
		}
		if asked && !swapped && strings.HasSuffix(req.URL.Path, "/audit_events") {
			// The owner was asked, with the first token: a page later the
			// file holds another workspace's.
			swapped = true
			sim.AddToken(rotTokenOther, 20002)
			require.NoError(t, os.WriteFile(file+".new", []byte(rotTokenOther), 0o600))
			require.NoError(t, os.Rename(file+".new", file))
		}
		mu.Unlock()
		sim.Handler().ServeHTTP(w, req)
		if strings.HasSuffix(req.URL.Path, "/token/info") {
			mu.Lock()
			asked = true
			mu.Unlock()
		}
	}))
	t.Cleanup(proxy.Close)
	path := writeConfig(t, proxy.URL+simulator.BasePath, "", `source:
  base_url: %BASE%
  token_file: `+file+`
  workspace: acme
  timeout: 5s
  concurrency: 1
sinks:
  - type: ndjson
    dir: %DIR%/out
state:
  dir: %DIR%/state
`)
	var stdout, stderr bytes.Buffer
	code := Main(t.Context(), []string{"run", "-c", path, "--from", pastDay(4), "--to", pastDay(1)}, &stdout, &stderr)
	require.Equal(t, 2, code, stderr.String())
	require.Contains(t, stderr.String(), "the token is user 20002's (GET /oauth/token/info)")
	mu.Lock()
	require.True(t, swapped, "the token changed during the run")
	require.Contains(t, after, rotTokenOther, "requests carried the new token")
	mu.Unlock()
	for _, tok := range []string{rotTokenA, rotTokenOther} {
		require.NotContains(t, stderr.String()+stdout.String(), tok)
	}
}

// TestTokenFileNewTokenRedacted: a token read from token_file after the
// start is added to what every line printed is scrubbed of before any
// request carries it, not only to the API client's scrubber (was: only
// the token of the start was redacted).
func TestTokenFileNewTokenRedacted(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(file, []byte(rotTokenA), 0o600))
	path := writeConfig(t, "http://127.0.0.1:1", "", "source:\n  base_url: %BASE%\n  token_file: "+file+"\n"+goodConfig[strings.Index(goodConfig, "  workspace:"):])
	var stderr bytes.Buffer
	e := newEnv(nil, io.Discard, &stderr)
	cfg, err := e.loadConfig(path, "", slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	require.NotNil(t, cfg.Source.TokenWatch)
	require.NoError(t, os.WriteFile(file+".new", []byte(rotTokenB), 0o600))
	require.NoError(t, os.Rename(file+".new", file))
	require.Equal(t, rotTokenB, cfg.Source.TokenWatch.Token())
	require.Equal(t, "[REDACTED] [REDACTED]", e.redact(rotTokenA+" "+rotTokenB))

	cfg, err = e.loadConfig(path, "flag-token-4444", slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.Nil(t, cfg.Source.TokenWatch, "--token is no file to follow")
}
