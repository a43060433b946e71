package simulator

import (
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxLimit is the largest page size GET /audit_events accepts; a larger
// limit is answered 422 invalid, as the OpenAPI document's maximum implies.
const MaxLimit = 50

// statusWriter calls onCommit once, with the status, just before the answer
// leaves: a client that has its answer finds the request in Stats already.
type statusWriter struct {
	http.ResponseWriter
	committed bool
	onCommit  func(status int)
}

// commit records status (0: no answer at all) unless done already.
func (w *statusWriter) commit(status int) {
	if !w.committed {
		w.committed = true
		w.onCommit(status)
	}
}

func (w *statusWriter) WriteHeader(code int) {
	w.commit(code)
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.commit(http.StatusOK)
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) serveAuditEvents(rw http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	rec := Request{At: time.Now(), EventKey: q.Get("event_key"), Cursor: q.Get("cursor")}
	var fault string
	w := &statusWriter{ResponseWriter: rw, onCommit: func(status int) {
		rec.Status = status
		s.count(func(st *Stats) {
			st.Requests++
			if status >= 200 && status < 300 && fault != FaultTruncate && fault != FaultHTML && !isPageFault(fault) {
				st.OK++
			}
			if status == http.StatusTooManyRequests {
				st.Status429++
			}
			st.Log = append(st.Log, rec)
		})
	}}
	defer w.commit(0) // the handler was aborted: no answer
	// The rate limit sits in front of the API, as a gateway's does: it
	// decides as the request arrives, and a 429 goes back at once.
	token, ok := s.authorize(w, r)
	if !ok {
		return
	}
	// The log's time is the limit's: its gaps are the ones it decided on.
	admitted, at := s.admitAt(w, token)
	rec.At = at
	if !admitted {
		return
	}
	s.latency(r.Context())
	fault = s.drawFault()
	switch fault {
	case "":
	case FaultSlow:
		s.count(func(st *Stats) { st.Faults++ })
		s.sleep(r.Context(), s.cfg.SlowDelay)
	case FaultTruncate, FaultCursorLoop, FaultEmptyPage, FaultDupPage: // applied to the answer below
	default:
		s.count(func(st *Stats) { st.Faults++ })
		if fault == FaultReset {
			w.commit(0)
		}
		injectFault(w, fault)
		return
	}

	switch token {
	case TokenNoScope:
		writeOAuthError(w, http.StatusForbidden, "insufficient_scope",
			"The access token lacks the scope audit_events:read, which only the workspace owner can grant")
		return
	case TokenNoPlan:
		writeAPIError(w, http.StatusPaymentRequired, errItem("plan", "", "payment_required",
			"The audit log is available on the Corporation plan only"))
		return
	}

	f, c, limit, errs := s.parseQuery(q)
	rec.Start, rec.End = usTime(f.startUs), usTime(f.endUs)
	var body []byte
	var badCursor *apiErrorItem
	shaped := false
	if len(errs) == 0 {
		body, rec.Events, shaped, badCursor = s.page(f, c, q.Get("cursor"), limit, fault)
	}
	if isPageFault(fault) {
		if shaped {
			s.count(func(st *Stats) { st.Faults++ })
		} else {
			fault = "" // nothing to shape: a normal answer
		}
	}
	if s.cfg.AccessedEvents {
		// After the query, so that an answer never holds its own access event;
		// before the answer, so that a client finds it once answered.
		s.recordAccess(r)
	}
	switch {
	case len(errs) > 0:
		status := http.StatusUnprocessableEntity
		if slices.ContainsFunc(errs, func(e apiErrorItem) bool { return e.Code == "required" }) {
			status = http.StatusBadRequest
		}
		writeAPIError(w, status, errs...)
	case badCursor != nil:
		writeAPIError(w, http.StatusUnprocessableEntity, *badCursor)
	case fault == FaultTruncate:
		s.count(func(st *Stats) { st.Faults++ })
		w.commit(http.StatusOK)
		writeTruncated(w, body)
	default:
		writeJSON(w, http.StatusOK, body)
	}
}

// authorize checks the bearer token and answers 401 when it is missing or unknown.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, _ := strings.Cut(h, " ")
	token = strings.TrimSpace(token)
	switch {
	case h == "":
		writeOAuthError(w, http.StatusUnauthorized, "invalid_token", "Access token is missing")
		return "", false
	case !strings.EqualFold(scheme, "Bearer") || !s.knownToken(token):
		writeOAuthError(w, http.StatusUnauthorized, "invalid_token", "The access token is invalid")
		return "", false
	}
	return token, true
}

