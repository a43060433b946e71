package extract

import (
	"net/http"
	"sync"
	"time"
)

// apiClock estimates how far the API's clock is behind this machine's from
// the Date header of its answers. A sample is this machine's time when the
// answer arrived minus its Date: the clocks' offset, plus the answer's
// travel, plus up to a second (Date is cut to the second). The least of
// the recent samples less a second is therefore at most a second below the
// offset and above it by no more than the fastest travel; when the API is
// not behind it is 0.
type apiClock struct {
	mu      sync.Mutex
	samples [16]time.Duration
	n, next int
}

// observe records the Date header of an answer that arrived at now; an
// absent or unreadable one is ignored.
func (a *apiClock) observe(date string, now time.Time) {
	t, err := http.ParseTime(date)
	if err != nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.samples[a.next] = now.Sub(t)
	a.next = (a.next + 1) % len(a.samples)
	a.n = min(a.n+1, len(a.samples))
}

// behind is the estimate, 0 before any Date was read.
func (a *apiClock) behind() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n == 0 {
		return 0
	}
	least := a.samples[0]
	for _, s := range a.samples[1:a.n] {
		least = min(least, s)
	}
	return max(least-time.Second, 0)
}

// forget drops the samples: this machine's clock stepped, and they tell
// the offset from its clock before the step.
func (a *apiClock) forget() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.n, a.next = 0, 0
}

// ForgetAPIClock drops what the answers so far told of the API's clock, as
// if none had come (APIBehind 0 until the next): for a caller that saw this
// machine's clock step, which moved every past sample's offset by the step.
func (c *Client) ForgetAPIClock() { c.clock.forget() }

// APIBehind is how far the API's clock is behind this machine's (the
// session's clock, ClientConfig.Now), as its answers' Date headers tell,
// to within a second; 0 when it is not behind, or no answer had a Date. A
// follow loop reads up to the API's now, not its own: events the API
// creates at its now would otherwise land behind the watermark.
func (c *Client) APIBehind() time.Duration { return c.clock.behind() }
