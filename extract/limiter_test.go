package extract

import (
	"bytes"
	"container/heap"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/simulator"
)

// virtualRun describes workers that share one Limiter against one of the
// simulator's rate-limit models, in virtual time: no test here sleeps or
// depends on the speed of the machine.
type virtualRun struct {
	model      string
	serverRate float64
	burst      int // token bucket only
	clientRate float64
	workers    int
	latency    time.Duration // of an admitted request, plus [0, jitter)
	jitter     time.Duration
	// arrival is the spread of the time from a request leaving to the server
	// deciding on it, uniform in [0, arrival): the network and the scheduler.
	arrival time.Duration
	// spikes is the share of requests that reach the server later still,
	// by up to spike more (uniform): a scheduler or a network that stalls
	// now and then.
	spikes float64
	spike  time.Duration
	// late is the mean of how late a sleeping worker wakes (exponential).
	late     time.Duration
	duration time.Duration
	seed     uint64
	// noise is the share of requests a gateway answers 429 (Retry-After
	// 1 s) whatever the rate, before the model sees them.
	noise float64
	// raise, if set, replaces the server's limit by a token bucket of
	// raise.rate (burst a second of it) as soon as raise.when is true of
	// the limiter.
	raise *raise
}

type raise struct {
	when func(*Limiter) bool
	rate float64
}

// virtualResult counts what the server saw.
type virtualResult struct {
	admitted   []time.Duration // arrival of each admitted request, from the start
	throttled  int
	violations int // requests sent while they should have waited out a 429
	blocks     int
	finalRate  float64
}

// rate is the admitted requests per second over [from, to).
func (r virtualResult) rate(from, to time.Duration) float64 {
	n := 0
	for _, a := range r.admitted {
		if a >= from && a < to {
			n++
		}
	}
	return float64(n) / (to - from).Seconds()
}

func (r virtualResult) requests() int { return len(r.admitted) + r.throttled }

type vevent struct {
	at     time.Time
	seq    int
	worker int
	kind   int // wake, arrive, answer
	sent   time.Time
	ok     bool
	ra     time.Duration
}

const (
	evWake = iota
	evArrive
	evAnswer
)

type vqueue []vevent

func (q vqueue) Len() int { return len(q) }
func (q vqueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q vqueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *vqueue) Push(x any)   { *q = append(*q, x.(vevent)) }
func (q *vqueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// run plays the workers' loop (wait for the limiter, send, read the answer,
// again) until duration: the code under test is the Limiter itself.
func (v virtualRun) run(t *testing.T) virtualResult {
	t.Helper()
	cfg := simulator.DefaultConfig()
	cfg.RateLimit, cfg.LimitModel, cfg.Burst = v.serverRate, v.model, max(v.burst, 1)
	cfg.BlockAfter, cfg.BlockFor = 20, time.Minute
	srv, err := simulator.NewRateLimit(cfg)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(v.seed, 1))
	start := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(rng.IntN(1000)) * time.Millisecond)
	now := start
	l := NewLimiter(v.clientRate)
	l.now = func() time.Time { return now }
	var q vqueue
	seq := 0
	push := func(e vevent) {
		seq++
		e.seq = seq
		heap.Push(&q, e)
	}
	uniform := func(d time.Duration) time.Duration {
		if d <= 0 {
			return 0
		}
		return time.Duration(rng.Int64N(int64(d)))
	}
	for w := range v.workers {
		push(vevent{at: start, worker: w, kind: evWake})
	}
	var res virtualResult
	end := start.Add(v.duration)
	for q.Len() > 0 {
		e := heap.Pop(&q).(vevent)
		if e.at.After(end) {
			break
		}
		now = e.at
		switch e.kind {
		case evWake:
			at, ok := l.take(now, nil)
			if !ok {
				lateBy := time.Duration(rng.ExpFloat64() * float64(v.late))
				push(vevent{at: at.Add(lateBy), worker: e.worker, kind: evWake})
				continue
			}
			delay := uniform(v.arrival)
			if v.spikes > 0 && rng.Float64() < v.spikes {
				delay += uniform(v.spike)
			}
			push(vevent{at: now.Add(delay), worker: e.worker, kind: evArrive, sent: at})
		case evArrive:
			if v.raise != nil && v.raise.when(l) {
				cfg.RateLimit, cfg.LimitModel, cfg.Burst = v.raise.rate, simulator.LimitTokenBucket, int(v.raise.rate)
				srv, err = simulator.NewRateLimit(cfg)
				require.NoError(t, err)
				v.raise = nil
			}
			var verdict simulator.Verdict
			if v.noise > 0 && rng.Float64() < v.noise {
				verdict.RetryAfter = time.Second
			} else {
				verdict = srv.Allow("t", now)
			}
			if verdict.Violation {
				res.violations++
			}
			if verdict.BlockNow {
				res.blocks++
			}
			if verdict.RetryAfter > 0 {
				res.throttled++
				push(vevent{at: now.Add(200 * time.Microsecond), worker: e.worker, kind: evAnswer, sent: e.sent, ra: verdict.RetryAfter})
				continue
			}
			res.admitted = append(res.admitted, now.Sub(start))
			push(vevent{at: now.Add(v.latency + uniform(v.jitter)), worker: e.worker, kind: evAnswer, sent: e.sent, ok: true})
		case evAnswer:
			if e.ok {
				l.Succeeded(e.sent, now.Sub(e.sent))
			} else {
				l.Throttled(e.sent, e.ra)
			}
			push(vevent{at: now, worker: e.worker, kind: evWake})
		}
	}
	res.finalRate = l.Rate()
	return res
}

