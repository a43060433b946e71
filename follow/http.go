package follow

import (
	"fmt"
	"net"
	"net/http"
	"time"
)

// serve serves the HTTP endpoints on ln: /metrics (Prometheus),
// /healthz (the process answers) and /readyz (the last cycle committed,
// recently); the returned server's Addr is the address it listens on.
// Closing the server closes ln.
func (l *Loop) serve(ln net.Listener) *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", l.readyz)
	mux.Handle("GET /metrics", l.m.Handler())
	srv := &http.Server{Addr: ln.Addr().String(), Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln) // returns ErrServerClosed after Close
	return srv
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
