package simulator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Event is one stored audit event as GET /audit_events returns it.
type Event struct {
	ID        string
	CreatedAt time.Time // as the API writes it: whole milliseconds
	Key       string
	Raw       []byte // the exact JSON object the API returns; shared, do not modify
}

// Stats counts what the server saw. Server.Stats and GET /_sim/stats return a copy.
type Stats struct {
	Requests  int       `json:"requests"`   // API requests (audit_events and messages)
	OK        int       `json:"ok"`         // answered 2xx, not counting faulted 200s (truncated, HTML, pagination faults)
	Status429 int       `json:"status_429"` // answered 429, blocked tokens included
	Blocked   int       `json:"blocked"`    // times a token started a block for ignoring 429s
	Faults    int       `json:"faults"`     // injected faults
	Log       []Request `json:"log"`        // every GET /audit_events, in order of answer; grows without bound
	Messages  []Message `json:"messages"`   // every message accepted by POST /messages
}

// Request is one GET /audit_events as the server understood it. At is when
// the rate limit decided on it (when it came, if it was refused before: a bad
// token). Start and End are zero when absent or invalid; Status is 0 for a
// reset connection.
type Request struct {
	At       time.Time `json:"at"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	EventKey string    `json:"event_key"`
	Cursor   string    `json:"cursor"`
	Status   int       `json:"status"`
	Events   int       `json:"events"` // events in the answer
}

// Message is one direct message sent through POST /messages.
type Message struct {
	EntityType string    `json:"entity_type"`
	EntityID   int64     `json:"entity_id"`
	Content    string    `json:"content"`
	At         time.Time `json:"at"`
}

// Server simulates the Pachca API over generated events. All methods are
// safe for concurrent use.
type Server struct {
	cfg       Config
	knownKeys map[string]bool // values event_key may filter on
	limit     *RateLimit
	done      chan struct{} // closed by Close: sleeping handlers return
	liveStop  chan struct{} // closed by StopLive
	liveMu    sync.Mutex    // guards cfg.Live after Start
	liveOnce  sync.Once
	offset    atomic.Int64 // Config.ClockOffset, moved by SetClockOffset

	tokenMu sync.RWMutex      // guards tokens
	tokens  map[string]uint64 // accepted bearer tokens and their owners' user ids

	mu sync.RWMutex // guards st
	st *store

	statsMu sync.Mutex // guards stats
	stats   Stats

	faultMu   sync.Mutex // guards faultRate, faults and faultRNG
	faultRate float64
	faults    []string
	// faultRNG draws the faults: from Config.Seed, so that a run's
	// sequence of draws is the same each time (which request gets one
	// still depends on the order requests come in).
	faultRNG *rand.Rand

	lifeMu    sync.Mutex // guards srv, closed
	srv       *http.Server
	serving   sync.WaitGroup
	closed    bool
	closeOnce sync.Once
}

// New validates cfg and generates its events (about a second per million).
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("simulator: %w", err)
	}
	cfg.Faults = slices.Clone(cfg.Faults)
	limit, err := NewRateLimit(cfg)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:       cfg,
		limit:     limit,
		done:      make(chan struct{}),
		liveStop:  make(chan struct{}),
		st:        newStore(cfg.Events, cfg.skew()),
		faultRate: cfg.FaultRate,
		faults:    cfg.Faults,
		faultRNG:  rand.New(rand.NewPCG(uint64(cfg.Seed), faultStream)),
	}
	s.offset.Store(int64(cfg.ClockOffset))
	s.tokens = map[string]uint64{cfg.Token: cfg.owner()}
	for _, tok := range cfg.Tokens {
		s.tokens[tok] = cfg.owner()
	}
	s.knownKeys = map[string]bool{}
	keys := EventKeys()
	if cfg.UnknownKeys {
		keys = append(keys, UnknownEventKeys()...)
	}
	keys = append(keys, ExtraEventKeys(cfg.ExtraKeys)...)
	if cfg.OddKeys {
		keys = append(keys, OddEventKeys()...)
	}
	for _, k := range keys {
		s.knownKeys[k] = true
	}
	generate(cfg, s.st)
	return s, nil
}

// Handler serves the API under BasePath, GET /_sim/stats and the token
// controls POST /_sim/tokens and /_sim/tokens/revoke. Use it with
// httptest.NewServer; the base URL is then the server's URL + BasePath.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+BasePath+"/audit_events", s.serveAuditEvents)
	mux.HandleFunc("POST "+BasePath+"/messages", s.serveMessages)
	mux.HandleFunc("GET "+BasePath+"/oauth/token/info", s.serveTokenInfo)
	mux.HandleFunc("GET /_sim/stats", s.serveStats)
	mux.HandleFunc("POST /_sim/tokens", s.serveAddToken)
	mux.HandleFunc("POST /_sim/tokens/revoke", s.serveRevokeToken)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, http.StatusNotFound, errItem("path", r.URL.Path, "not_found", "No route matches "+r.Method+" "+r.URL.Path))
	})
	// Date is the server's clock, Config.ClockOffset included, as a real
	// server's Date is its own clock (net/http would give the wall clock).
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", s.now().UTC().Format(http.TimeFormat))
		mux.ServeHTTP(w, r)
	})
}

// Start listens on addr ("127.0.0.1:0" picks a free port) and serves in the
// background until Close. It returns the base URL, e.g.
// "http://127.0.0.1:8089/api/shared/v1". A server starts at most once.
func (s *Server) Start(addr string) (string, error) {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.closed || s.srv != nil {
		return "", errors.New("simulator: already started or closed")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("simulator: %w", err)
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	s.srv = srv
	s.serving.Add(1)
	go func() {
		defer s.serving.Done()
		_ = srv.Serve(ln) // always ErrServerClosed or a listener error after Close
	}()
	if s.liveConfig().Rate > 0 {
		s.serving.Add(1)
		go s.live() // until Close closes s.done
	}
	return "http://" + ln.Addr().String() + BasePath, nil
}

// Close stops the server started by Start, drops open connections and wakes
// handlers that sleep (latency, slow faults). Safe to call twice, or without Start.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { close(s.done) })
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	s.closed = true
	if s.srv == nil {
		return nil
	}
	err := s.srv.Close()
	s.serving.Wait()
	s.srv = nil
	return err
}

// Events returns every stored event, oldest first (created_at, then the
// order in which they were written; with Config.Disorder the log's order,
// which created_at follows only roughly), audit_events_accessed ones
// included.
func (s *Server) Events() []Event {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Event, len(s.st.order))
	for i, r := range s.st.order {
		row := &s.st.rows[r]
		out[i] = Event{ID: eventID(row.raw), CreatedAt: time.UnixMilli(row.us / 1000).UTC(), Key: s.st.keys[row.key], Raw: row.raw}
	}
	return out
}

// eventID reads the id from a rendered event, which always starts
// {"id":"<uuid>", or with Config.OddKeys {"id":"<any string>".
func eventID(raw []byte) string {
	if len(raw) > 43 && raw[43] == '"' && bytes.IndexByte(raw[7:43], '"') < 0 {
		return string(raw[7:43])
	}
	var id string
	_ = json.Unmarshal(raw[6:bytes.IndexByte(raw, ',')], &id)
	return id
}

// Stats returns a copy of the counters and logs.
func (s *Server) Stats() Stats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	c := s.stats
	c.Log = append([]Request{}, s.stats.Log...) // [] rather than null in JSON
	c.Messages = append([]Message{}, s.stats.Messages...)
	return c
}

// SetFaults changes the fault rate and kinds for the requests that follow.
// The rate is clamped to [0, 1]; unknown kinds are ignored.
func (s *Server) SetFaults(rate float64, kinds ...string) {
	known := slices.DeleteFunc(slices.Clone(kinds), func(k string) bool { return !slices.Contains(AllFaults(), k) })
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.faultRate, s.faults = min(max(rate, 0), 1), known
}

// drawFault returns the fault for this request, "" for none.
func (s *Server) drawFault() string {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	if len(s.faults) == 0 || s.faultRate <= 0 || s.faultRNG.Float64() >= s.faultRate {
		return ""
	}
	return s.faults[s.faultRNG.IntN(len(s.faults))]
}

// faultStream is the second word of the fault draws' PCG state (the
// first is Config.Seed): another stream than the events' of the same seed.
const faultStream = 0xfa0175

// sleep waits d. When the client leaves or the server closes first, it
// aborts the handler (http.ErrAbortHandler: net/http drops the connection
// quietly) so that no empty 200 goes out; deferred bookkeeping still runs.
func (s *Server) sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return
	case <-ctx.Done():
	case <-s.done:
	}
	panic(http.ErrAbortHandler)
}

// latency sleeps Latency plus a uniform share of Jitter.
func (s *Server) latency(ctx context.Context) {
	d := s.cfg.Latency
	if s.cfg.Jitter > 0 {
		d += rand.N(s.cfg.Jitter)
	}
	s.sleep(ctx, d)
}

// count updates the counters under one lock.
func (s *Server) count(f func(st *Stats)) {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	f(&s.stats)
}

func (s *Server) serveStats(w http.ResponseWriter, _ *http.Request) {
	writeJSONValue(w, http.StatusOK, s.Stats())
}