func (v virtualRun) String() string {
	return fmt.Sprintf("%s %g/s (burst %d), client %g/s", v.model, v.serverRate, v.burst, v.clientRate)
}

// TestLimiterAgainstEachModel: eight workers at 100 ms latency (+20 ms
// jitter) against each of the simulator's models, with requests that wake
// up late (0.5 ms on average) and reach the server with up to half a
// millisecond of jitter, for two minutes of virtual time:
//   - at the configured rate, no 429 (strict pacing: a few, once each for
//     the jitter) and 95% of the limit over the whole run (90% for pacing,
//     whose gaps cannot absorb the late wake-ups);
//   - at half and at 80% of the configured rate, 92% of it from the tenth
//     second on (a pacing server at 40 refuses the second request, and
//     one admitted request says little about its rate);
//   - at a tight 5 requests per second, 95% and no 429.
//
// Always fewer than 1% 429s, never a block. A limiter that paces at the
// configured rate exactly, or cuts by 30% at the first 429 and climbs back
// slowly, fails the first and the second.
func TestLimiterAgainstEachModel(t *testing.T) {
	base := virtualRun{workers: 8, latency: 100 * time.Millisecond, jitter: 20 * time.Millisecond,
		arrival: 500 * time.Microsecond, late: 500 * time.Microsecond, duration: 120 * time.Second}
	for _, m := range simulator.LimitModels() {
		for _, rates := range [][2]float64{{50, 50}, {25, 50}, {40, 50}, {5, 5}} {
			v := base
			v.model, v.serverRate, v.clientRate, v.burst = m, rates[0], rates[1], int(rates[0])
			for seed := range uint64(3) {
				v.seed = seed
				t.Run(fmt.Sprintf("%s seed %d", v, seed), func(t *testing.T) {
					r := v.run(t)
					whole := r.rate(0, v.duration) / v.serverRate
					settled := r.rate(10*time.Second, v.duration) / v.serverRate
					t.Logf("whole %.1f%%, settled %.1f%%, 429s %d of %d, violations %d, blocks %d, final rate %.2f",
						100*whole, 100*settled, r.throttled, r.requests(), r.violations, r.blocks, r.finalRate)
					require.Zero(t, r.blocks)
					require.LessOrEqual(t, r.violations, r.throttled, "requests sent during a Retry-After")
					require.Less(t, float64(r.throttled), 0.01*float64(r.requests()))
					switch {
					case v.serverRate < v.clientRate:
						require.GreaterOrEqual(t, settled, 0.92)
					case m == simulator.LimitPacing && v.serverRate > 10:
						require.GreaterOrEqual(t, whole, 0.90)
						require.LessOrEqual(t, r.throttled, 5)
					default:
						require.GreaterOrEqual(t, whole, 0.95)
						require.Zero(t, r.throttled)
					}
				})
			}
		}
	}
}

