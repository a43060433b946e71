package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/simulator"
)

// TestKilledWhileSendingAlerts kills a run with SIGKILL while one of its
// alert messages is on its way, after its day is recorded exported. The
// next run sends the findings not sent yet, and not the one on its way,
// whose fate is unknown, with a warning naming it (was: every finding not
// sent yet was lost, since no run evaluates an exported day again).
func TestKilledWhileSendingAlerts(t *testing.T) {
	d0 := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -5)
	sc := simulator.DefaultConfig()
	sc.Events, sc.From, sc.To, sc.Seed = 3000, d0, d0.AddDate(0, 0, 1), 5
	sim, err := simulator.New(sc)
	require.NoError(t, err)
	base, err := sim.Start("127.0.0.1:0")
	require.NoError(t, err)
	defer sim.Close()
	var dlp int
	for _, ev := range sim.Events() {
		if ev.Key == "dlp_violation_detected" {
			dlp++
		}
	}
	require.GreaterOrEqual(t, dlp, 3)

	// The second message hangs until the client goes away.
	u, err := url.Parse(base)
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})
	var posts atomic.Int32
	var hang atomic.Bool
	hang.Store(true)
	hanging, release := make(chan struct{}), make(chan struct{})
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && posts.Add(1) == 2 && hang.Load() {
			close(hanging)
			<-release
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer gw.Close()
	defer gw.CloseClientConnections()

	cfgPath := writeConfig(t, gw.URL+u.Path, secretToken, goodConfig+`alerts:
  rules:
    - {name: DLP, kind: watch, event_keys: [dlp_violation_detected], recipients: ["10001"]}
`)
	from, to := d0.Format(time.DateOnly), d0.AddDate(0, 0, 1).Format(time.DateOnly)
	cmd := child(t, "run", "-c", cfgPath, "--from", from, "--to", to)
	var childErr bytes.Buffer
	cmd.Stderr = &childErr
	require.NoError(t, cmd.Start())
	select {
	case <-hanging:
	case <-time.After(60 * time.Second):
		close(release)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("the second message never left: %s", childErr.String())
	}
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	hang.Store(false)
	close(release)
	require.Len(t, sim.Stats().Messages, 1)

	var out, errOut bytes.Buffer
	code := Main(t.Context(), []string{"run", "-c", cfgPath, "--from", from, "--to", to}, &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	require.Contains(t, errOut.String(), "resuming an interrupted run")
	require.Contains(t, errOut.String(), "alerts: a process stopped while this message was on its way: it may not have arrived, and is not sent again")
	msgs := sim.Stats().Messages
	require.Len(t, msgs, dlp-1, "every finding but the one on its way, once")
	seen := map[string]bool{}
	for _, m := range msgs {
		require.False(t, seen[m.Content], "sent twice: %s", m.Content)
		seen[m.Content] = true
	}
	_, err = os.Stat(filepath.Join(filepath.Dir(cfgPath), "state"))
	require.NoError(t, err)

	// Once more: nothing new, and the warning is not repeated.
	errOut.Reset()
	code = Main(t.Context(), []string{"run", "-c", cfgPath, "--from", from, "--to", to}, &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	require.False(t, strings.Contains(errOut.String(), "on its way"), errOut.String())
	require.Len(t, sim.Stats().Messages, dlp-1)
}
