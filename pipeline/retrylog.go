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
	if l.logged < retryLogFirst {
		l.logged++
		l.lastLine = now
		attrs := []any{"cause", cause, "attempt", r.Attempt, "wait", r.Wait.Round(time.Millisecond).String()}
		if r.Throttled {
			attrs = append(attrs, "throttled", true)
		}
		if l.logged == retryLogFirst {
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