// TestLimiterBelowTheConfiguredRate: servers well below the configured 50
// requests a second, where the first 429s are ambiguous, over eight start
// times each (a fixed window depends on where in its second a run starts):
//   - a sliding window of 10 admits the same number after every pause:
//     tested at once, and confirmed when a higher rate fails at as many
//     again (3 429s, not 8);
//   - a pacing server admits one request each time, which bounds nothing:
//     half the estimate is a guess the search goes on from, up or down
//     (it settled at 6 requests a second when the guess was a bound);
//   - fixed windows of 35 and 45 repeat themselves after every pause, so
//     that two measures at close rates agree on a rate far below theirs
//     (52-62% of the limit when that was read as a token bucket);
//   - token buckets with a small burst repeat a small number too, and hold
//     any rate above it (54% and 69% when it was taken for a window);
//   - a token bucket of 20 refilled by a second's pause admits a test at 26
//     for 3.4 s: a test passes only once such a burst would be spent (13
//     429s in the minute when 3 s were enough, then 2% steps at the edge).
func TestLimiterBelowTheConfiguredRate(t *testing.T) {
	base := virtualRun{workers: 8, latency: 100 * time.Millisecond, jitter: 20 * time.Millisecond,
		arrival: 500 * time.Microsecond, late: 500 * time.Microsecond, duration: 60 * time.Second, clientRate: 50}
	for _, c := range []struct {
		model          string
		rate           float64
		burst          int
		whole, settled float64 // at least
		throttled      int     // at most
	}{
		{simulator.LimitSlidingWindow, 10, 0, 0.90, 0.95, 3},
		{simulator.LimitPacing, 10, 0, 0.80, 0.90, 10},
		{simulator.LimitFixedWindow, 35, 0, 0.85, 0.88, 9},
		{simulator.LimitFixedWindow, 45, 0, 0.85, 0.90, 6},
		{simulator.LimitTokenBucket, 10, 2, 0.80, 0.90, 8},
		{simulator.LimitTokenBucket, 35, 7, 0.80, 0.90, 8},
		{simulator.LimitTokenBucket, 20, 20, 0.95, 0.95, 6},
	} {
		for seed := range uint64(8) {
			v := base
			v.model, v.serverRate, v.burst, v.seed = c.model, c.rate, c.burst, seed
			t.Run(fmt.Sprintf("%s seed %d", v, seed), func(t *testing.T) {
				r := v.run(t)
				whole := r.rate(0, v.duration) / v.serverRate
				settled := r.rate(10*time.Second, v.duration) / v.serverRate
				t.Logf("whole %.1f%%, settled %.1f%%, 429s %d of %d, final rate %.2f", 100*whole, 100*settled, r.throttled, r.requests(), r.finalRate)
				require.Zero(t, r.blocks)
				require.GreaterOrEqual(t, whole, c.whole)
				require.GreaterOrEqual(t, settled, c.settled)
				require.LessOrEqual(t, r.throttled, c.throttled)
			})
		}
	}
}

// TestLimiterProbesAboveAgreedMeasures: two measures of the rate admitted
// between 429s that agree name a token bucket's rate, and the search ends
// there; a fixed window can agree with itself by chance (measures of 24 at
// 47 and 35 req/s for a window of 35, in a real run), and a server's limits
// "may change". So the rate is probed once above: here the server, a token
// bucket of 25, becomes one of 35 as soon as the two measures have agreed.
// Without the probe the limiter stays at 25 (it climbs 1% every 30 s).
func TestLimiterProbesAboveAgreedMeasures(t *testing.T) {
	v := virtualRun{model: simulator.LimitTokenBucket, serverRate: 25, burst: 25, clientRate: 50, workers: 8,
		latency: 100 * time.Millisecond, jitter: 20 * time.Millisecond, arrival: 500 * time.Microsecond,
		late: 500 * time.Microsecond, duration: 60 * time.Second}
	agreed := false
	v.raise = &raise{rate: 35, when: func(l *Limiter) bool {
		agreed = l.probeAbove > 0
		return agreed
	}}
	r := v.run(t)
	require.True(t, agreed, "the measures never agreed")
	settled := r.rate(30*time.Second, v.duration) / 35
	t.Logf("from 30 s: %.1f%% of 35, 429s %d, final rate %.2f", 100*settled, r.throttled, r.finalRate)
	require.GreaterOrEqual(t, settled, 0.92)
	require.Zero(t, r.blocks)
}

