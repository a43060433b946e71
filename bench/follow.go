package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pachca-export/pachca-export/simulator"
)

// FollowConfig is the follow mode's benchmark: a pachca-export follow
// process against a live simulator (events written at the wall clock),
// feeding an in-process Kafka broker and an NDJSON directory. Its first
// phase has every event on time, for the delay from created_at to the
// Kafka commit; its second publishes a share of them late, up to the
// look-back, for lost and doubled events; then an idle process, for its
// memory and its requests per cycle.
type FollowConfig struct {
	Interval, Lag, Lookback time.Duration
	Rate                    float64       // live events per second
	OnTime, Late            time.Duration // how long each phase writes events
	LateShare               float64       // of the second phase's events
	Idle                    time.Duration // the idle process's run
}

// DefaultFollowConfig is `make bench`'s: shortened settings (interval and
// lag 5 s instead of 1 m and 2 m), about four minutes.
func DefaultFollowConfig() FollowConfig {
	return FollowConfig{Interval: 5 * time.Second, Lag: 5 * time.Second, Lookback: 30 * time.Second,
		Rate: 20, OnTime: 60 * time.Second, Late: 60 * time.Second, LateShare: 0.2, Idle: 60 * time.Second}
}

// FollowResult is what the follow benchmark measured.
type FollowResult struct {
	Config FollowConfig
	// Delays from created_at to the Kafka commit of the events created
	// before any could be published late, sorted.
	Delays []time.Duration
	// Events of both phases in the simulator.
	Events int
	// Missing: events of the simulator not in Kafka (or not in the files);
	// Doubled: ids Kafka holds more than once; FileDoubled likewise in the
	// NDJSON files.
	KafkaMissing, KafkaDoubled, FileMissing, FileDoubled int
	// The idle process: peak RSS, cycles and requests.
	IdleRSS               int64
	IdleCycles, IdleCalls int
}

// Percentile is the p-th percentile (0..100) of the delays.
func (r FollowResult) Percentile(p float64) time.Duration {
	if len(r.Delays) == 0 {
		return 0
	}
	return r.Delays[min(len(r.Delays)-1, int(p/100*float64(len(r.Delays))))]
}

// RunFollow runs the follow benchmark with the pachca-export binary bin.
func RunFollow(ctx context.Context, bin, dir string, c FollowConfig) (FollowResult, error) {
	res := FollowResult{Config: c}
	work, err := os.MkdirTemp(dir, "pachca-bench-follow-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(work)

	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "audit"))
	if err != nil {
		return res, err
	}
	defer kc.Close()
	arrivals := newArrivals()
	consumeCtx, stopConsuming := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { arrivals.consume(consumeCtx, kc.ListenAddrs(), "audit") })
	defer func() { stopConsuming(); wg.Wait() }()

	sc := simulator.DefaultConfig()
	sc.Events = 0
	sc.Live = simulator.Live{Rate: c.Rate}
	sim, err := simulator.New(sc)
	if err != nil {
		return res, err
	}
	base, err := sim.Start("127.0.0.1:0")
	if err != nil {
		return res, err
	}
	defer sim.Close()

	cfg := filepath.Join(work, "pipeline.yaml")
	if err := writeFollowConfig(cfg, base, kc.ListenAddrs()[0], work, c); err != nil {
		return res, err
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, bin, "follow", "-c", cfg, "--from", start.UTC().Format(time.RFC3339Nano), "--log-level", "warn")
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("start %s: %w", bin, err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	if !sleep(ctx, c.OnTime) {
		return res, ctx.Err()
	}
	lateFrom := time.Now()
	if err := sim.SetLive(simulator.Live{Rate: c.Rate, LateShare: c.LateShare, MaxLate: c.Lookback}); err != nil {
		return res, err
	}
	if !sleep(ctx, c.Late) {
		return res, ctx.Err()
	}
	sim.StopLive()
	// Everything published is delivered within a cycle past lag + look-back.
	if !sleep(ctx, c.Lag+c.Lookback+3*c.Interval) {
		return res, ctx.Err()
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	stopped = true
	if err := cmd.Wait(); err != nil {
		return res, fmt.Errorf("follow did not stop cleanly: %w", err)
	}
	time.Sleep(2 * time.Second) // the consumer's last fetch

	// The truth: every event of the simulator from the start on, but the
	// key the configuration drops.
	var truth []simulator.Event
	for _, ev := range sim.Events() {
		if !ev.CreatedAt.Before(start) && ev.Key != "audit_events_accessed" {
			truth = append(truth, ev)
		}
	}
	// Events created before the second phase by more than the look-back
	// cannot be its late ones: their delay is the feed's own.
	onTime := lateFrom.Add(-c.Lookback)
	res.Events = len(truth)
	seen := arrivals.snapshot()
	for _, ev := range truth {
		at, ok := seen[ev.ID]
		switch {
		case !ok:
			res.KafkaMissing++
		case ev.CreatedAt.Before(onTime):
			res.Delays = append(res.Delays, at.first.Sub(ev.CreatedAt))
		}
		if ok && at.n > 1 {
			res.KafkaDoubled++
		}
	}
	slices.Sort(res.Delays)
	files, err := ndjsonIDs(filepath.Join(work, "ndjson"))
	if err != nil {
		return res, err
	}
	for _, ev := range truth {
		switch files[ev.ID] {
		case 0:
			res.FileMissing++
		case 1:
		default:
			res.FileDoubled++
		}
	}
	return res, runIdle(ctx, bin, work, c, &res)
}

// runIdle follows a workspace where nothing happens, for the memory of an
// idle process and its requests per cycle.
func runIdle(ctx context.Context, bin, work string, c FollowConfig, res *FollowResult) error {
	sc := simulator.DefaultConfig()
	sc.Events = 0
	sim, err := simulator.New(sc)
	if err != nil {
		return err
	}
	base, err := sim.Start("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer sim.Close()
	dir := filepath.Join(work, "idle")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	cfg := filepath.Join(dir, "pipeline.yaml")
	if err := writeFollowConfig(cfg, base, "", dir, c); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, bin, "follow", "-c", cfg, "--log-level", "info", "--log-format", "json")
	out, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	cycles := make(chan int, 1)
	go func() {
		n := 0
		dec := json.NewDecoder(out)
		for {
			var line struct{ Msg string }
			if err := dec.Decode(&line); err != nil {
				cycles <- n
				return
			}
			if line.Msg == "follow: cycle" {
				n++
			}
		}
	}()
	stop := make(chan struct{})
	peak := make(chan int64, 1)
	go func() { peak <- pollHWM(cmd.Process.Pid, stop) }()
	sleep(ctx, c.Idle)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	err = cmd.Wait()
	close(stop)
	res.IdleRSS, res.IdleCycles = <-peak, <-cycles
	res.IdleCalls = sim.Stats().Requests
	if err != nil {
		return fmt.Errorf("idle follow did not stop cleanly: %w", err)
	}
	return nil
}

func writeFollowConfig(path, base, broker, dir string, c FollowConfig) error {
	kafka := ""
	if broker != "" {
		kafka = fmt.Sprintf("  - type: kafka\n    brokers: [%s]\n    topic: audit\n", broker)
	}
	yaml := fmt.Sprintf(`source:
  base_url: %s
  token: sim-token
  workspace: bench
transform:
  drop_event_keys: [audit_events_accessed]
period:
  lag: %s
follow:
  interval: %s
  lookback: %s
sinks:
  - type: ndjson
    dir: %s/ndjson
    compression: none
%sstate:
  dir: %s/state
`, base, c.Lag, c.Interval, c.Lookback, dir, kafka, dir)
	return os.WriteFile(path, []byte(yaml), 0o600)
}

// arrivals records when each id first reached the Kafka consumer, and how
// many times.
type arrivals struct {
	mu sync.Mutex
	at map[string]arrival
}

type arrival struct {
	first time.Time
	n     int
}

func newArrivals() *arrivals { return &arrivals{at: map[string]arrival{}} }

func (a *arrivals) consume(ctx context.Context, brokers []string, topic string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		return
	}
	defer cl.Close()
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		now := time.Now()
		a.mu.Lock()
		for _, r := range fs.Records() {
			x := a.at[string(r.Key)]
			if x.n == 0 {
				x.first = now
			}
			x.n++
			a.at[string(r.Key)] = x
		}
		a.mu.Unlock()
	}
}