// admit applies the rate limit of token and answers 429 when it is over.
func (s *Server) admit(w http.ResponseWriter, token string) bool {
	ok, _ := s.admitAt(w, token)
	return ok
}

// admitAt is admit, which also says when the limit decided.
func (s *Server) admitAt(w http.ResponseWriter, token string) (bool, time.Time) {
	v, at := s.limit.AllowNow(token)
	if v.RetryAfter == 0 {
		return true, at
	}
	if v.BlockNow {
		s.count(func(st *Stats) { st.Blocked++ })
	}
	if s.cfg.RetryAfterHTTPDate {
		// Rounded up so that a client waiting until that second is never early.
		at := s.now().Add(v.RetryAfter + time.Second - 1).Truncate(time.Second) // on the server's clock, as Date
		w.Header().Set("Retry-After", at.UTC().Format(http.TimeFormat))
	} else {
		w.Header().Set("Retry-After", strconv.Itoa(int(v.RetryAfter/time.Second)))
	}
	writeAPIError(w, http.StatusTooManyRequests, errItem("", "", "rate_limit",
		"Too many requests: retry after the time given in Retry-After"))
	return false, at
}

// parseQuery reads the query of GET /audit_events; errs lists every problem.
func (s *Server) parseQuery(q url.Values) (f filter, c *cursor, limit int, errs []apiErrorItem) {
	f = filter{key: q.Get("event_key"), actorID: q.Get("actor_id"), actorType: q.Get("actor_type"),
		entityID: q.Get("entity_id"), entityType: q.Get("entity_type")}
	var start, end time.Time
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"start_time", &start}, {"end_time", &end}} {
		v := q.Get(p.name)
		if v == "" {
			errs = append(errs, errItem(p.name, "", "required", p.name+" is required"))
			continue
		}
		t, ok := parseTime(v)
		if !ok {
			errs = append(errs, errItem(p.name, v, "invalid", p.name+" must be an ISO-8601 time such as 2025-05-01T09:11:00.000Z"))
			continue
		}
		*p.t = t
	}
	// Bounds are compared at the precision events are kept at,
	// microseconds: an event at 12:00:00.000500, written 12:00:00.000, is
	// after an end_time of 12:00:00.000 (with Config.Micros; otherwise
	// every event lies on a whole millisecond).
	if !start.IsZero() {
		f.startUs = start.UnixMicro()
		if start.Sub(time.UnixMicro(f.startUs)) > 0 {
			f.startUs++ // a bound inside a microsecond: the next whole one is the first included
		}
	}
	if !end.IsZero() {
		f.endUs = end.UnixMicro()
	}
	switch {
	case start.IsZero() || end.IsZero():
	case start.After(end):
		errs = append(errs, errItem("start_time", q.Get("start_time"), "invalid", "start_time must not be after end_time"))
	case s.cfg.MaxRange > 0 && end.Sub(start) > s.cfg.MaxRange:
		errs = append(errs, errItem("end_time", q.Get("end_time"), "invalid_date_range",
			"The date range is too large: at most "+s.cfg.MaxRange.String()+" between start_time and end_time"))
	}
	if f.key != "" && !s.knownKeys[f.key] {
		errs = append(errs, errItem("event_key", f.key, "inclusion", "event_key is not a known event type"))
	}
	limit = MaxLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxLimit {
			errs = append(errs, errItem("limit", v, "invalid", "limit must be an integer from 1 to "+strconv.Itoa(MaxLimit)))
		}
		limit = n
	}
	if v := q.Get("cursor"); v != "" {
		cur, err := decodeCursor(v)
		if err != nil {
			errs = append(errs, errItem("cursor", v, "invalid", "cursor is invalid: "+err.Error()))
		} else {
			c = &cur
		}
	}
	return f, c, limit, errs
}

