package pipeline_test

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/internal/failure"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/state"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
)

// TestAnotherWorkspacesToken: a configuration whose token is swapped for
// another workspace's (a provider copies a client's configuration and
// changes only the token, which is no part of the state's key) is refused
// before anything it fetched is kept: only a workspace's owner reads
// its audit log, and the token's owner differs from the one the state's
// days were exported with (was: that workspace's events went into this
// output, and its days were marked as this one's). A workspace that
// passed to another owner goes on once the record is removed.
func TestAnotherWorkspacesToken(t *testing.T) {
	acme, acmeBase := startSim(t, func(c *simulator.Config) { c.Events = 3000 })
	other, otherBase := startSim(t, func(c *simulator.Config) { c.Events, c.Seed, c.OwnerID = 3000, 99, 20002 })
	// One base URL, as both workspaces have: the API's.
	var target atomic.Pointer[url.URL]
	point := func(base string) {
		u, err := url.Parse(base)
		require.NoError(t, err)
		target.Store(u)
	}
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target.Load()) }}
	point(acmeBase)
	api := httptest.NewServer(proxy)
	t.Cleanup(api.Close)
	cfg := testConfig(t, api.URL)
	run := func(day int) (*pipeline.Summary, error) {
		from := day0().AddDate(0, 0, day)
		return pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: from, To: from.AddDate(0, 0, 1)}, false)
	}

	_, err := run(0)
	require.NoError(t, err)
	view, err := state.Peek(cfg.State.Dir, pipeline.Identity(cfg))
	require.NoError(t, err)
	owner, ok, err := view.Owner()
	require.NoError(t, err)
	require.True(t, ok, "the first run records the token's owner")
	require.EqualValues(t, 10001, owner.UserID)

	point(otherBase)
	_, err = run(1)
	require.True(t, failure.IsUsage(err), "exit status 2: %v", err)
	require.ErrorContains(t, err, "source: the token is user 20002's (GET /oauth/token/info), but this state's days were exported with user 10001's token")
	require.ErrorContains(t, err, "remove "+view.OwnerPath()+" and run again")
	// Its first pages were fetched beside the question, and dropped.
	require.Positive(t, other.Stats().Requests)
	spool, _ := filepath.Glob(filepath.Join(cfg.State.Dir, "*", "spool", "*", "*"))
	require.Empty(t, spool, "nothing of the other workspace checkpointed")
	exporttest.Compare(t, exporttest.Expected(acme, day0(), day0().AddDate(0, 0, 1)),
		exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir), "acme")

	// The workspace passed to user 20002: the record removed, it goes on.
	require.NoError(t, os.Remove(view.OwnerPath()))
	_, err = run(1)
	require.NoError(t, err)
	owner, _, err = view.Owner()
	require.NoError(t, err)
	require.EqualValues(t, 20002, owner.UserID)

	// An API that does not tell (an older one, a proxy that forwards the
	// audit log only) leaves it unchecked, and the run goes on.
	point(acmeBase)
	tellsNothing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/oauth/token/info" {
			http.NotFound(w, r)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(tellsNothing.Close)
	cfg.Source.BaseURL = tellsNothing.URL
	fresh := t.TempDir()
	cfg.State.Dir, cfg.Sinks[0].File.Dir = filepath.Join(fresh, "state"), filepath.Join(fresh, "ndjson")
	_, err = run(0)
	require.NoError(t, err)
	view, err = state.Peek(cfg.State.Dir, pipeline.Identity(cfg))
	require.NoError(t, err)
	_, ok, err = view.Owner()
	require.NoError(t, err)
	require.False(t, ok, "no owner told, none recorded")
}