func (a *arrivals) snapshot() map[string]arrival {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]arrival, len(a.at))
	for k, v := range a.at {
		out[k] = v
	}
	return out
}

// ndjsonIDs counts the ids of the NDJSON files under dir.
func ndjsonIDs(dir string) (map[string]int, error) {
	ids := map[string]int{}
	files, err := filepath.Glob(filepath.Join(dir, "dt=*", "[^.]*.ndjson"))
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		for line := range strings.Lines(string(b)) {
			var r struct{ ID string }
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			ids[r.ID]++
		}
	}
	if len(files) == 0 {
		return nil, errors.New("the follow process wrote no NDJSON file")
	}
	return ids, nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// PrintFollow writes the follow benchmark's figures.
func PrintFollow(w io.Writer, r FollowResult) {
	c := r.Config
	fmt.Fprintf(w, "follow: interval %s, lag %s, look-back %s; %g live events/s, %s on time then %s with %.0f%% published late (up to the look-back)\n",
		c.Interval, c.Lag, c.Lookback, c.Rate, c.OnTime, c.Late, 100*c.LateShare)
	fmt.Fprintf(w, "  delay created_at -> Kafka commit (%d events on time): p50 %.1f s, p95 %.1f s, max %.1f s (target p95 <= interval + lag + 10 s = %.0f s)\n",
		len(r.Delays), r.Percentile(50).Seconds(), r.Percentile(95).Seconds(), r.Percentile(100).Seconds(), (c.Interval + c.Lag + 10*time.Second).Seconds())
	fmt.Fprintf(w, "  %d events; Kafka: %d missing, %d doubled; NDJSON files: %d missing, %d doubled\n",
		r.Events, r.KafkaMissing, r.KafkaDoubled, r.FileMissing, r.FileDoubled)
	perCycle := 0.0
	if r.IdleCycles > 0 {
		perCycle = float64(r.IdleCalls) / float64(r.IdleCycles)
	}
	fmt.Fprintf(w, "  idle process (%s): peak RSS %.1f MiB, %d cycles, %d requests (%.2f per cycle)\n",
		c.Idle, float64(r.IdleRSS)/(1<<20), r.IdleCycles, r.IdleCalls, perCycle)
}