// TestLimiterPunctual: at the rates APIs grant, a request that leaves late,
// or is written to its connection late, does not shorten the gap to the
// next one, which a pacing server would refuse: every gap is a whole slot.
func TestLimiterPunctual(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	l := NewLimiter(50)
	l.now = func() time.Time { return now }
	rate := pace * 50.0
	slot := time.Duration(float64(time.Second) / rate)
	_, ok := l.take(now, nil)
	require.True(t, ok)
	now = now.Add(slot + slot/3) // late by a third of a slot
	_, ok = l.take(now, nil)
	require.True(t, ok)
	next, ok := l.take(now, nil)
	require.False(t, ok)
	require.Equal(t, now.Add(slot), next, "a whole slot after the late one")

	// A request written to its connection late moves the next turn: a
	// whole slot after the write, so the two do not reach the server
	// closer than a slot. A write on time moves nothing.
	sent := next
	now = sent
	_, ok = l.take(now, nil)
	require.True(t, ok)
	l.Wrote(sent.Add(writeSlack / 2))
	next, _ = l.take(now, nil)
	require.Equal(t, sent.Add(slot), next, "written on time")
	l.Wrote(sent.Add(time.Millisecond))
	next, _ = l.take(now, nil)
	require.Equal(t, sent.Add(time.Millisecond+slot), next, "a whole slot after the late write")
}

// TestLimiterSpacing: above 500 requests a second, a request never leaves
// before its slot; one that leaves late lets the next ones catch up on the
// schedule, up to two slots and never above the rate in any second; after a
// 429 to such a caught-up request, where full slots were all admitted,
// never again.
func TestLimiterSpacing(t *testing.T) {
	const target = 1000.0
	start := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	rate := pace * target
	slot := time.Duration(float64(time.Second) / rate)
	require.Less(t, slot, punctualSlot)
	newLimiter := func() (*Limiter, *time.Time) {
		now := start
		l := NewLimiter(target)
		l.now = func() time.Time { return now }
		return l, &now
	}
	t.Run("never early, catch up on the schedule", func(t *testing.T) {
		l, now := newLimiter()
		_, ok := l.take(*now, nil)
		require.True(t, ok)
		next, ok := l.take(*now, nil)
		require.False(t, ok)
		require.Equal(t, now.Add(slot), next)
		*now = next.Add(slot + slot/3) // late by a slot and a third
		_, ok = l.take(*now, nil)
		require.True(t, ok)
		_, ok = l.take(*now, nil)
		require.True(t, ok, "the next one was due already")
		next, ok = l.take(*now, nil)
		require.False(t, ok)
		require.Equal(t, now.Add(slot-slot/3), next, "back on the schedule")
		*now = next.Add(3 * slot) // very late: the schedule starts over
		_, ok = l.take(*now, nil)
		require.True(t, ok)
		next, _ = l.take(*now, nil)
		require.Equal(t, now.Add(slot), next)
	})
	t.Run("no more than the rate in any second", func(t *testing.T) {
		l, now := newLimiter()
		n := 0
		for end := start.Add(10 * time.Second); now.Before(end); *now = now.Add(2*slot - slot/5) {
			// Workers that wake late, all at once: the schedule lets them catch up.
			for {
				if _, ok := l.take(*now, nil); !ok {
					break
				}
				n++
			}
		}
		for i := range l.sends {
			j := i
			for j < len(l.sends) && l.sends[j].at.Sub(l.sends[i].at) < time.Second {
				j++
			}
			require.LessOrEqual(t, j-i, int(target), "requests in the second from %s", l.sends[i].at)
		}
		require.GreaterOrEqual(t, float64(n), 0.95*10*rate, "late workers keep the rate")
	})
	t.Run("a 429 to the shortest gap makes spacing strict", func(t *testing.T) {
		l, now := newLimiter()
		for range 2 * minGapSample {
			sent, ok := l.take(*now, nil)
			require.True(t, ok)
			l.Succeeded(sent, 0)
			*now = now.Add(slot)
		}
		*now = now.Add(slot / 3)
		_, ok := l.take(*now, nil)
		require.True(t, ok)
		*now = now.Add(slot - slot/3)
		short, ok := l.take(*now, nil)
		require.True(t, ok)
		l.Throttled(short, time.Second)
		require.True(t, l.strict)
		require.InDelta(t, pace*target, l.Rate(), 1e-9, "bunching, not the rate, was the problem")
		*now = now.Add(time.Second)
		_, ok = l.take(*now, nil)
		require.True(t, ok)
		*now = now.Add(slot + slot/3)
		_, ok = l.take(*now, nil)
		require.True(t, ok)
		next, _ := l.take(*now, nil)
		require.Equal(t, now.Add(slot), next, "a full slot after a late one")
	})
}

