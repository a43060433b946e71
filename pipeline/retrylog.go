package pipeline

import (
	"log/slog"
	"sync"
	"time"

	"github.com/pachca-export/pachca-export/extract"
)

// Retry logging: the first retries of an incident are logged one by one
// with their cause, so that an unreachable or failing API shows why at
// once; after that a count every retryLogEvery, so that a long outage does
// not flood the log. An incident ends after retryLogEvery without a retry.
const (
	retryLogFirst = 5
	retryLogEvery = 30 * time.Second
	// longWait: a retry waiting this long or longer is logged on its own
	// line, with when the wait ends.
	longWait = time.Minute
)

// retryLog is the API client's OnRetry for a session: it logs at warn.
// Safe for concurrent use.
type retryLog struct {
	log *slog.Logger
	now func() time.Time

	mu         sync.Mutex
	logged     int       // retries logged one by one in this incident
	pending    int64     // retries not logged since lastLine
	lastCause  string    // of the latest pending retry
	lastLine   time.Time // of the latest line about retries
	lastRetry  time.Time
	throttled  int64 // pending retries that were 429s
	incidentAt time.Time
	longUntil  time.Time // the end of the latest long wait logged
}

func newRetryLog(log *slog.Logger, now func() time.Time) *retryLog {
	return &retryLog{log: log, now: now}
}

func (l *retryLog) observe(r extract.Retry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if !l.lastRetry.IsZero() && now.Sub(l.lastRetry) >= retryLogEvery {
		l.flushLocked(now) // the previous incident is over
		l.logged = 0
	}
	if l.logged == 0 && l.pending == 0 {
		l.incidentAt = now
	}
	l.lastRetry = now
	cause := r.Err.Error()
	// A wait of a minute or more (a 429's Retry-After, up to ten minutes)
	// is said at once with its end, however many lines came before: the
	// process is otherwise silent that long. The requests in flight that
	// got the same 429 add no line.
	until := now.Add(r.Wait)
	long := r.Wait >= longWait && until.After(l.longUntil.Add(time.Second))
	if long {
		l.longUntil = until
	}
	if l.logged < retryLogFirst || long {
		if !long {
			l.logged++
		}
		l.lastLine = now
		attrs := []any{"cause", cause, "attempt", r.Attempt, "wait", r.Wait.Round(time.Millisecond).String()}
		if long {
			attrs = append(attrs, "until", until.UTC().Format(time.RFC3339))
		}
		if r.Throttled {
			attrs = append(attrs, "throttled", true)
		}
		if !long && l.logged == retryLogFirst {
			attrs = append(attrs, "next", "further retries are counted every "+retryLogEvery.String())
		}
		l.log.Warn("API request failed, retrying", attrs...)
		return
	}
	l.pending++
	l.lastCause = cause
	if r.Throttled {
		l.throttled++
	}
	if now.Sub(l.lastLine) >= retryLogEvery {
		l.flushLocked(now)
	}
}

// flush logs the retries not logged yet; the end of a plan calls it.
func (l *retryLog) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked(l.now())
}

func (l *retryLog) flushLocked(now time.Time) {
	if l.pending == 0 {
		return
	}
	l.log.Warn("API requests still failing, retrying", "retries", l.pending, "throttled", l.throttled,
		"last_cause", l.lastCause, "since", now.Sub(l.incidentAt).Round(time.Second).String())
	l.pending, l.throttled, l.lastLine = 0, 0, now
}
