package follow

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"golang.org/x/net/netutil"
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
	// redact is applied to the error /readyz shows (Options.Redact).
	redact func(string) string
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

// maxConns bounds the connections the endpoints hold at once: a scraper
// or a probe holds one. More wait unaccepted, in the kernel's queue, so
// that a flood of connections cannot take the descriptors the export
// needs for its state and sinks (was: 400 slow connections under a limit
// of 200 descriptors failed every cycle with "too many open files").
const maxConns = 64

// serve serves the endpoints on ln, at most maxConns connections at once,
// closing those idle for longer than idle; what net/http itself has to say
// (an accept error) goes to log. The server's Addr is the address it
// listens on. Closing the server closes ln. redact, when not nil, is
// applied to the error /readyz shows.
func serve(ln net.Listener, idle time.Duration, log *slog.Logger, redact func(string) string) *endpoints {
	e := &endpoints{redact: redact}
	if e.redact == nil {
		e.redact = func(s string) string { return s }
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if a := e.loop.Load(); a != nil {
			a.l.readyz(w, r, e.redact)
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
	e.srv = &http.Server{Addr: ln.Addr().String(), Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: idle,
		// As every other line: JSON with --log-format json (was: net/http's
		// own plain lines on stderr).
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go e.srv.Serve(netutil.LimitListener(ln, maxConns)) // returns ErrServerClosed after Close
	return e
}

// attach makes /readyz and /metrics report l.
func (e *endpoints) attach(l *Loop) {
	e.loop.Store(&attached{l: l, metrics: l.m.Handler()})
}

// readyz is 200 once a cycle committed and while the last one did within
// three intervals, checked at each request: a cycle that hangs or retries
// an API that went away makes it 503 three intervals after the last commit,
// before the cycle ends; a failed cycle makes it 503 at once, with why,
// redacted as the command's own lines are: the error may quote an answer
// that echoes a secret sent with the request (a proxy's error page quoting
// Proxy-Authorization).
func (l *Loop) readyz(w http.ResponseWriter, _ *http.Request, redact func(string) string) {
	l.mu.Lock()
	st := l.status
	l.mu.Unlock()
	switch {
	case st.lastSuccess.IsZero() && st.lastErr == nil:
		http.Error(w, "starting: no cycle committed yet", http.StatusServiceUnavailable)
	case st.lastErr != nil:
		http.Error(w, "failing since "+st.failingSince.UTC().Format(time.RFC3339)+": "+redact(st.lastErr.Error()), http.StatusServiceUnavailable)
	case time.Since(st.lastSuccess) > 3*l.cfg.Interval:
		http.Error(w, "stalled: no cycle committed since "+st.lastSuccess.UTC().Format(time.RFC3339)+", three intervals ago or more", http.StatusServiceUnavailable)
	default:
		fmt.Fprintln(w, "ready")
	}
}