// TestLimiterUnlimited: no waiting and no bookkeeping without a rate.
func TestLimiterUnlimited(t *testing.T) {
	l := NewLimiter(0)
	for range 100 {
		at, err := l.Wait(t.Context(), 0)
		require.NoError(t, err)
		l.Throttled(at, time.Second)
	}
	_, ok := l.take(time.Now(), nil)
	require.True(t, ok)
	require.Zero(t, l.Rate())
	require.Zero(t, l.InFlight())
	require.Empty(t, l.sends)
}

// TestLimiterThroughABackgroundOf429s: a gateway in front of the limit
// answers 429 (Retry-After 1 s) to a share of the requests, whatever the
// rate. Lowering the rate does not stop them, and each costs a second
// however fast the client goes: the best is to stay at the configured rate
// and wait them out, 49 / (1 + share × 49) requests a second. Over ten
// minutes, the second half holds at least 85% of that (0.5% and 1%: 76-82%
// and 59-70% of the limit, against 78.7% and 65.8% at best). The limiter
// that read every 429 as its rate's fell to 17-30% and 8-16%, ever lower:
// each such 429 was an edge step of 2% or started a search that went down,
// and the climb of 1% came only after 30 s without a 429.
//
// Behind the same background, a sliding window of 25 is still found: the
// 429s of a rate above it come sooner than the background's, and the
// limiter does not sit above it (58-78% of the limit after the first 100 s,
// 0.5-2.2% 429s with the background's 0.5%; a limiter that took them all
// for the background would get a 429 a second).
func TestLimiterThroughABackgroundOf429s(t *testing.T) {
	base := virtualRun{model: simulator.LimitTokenBucket, serverRate: 50, burst: 50, clientRate: 50, workers: 8,
		latency: 100 * time.Millisecond, jitter: 20 * time.Millisecond, arrival: 500 * time.Microsecond,
		late: 500 * time.Microsecond, duration: 600 * time.Second}
	for _, share := range []float64{0.005, 0.01} {
		for seed := range uint64(6) {
			v := base
			v.noise, v.seed = share, seed
			t.Run(fmt.Sprintf("%g%% seed %d", 100*share, seed), func(t *testing.T) {
				r := v.run(t)
				best := 49 / (1 + share*49)
				last := r.rate(300*time.Second, v.duration)
				t.Logf("whole %.1f%%, second half %.1f%% of the limit (best %.1f%%), 429s %d of %d, final rate %.2f",
					100*r.rate(0, v.duration)/50, 100*last/50, 100*best/50, r.throttled, r.requests(), r.finalRate)
				require.Zero(t, r.blocks)
				require.LessOrEqual(t, r.violations, r.throttled, "requests sent during a Retry-After")
				require.GreaterOrEqual(t, last, 0.85*best)
			})
		}
	}
	for seed := range uint64(6) {
		v := base
		v.model, v.serverRate, v.burst, v.duration, v.noise, v.seed = simulator.LimitSlidingWindow, 25, 25, 300*time.Second, 0.005, seed
		t.Run(fmt.Sprintf("%s behind 0.5%% seed %d", v, seed), func(t *testing.T) {
			r := v.run(t)
			settled := r.rate(100*time.Second, v.duration) / v.serverRate
			share := float64(r.throttled) / float64(r.requests())
			t.Logf("after 100 s %.1f%% of the limit, 429s %.2f%%, final rate %.2f", 100*settled, 100*share, r.finalRate)
			require.Zero(t, r.blocks)
			require.GreaterOrEqual(t, settled, 0.5)
			require.Less(t, share, 0.03)
		})
	}
}

