package pipeline

import (
	"sync"
	"time"
)

// sinkWait is the sink call a delivery is in (opening a day, writing to
// it, committing it), for the progress log: a sink whose server accepts
// connections and then never answers (a paused MinIO, a frozen broker)
// holds a run for as long as its own timeouts allow (an S3 sink's
// timeout × max_attempts: 25 minutes by default), and "delivering" alone
// did not say on what.
type sinkWait struct {
	mu    sync.Mutex
	seq   uint64 // counts calls, so that a warning is given once per call
	sink  string
	step  string
	day   string
	since time.Time
}

// enter records that a call to sink's step for day begins; the returned
// function records its end.
func (w *sinkWait) enter(sink, step, day string) (leave func()) {
	w.mu.Lock()
	w.seq++
	seq := w.seq
	w.sink, w.step, w.day, w.since = sink, step, day, time.Now()
	w.mu.Unlock()
	return func() {
		w.mu.Lock()
		if w.seq == seq {
			w.sink = ""
		}
		w.mu.Unlock()
	}
}

// waiting is the call under way, if any, and since when.
type waiting struct {
	seq             uint64
	sink, step, day string
	since           time.Time
}

func (w *sinkWait) current() (waiting, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sink == "" {
		return waiting{}, false
	}
	return waiting{w.seq, w.sink, w.step, w.day, w.since}, true
}
