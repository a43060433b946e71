package exporttest

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/pachca-export/pachca-export/simulator"
)

// PostGate serves a simulator's API and, while Closed is set, answers every
// POST (the alert messages) itself, with a status and body of the test's
// choosing: a POST /messages that fails or is refused while the audit log
// reads as usual.
type PostGate struct {
	URL    string // the base URL of the API behind the gate
	Closed atomic.Bool
}

// GatePosts starts a closed PostGate in front of sim, stopped with the
// test. A body starting with '{' is sent as JSON, any other as text.
func GatePosts(t testing.TB, sim *simulator.Server, status int, body string) *PostGate {
	g := &PostGate{}
	g.Closed.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.Closed.Load() || r.Method != http.MethodPost {
			sim.Handler().ServeHTTP(w, r)
			return
		}
		ct := "text/plain; charset=utf-8"
		if len(body) > 0 && body[0] == '{' {
			ct = "application/json"
		}
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	g.URL = srv.URL + simulator.BasePath
	return g
}