// TestThrottledLogsUTC: the debug line of a 429 says when the pause ends in
// UTC with its zone, on a host whose clock is in Moscow time (was:
// "pause_until=07:00:02.000", the host's wall time with no zone, three hours
// off the UTC of every other time the exporter shows).
func TestThrottledLogsUTC(t *testing.T) {
	var buf bytes.Buffer
	l := NewLimiter(10)
	l.log = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	now := time.Date(2026, 12, 1, 7, 0, 0, 0, time.FixedZone("MSK", 3*60*60))
	l.now = func() time.Time { return now }
	l.Throttled(now, 2*time.Second)
	require.Contains(t, buf.String(), "pause_until=04:00:02.000Z")
}

// TestThrottledLogsTheGapSent: the debug line of a 429 says how long after
// the request before this process sent the refused one, so that an operator
// can set it beside the gaps the server saw: a 429 after a gap as long as
// every admitted one is jitter on the way, not a rate too high.
func TestThrottledLogsTheGapSent(t *testing.T) {
	var buf bytes.Buffer
	l := NewLimiter(10)
	l.log = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	now := time.Date(2026, 12, 1, 7, 0, 0, 0, time.UTC)
	l.now = func() time.Time { return now }
	first, ok := l.take(now, nil)
	require.True(t, ok)
	now = now.Add(123450 * time.Microsecond)
	second, ok := l.take(now, nil)
	require.True(t, ok)
	l.Throttled(second, time.Second)
	require.Contains(t, buf.String(), "sent_gap_ms=123.45")

	buf.Reset()
	l = NewLimiter(10)
	l.log = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	l.now = func() time.Time { return now }
	l.Throttled(first, time.Second) // a request this limiter did not send
	require.Contains(t, buf.String(), "sent_gap_ms=-1")
}

// TestLimiterPacerWithArrivalSpikes: a server that paces requests (a bucket
// of one token at 50 a second), reached with stalls of up to 3 ms by 0.5% to
// 2% of the requests, as a busy scheduler or network adds them. No pace can
// avoid every 429 below a gap of the slot plus the largest stall (85.8% of
// the limit here), and each 429 costs a second's pause, the worth of 50
// requests: the limiter must settle near that pace (84-86%, with 0.1% 429s),
// not stay at 98% (a limiter that ignores the 429s: 80% with 0.4% 429s at
// 0.5% stalls, 55% with 1.6% at 2%), nor where searches that read the
// stalls' 429s as a limit far below would leave it.
func TestLimiterPacerWithArrivalSpikes(t *testing.T) {
	for _, spikes := range []float64{0.005, 0.02} {
		for seed := range uint64(3) {
			v := virtualRun{model: simulator.LimitPacing, serverRate: 50, clientRate: 50, workers: 8,
				latency: 100 * time.Millisecond, jitter: 20 * time.Millisecond, arrival: 300 * time.Microsecond,
				late: 300 * time.Microsecond, duration: 120 * time.Second, seed: seed, spikes: spikes, spike: 3 * time.Millisecond}
			t.Run(fmt.Sprintf("spikes %.3f seed %d", spikes, seed), func(t *testing.T) {
				r := v.run(t)
				settled := r.rate(10*time.Second, v.duration) / v.serverRate
				t.Logf("settled %.1f%%, whole %.1f%%, 429s %d of %d, final rate %.2f",
					100*settled, 100*r.rate(0, v.duration)/v.serverRate, r.throttled, r.requests(), r.finalRate)
				require.Zero(t, r.blocks)
				require.GreaterOrEqual(t, settled, 0.80)
				require.LessOrEqual(t, float64(r.throttled), 0.002*float64(r.requests()))
			})
		}
	}
}