// parseTime reads an ISO-8601 time: RFC 3339 with any fraction, a local
// time taken as UTC, or a date. A '+' the client did not escape arrives as ' '.
func parseTime(v string) (time.Time, bool) {
	v = strings.ReplaceAll(v, " ", "+")
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", time.DateOnly} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

func usTime(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

// page renders the answer of one valid request and counts its events; an
// unknown cursor id is the only error. fault, when a pagination fault,
// shapes the answer if the request allows (shaped reports it); rawCursor is
// the cursor as the request spelt it.
func (s *Server) page(f filter, c *cursor, rawCursor string, limit int, fault string) (body []byte, events int, shaped bool, bad *apiErrorItem) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if c != nil && c.id > uint64(len(s.st.rows)) {
		e := errItem("cursor", encodeCursor(*c), "invalid", "cursor points to no event")
		return nil, 0, false, &e
	}
	var p page
	var next string
	switch {
	case c == nil || !isPageFault(fault):
	case fault == FaultCursorLoop:
		p = s.st.query(f, c, limit)
		p.hasNext, next, shaped = true, rawCursor, true
	case fault == FaultEmptyPage:
		p = page{top: c.id, bottom: c.id, hasNext: true}
		next, shaped = encodeCursorNonce(*c, rand.Uint64()), true
	case fault == FaultDupPage && !c.asc && limit >= 2 && c.id > 0 && s.st.matches(f, int32(c.id-1)):
		p = s.st.query(f, c, limit-1)
		p.rows = slices.Insert(p.rows, 0, int32(c.id-1))
		p.top, shaped = c.id, true
	}
	if !shaped {
		p = s.st.query(f, c, limit)
	}
	if next == "" {
		next = encodeCursor(cursor{id: p.bottom})
	}
	size := 120
	for _, r := range p.rows {
		size += len(s.st.rows[r].raw) + 1
	}
	b := make([]byte, 0, size)
	b = append(b, `{"data":[`...)
	for i, r := range p.rows {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, s.st.rows[r].raw...)
	}
	b = append(b, `],"meta":{"paginate":`...)
	b = newObj(b).str("next_page", next).str("prev_page", encodeCursor(cursor{id: p.top, asc: true})).
		bool("has_next", p.hasNext).bool("has_prev", p.hasPrev).close()
	return append(b, "}}"...), len(p.rows), shaped, nil
}

// isPageFault reports whether k is a fault that shapes a page.
func isPageFault(k string) bool {
	return k == FaultCursorLoop || k == FaultEmptyPage || k == FaultDupPage
}

// recordAccess writes the audit_events_accessed event of one call, by the
// token's user, from the caller's address and user agent.
func (s *Server) recordAccess(r *http.Request) {
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	ua := r.UserAgent()
	if utf8.RuneCountInString(ua) > 255 {
		ua = string([]rune(ua)[:255])
	}
	d := draft{key: "audit_events_accessed", actorID: s.cfg.owner(), actorType: "User", entityID: s.cfg.owner(), entityType: "User", details: []byte("{}")}
	us := s.cfg.micros(s.now())
	raw := renderEvent(nil, formatUUID(rand.Uint64(), rand.Uint64()), us/1000, d, ip, ua)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.add(us, us, raw, d)
}
