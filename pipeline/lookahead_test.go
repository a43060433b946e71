package pipeline_test

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
)

// TestStuckRequestDoesNotStallFetch: the first request of the first day
// hangs (an API that never answers it, until source.timeout): the workers go
// on fetching the days after it, beyond the lookahead of days planned
// ahead of delivery, while it hangs (was: planning stopped lookahead days
// after the held-up day, and with days of a few seconds of fetching the
// whole fetch stood still until the request timed out), and the output is
// exact.
func TestStuckRequestDoesNotStallFetch(t *testing.T) {
	t.Parallel()
	const days = 10
	sim, base := startSim(t, func(c *simulator.Config) {
		c.Events = 1200
		c.From, c.To = day0(), day0().AddDate(0, 0, days)
	})
	u, err := url.Parse(base)
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})
	var (
		mu        sync.Mutex
		held      bool // the first request of day 0 was held
		release   = make(chan struct{})
		aheadSeen bool // a request for a day beyond the lookahead came while it was held
		holding   bool
	)
	// concurrency 2: lookahead 2 days; day 4 is beyond it.
	beyond := day0().AddDate(0, 0, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start, _ := time.Parse(time.RFC3339, r.URL.Query().Get("start_time"))
		mu.Lock()
		switch {
		case !held && start.Before(day0().AddDate(0, 0, 1)) && r.URL.Query().Get("cursor") == "" && r.URL.Query().Get("limit") == "50":
			held, holding = true, true
			mu.Unlock()
			select {
			case <-release:
			case <-r.Context().Done(): // the client gave up (source.timeout)
			}
			mu.Lock()
			holding = false
			mu.Unlock()
			if r.Context().Err() != nil {
				return
			}
			proxy.ServeHTTP(w, r)
			return
		case holding && !start.Before(beyond) && !aheadSeen:
			aheadSeen = true
			close(release)
		}
		mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	cfg := testConfig(t, srv.URL+u.Path)
	cfg.Source.Concurrency = 2
	cfg.Source.Timeout = 10 * time.Second // past the fetcher's 3 s before it counts a window as held up
	from, to := day0(), day0().AddDate(0, 0, days)
	_, err = pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: from, To: to}, false)
	require.NoError(t, err)
	mu.Lock()
	require.True(t, held, "the first request of the first day was held")
	require.True(t, aheadSeen, "no request for a day beyond the lookahead while the first day's request hung: the fetch stood still")
	mu.Unlock()
	exporttest.Compare(t, exporttest.Expected(sim, from, to), exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir), "acme")
}
