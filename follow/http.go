package follow

import (
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// endpoints serve /metrics (Prometheus), /healthz (the process answers) and
// /readyz (the last cycle committed, recently) from the moment the address
// is bound: opening the sinks behind a broker that does not answer can take
// minutes, and a liveness probe that gets no answer meanwhile restarts the
// process into the same wait. Until the loop is attached, /readyz and
// /metrics answer 503, starting.
type endpoints struct {
	srv  *http.Server
	loop atomic.Pointer[attached]
}

type attached struct {
	l       *Loop
	metrics http.Handler
}

// idleTimeout is how long a connection to the endpoints may wait for its
// next request: a scraper reuses its connection from one scrape to the next
// (a minute apart, commonly), while one that a client left open, never to
// use again, holds a descriptor and a goroutine for months otherwise.
const idleTimeout = 2 * time.Minute

// serve serves the endpoints on ln, closing connections idle for longer
// than idle; the server's Addr is the address it listens on. Closing the
// server closes ln.
func serve(ln net.Listener, idle time.Duration) *endpoints {
	e := &endpoints{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if a := e.loop.Load(); a != nil {
			a.l.readyz(w, r)
			return
		}
		http.Error(w, "starting: opening the sinks and loading the position", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		if a := e.loop.Load(); a != nil {
			a.metrics.ServeHTTP(w, r)
			return
		}
		http.Error(w, "starting: no metrics before the sinks are open", http.StatusServiceUnavailable)
	})
	e.srv = &http.Server{Addr: ln.Addr().String(), Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: idle}
	go e.srv.Serve(ln) // returns ErrServerClosed after Close
	return e
}

// attach makes /readyz and /metrics report l.
func (e *endpoints) attach(l *Loop) {
	e.loop.Store(&attached{l: l, metrics: l.m.Handler()})
}

// readyz is 200 once a cycle committed and while the last one did within
// three intervals, checked at each request: a cycle that hangs or retries
// an API that went away makes it 503 three intervals after the last commit,
// before the cycle ends; a failed cycle makes it 503 at once, with why.
func (l *Loop) readyz(w http.ResponseWriter, _ *http.Request) {
	l.mu.Lock()
	st := l.status
	l.mu.Unlock()
	switch {
	case st.lastSuccess.IsZero() && st.lastErr == nil:
		http.Error(w, "starting: no cycle committed yet", http.StatusServiceUnavailable)
	case st.lastErr != nil:
		http.Error(w, "failing since "+st.failingSince.UTC().Format(time.RFC3339)+": "+st.lastErr.Error(), http.StatusServiceUnavailable)
	case time.Since(st.lastSuccess) > 3*l.cfg.Interval:
		http.Error(w, "stalled: no cycle committed since "+st.lastSuccess.UTC().Format(time.RFC3339)+", three intervals ago or more", http.StatusServiceUnavailable)
	default:
		fmt.Fprintln(w, "ready")
	}
}
