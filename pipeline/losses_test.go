package pipeline_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/internal/failure"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/s3sink"
	"github.com/pachca-export/pachca-export/sinkset"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
)

// The tests of this file are the four ways issue 12 found to lose events
// while the exporter exited 0.

// TestEventsWithoutIDAreDeadLettered (loss 3): an event whose id is the
// empty string and another without an id are both dead-lettered and
// counted; the per-window de-duplication by id no longer merges them.
func TestEventsWithoutIDAreDeadLettered(t *testing.T) {
	sim, _ := startSim(t, func(c *simulator.Config) { c.Events = 1000 })
	at := day0().Add(6 * time.Hour).Format("2006-01-02T15:04:05.000Z")
	noIDs := []string{
		`{"id":"","created_at":"` + at + `","event_key":"user_login","entity_id":"1","entity_type":"user","actor_id":"1","actor_type":"user","details":{}}`,
		`{"created_at":"` + at + `","event_key":"user_logout","entity_id":"1","entity_type":"user","actor_id":"1","actor_type":"user","details":{}}`,
		`{"id":null,"created_at":"` + at + `","event_key":"user_login","entity_id":"2","entity_type":"user","actor_id":"2","actor_type":"user","details":{}}`,
	}
	url, injected := prependToFirstPage(t, sim, noIDs...)
	cfg := testConfig(t, url+simulator.BasePath)
	cfg.Source.Concurrency = 1
	from, to := day0(), day0().AddDate(0, 0, 1)
	sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: from, To: to}, false)
	require.NoError(t, err)
	require.True(t, injected.Load())
	require.EqualValues(t, len(noIDs), sum.DeadLetters, "every event without a usable id is counted")
	exporttest.Compare(t, exporttest.Expected(sim, from, to), exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir), "acme")

	files, err := filepath.Glob(filepath.Join(cfg.State.Dir, "*", "dead_letter", "dt="+from.Format(time.DateOnly), "*.ndjson"))
	require.NoError(t, err)
	require.Len(t, files, 1)
	f, err := os.Open(files[0])
	require.NoError(t, err)
	defer f.Close()
	var raws []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var dl struct{ Error, Raw string }
		require.NoError(t, json.Unmarshal(sc.Bytes(), &dl))
		require.Contains(t, dl.Error, "id")
		raws = append(raws, dl.Raw)
	}
	require.ElementsMatch(t, noIDs, raws, "each one is in the dead-letter file, as the API sent it")
}

// failingCommit is a sink whose commits fail, so that a run fetches a day
// into the spool and leaves it there undelivered.
func failingCommit(s sinks.Sink) sinks.Sink {
	return commitSink{s, func(ctx context.Context, w sinks.Writer) (sinks.Result, error) {
		return sinks.Result{}, errors.Join(errors.New("disk on fire"), w.Abort(ctx))
	}}
}

// commitSink is a sink whose writers commit with commit instead.
type commitSink struct {
	sinks.Sink
	commit func(ctx context.Context, w sinks.Writer) (sinks.Result, error)
}

func (s commitSink) Open(ctx context.Context, p sinks.Partition) (sinks.Writer, error) {
	w, err := s.Sink.Open(ctx, p)
	if err != nil {
		return nil, err
	}
	return commitWriter{w, s.commit}, nil
}

type commitWriter struct {
	sinks.Writer
	commit func(ctx context.Context, w sinks.Writer) (sinks.Result, error)
}

func (w commitWriter) Commit(ctx context.Context) (sinks.Result, error) {
	return w.commit(ctx, w.Writer)
}

// logBuffer is a logger whose records a test can read.
func logBuffer() (*slog.Logger, *bytes.Buffer) {
	var b bytes.Buffer
	return slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug})), &b
}

// TestHalfCutCheckpointIsFetchedAgain (loss 2): a spool file of a day not
// yet delivered, cut to half its size, is never delivered as if whole: the
// next run removes it with a warning naming it, fetches its window again,
// and delivers the exact day.
func TestHalfCutCheckpointIsFetchedAgain(t *testing.T) {
	sim, base := startSim(t, func(c *simulator.Config) { c.Events = 3000 })
	cfg := testConfig(t, base)
	from, to := day0(), day0().AddDate(0, 0, 1)
	set, err := sinkset.Build(t.Context(), cfg.Sinks, nil)
	require.NoError(t, err)
	_, err = pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t), Sinks: []sinks.Sink{failingCommit(set.Sinks[0])}},
		pipeline.Range{From: from, To: to}, false)
	require.ErrorContains(t, err, "disk on fire")

	spooled, err := filepath.Glob(filepath.Join(cfg.State.Dir, "*", "spool", from.Format(time.DateOnly), "*.ndjson"))
	require.NoError(t, err)
	require.NotEmpty(t, spooled, "the fetched day waits in the spool")
	var biggest string
	var size int64
	for _, p := range spooled {
		fi, err := os.Stat(p)
		require.NoError(t, err)
		if fi.Size() > size {
			biggest, size = p, fi.Size()
		}
	}
	require.NoError(t, os.Truncate(biggest, size/2))
	before := sim.Stats().Requests

	log, logs := logBuffer()
	sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: log}, pipeline.Range{From: from, To: to}, false)
	require.NoError(t, err, logs.String())
	require.Contains(t, logs.String(), "a damaged checkpoint was removed")
	require.Contains(t, logs.String(), biggest, "the warning names the file")
	require.Greater(t, sim.Stats().Requests, before, "the window of the damaged file was fetched again")
	want := exporttest.Expected(sim, from, to)
	require.EqualValues(t, len(want), sum.Events)
	require.Zero(t, sum.DeadLetters, "no cut line sent to the dead letters")
	exporttest.Compare(t, want, exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir), "acme")
}

// TestDamagedExportedRecordStopsTheRun: a record of exported days cut short
// is never read as empty (which would re-plan and rewrite days): the run
// stops before fetching, with a permanent error naming the file and how to
// recover.
func TestDamagedExportedRecordStopsTheRun(t *testing.T) {
	today := time.Now().UTC().Truncate(24 * time.Hour)
	sim, base := startSim(t, func(c *simulator.Config) {
		c.Events, c.From, c.To = 1000, today.AddDate(0, 0, -3), today
	})
	cfg := testConfig(t, base)
	_, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{}, false)
	require.NoError(t, err)
	paths, err := filepath.Glob(filepath.Join(cfg.State.Dir, "*", "exported.json"))
	require.NoError(t, err)
	require.Len(t, paths, 1)
	b, err := os.ReadFile(paths[0])
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(paths[0], b[:len(b)/2], 0o600))
	before := sim.Stats().Requests

	_, err = pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{}, false)
	require.Error(t, err)
	require.True(t, failure.IsPermanent(err), "%v", err)
	require.ErrorContains(t, err, paths[0]+" is damaged")
	require.ErrorContains(t, err, "restore it from a backup")
	require.Equal(t, before, sim.Stats().Requests, "nothing fetched")
}

// fileSums maps every file under the dirs to its sha256.
func fileSums(t *testing.T, dirs ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, dir := range dirs {
		for _, rel := range filesUnder(t, dir) {
			b, err := os.ReadFile(filepath.Join(dir, rel))
			require.NoError(t, err)
			out[filepath.Join(dir, rel)] = sinks.Sum(b)
		}
	}
	return out
}

// withParquet adds a Parquet sink next to the NDJSON one.
func withParquet(t *testing.T, cfg *config.Config) {
	cfg.Sinks = append(cfg.Sinks, config.Sink{Type: "parquet", File: &config.FileSink{Dir: filepath.Join(t.TempDir(), "parquet")}})
	require.NoError(t, cfg.Validate())
}

// TestFilteredRunRefusedOnNightlyOutput (loss 1): a one-off run with a
// filter and the nightly job's sinks is refused before it fetches or writes
// anything (a usage error: exit 2) naming the sink and the differing key;
// the nightly files stay byte for byte. Given its own directories it runs.
func TestFilteredRunRefusedOnNightlyOutput(t *testing.T) {
	sim, base := startSim(t, func(c *simulator.Config) { c.Events = 4000 })
	cfg := testConfig(t, base)
	withParquet(t, cfg)
	from, to := day0(), day0().AddDate(0, 0, 2)
	_, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: from, To: to}, false)
	require.NoError(t, err)
	nd, pq := cfg.Sinks[0].File.Dir, cfg.Sinks[1].File.Dir
	before := fileSums(t, nd, pq)
	requests := sim.Stats().Requests

	filtered := *cfg
	filtered.Source.Filters.EventKeys = []string{"user_2fa_fail"}
	_, err = pipeline.Run(t.Context(), pipeline.Options{Config: &filtered, Logger: testLogger(t)}, pipeline.Range{From: from, To: to}, false)
	require.Error(t, err)
	t.Log(err)
	require.True(t, failure.IsUsage(err), "exit status 2: %v", err)
	for _, want := range []string{
		"sinks[0] ndjson " + nd, "sinks[1] parquet " + pq,
		`source.filters.event_keys: ["user_2fa_fail"] here, [] there`,
		"give this configuration another location",
	} {
		require.ErrorContains(t, err, want)
	}
	require.Equal(t, before, fileSums(t, nd, pq), "the nightly files are untouched")
	require.Equal(t, requests, sim.Stats().Requests, "nothing fetched")

	// Elsewhere, the same filtered run is fine.
	filtered.Sinks = []config.Sink{{Type: "ndjson", File: &config.FileSink{Dir: filepath.Join(t.TempDir(), "2fa")}}}
	_, err = pipeline.Run(t.Context(), pipeline.Options{Config: &filtered, Logger: testLogger(t)}, pipeline.Range{From: from, To: to}, false)
	require.NoError(t, err)
	var want []simulator.Event
	for _, ev := range exporttest.Expected(sim, from, to) {
		if ev.Key == "user_2fa_fail" {
			want = append(want, ev)
		}
	}
	exporttest.Compare(t, want, exporttest.ReadNDJSON(t, filtered.Sinks[0].File.Dir), "acme")
}

// switchable serves one simulator, then another from the same address: the
// API as it was, then as it is later.
type switchable struct {
	srv     *httptest.Server
	current atomic.Pointer[simulator.Server]
}

func newSwitchable(t *testing.T, first *simulator.Server) *switchable {
	s := &switchable{}
	s.current.Store(first)
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.current.Load().Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *switchable) base() string { return s.srv.URL + simulator.BasePath }

func newSim(t *testing.T, mutate func(*simulator.Config)) *simulator.Server {
	sc := simulator.DefaultConfig()
	sc.From, sc.To, sc.Seed = day0(), day0().AddDate(0, 0, 2), 7
	mutate(&sc)
	sim, err := simulator.New(sc)
	require.NoError(t, err)
	return sim
}

// TestBackfillPastRetentionSkipped (loss 4): a backfill rerun over a day
// that has passed the API's retention (the API now returns nothing for it)
// skips the day with a warning: nothing fetched, its files unchanged, exit 0.
func TestBackfillPastRetentionSkipped(t *testing.T) {
	full := newSim(t, func(c *simulator.Config) { c.Events, c.To = 2000, day0().AddDate(0, 0, 1) })
	api := newSwitchable(t, full)
	cfg := testConfig(t, api.base())
	from, to := day0(), day0().AddDate(0, 0, 1)
	_, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: from, To: to}, false)
	require.NoError(t, err)
	out := cfg.Sinks[0].File.Dir
	before := fileSums(t, out)

	// Later: the day has left the retention, and the API has nothing for it.
	api.current.Store(newSim(t, func(c *simulator.Config) { c.Events = 0 }))
	cfg.Period.Retention = time.Since(to) - time.Hour
	log, logs := logBuffer()
	sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: log}, pipeline.Range{From: from, To: to}, false)
	require.NoError(t, err, logs.String())
	require.Empty(t, sum.Days)
	require.Zero(t, sum.Requests, "nothing fetched")
	require.Contains(t, logs.String(), "wholly past the API's retention are skipped")
	require.Contains(t, logs.String(), from.Format(time.DateOnly))
	require.Equal(t, before, fileSums(t, out), "the day's files are untouched")
	exporttest.Compare(t, exporttest.Expected(full, from, to), exporttest.ReadNDJSON(t, out), "acme")
}

// TestFewerEventsRefusedUnlessReplace: when the API returns fewer events for
// a day than its files hold, that day is refused (files unchanged, not
// recorded) while the other days are delivered, and the run fails (exit 1)
// naming the day and --replace; with Replace the day is replaced.
func TestFewerEventsRefusedUnlessReplace(t *testing.T) {
	before := newSim(t, func(c *simulator.Config) { c.Events = 2000 }) // days 0 and 1
	api := newSwitchable(t, before)
	cfg := testConfig(t, api.base())
	withParquet(t, cfg)
	from, to := day0(), day0().AddDate(0, 0, 3)
	_, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: from, To: to}, false)
	require.NoError(t, err)
	nd, pq := cfg.Sinks[0].File.Dir, cfg.Sinks[1].File.Dir
	day0Files := func() map[string]string {
		all := fileSums(t, nd, pq)
		for p := range all {
			if !strings.Contains(p, "dt="+from.Format(time.DateOnly)) {
				delete(all, p)
			}
		}
		return all
	}
	kept := day0Files()

	// Now the API has nothing on day 0, and more on days 1 and 2.
	after := newSim(t, func(c *simulator.Config) {
		c.Events, c.From, c.To, c.Seed = 6000, day0().AddDate(0, 0, 1), day0().AddDate(0, 0, 3), 8
	})
	api.current.Store(after)
	sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: from, To: to}, false)
	require.Error(t, err)
	t.Log(err)
	require.False(t, failure.IsUsage(err), "exit status 1")
	var refused *pipeline.RefusedError
	require.ErrorAs(t, err, &refused)
	require.Len(t, refused.Days, 1)
	require.Equal(t, from.Format(time.DateOnly), refused.Days[0].Day)
	require.ErrorContains(t, err, "this run has 0")
	require.ErrorContains(t, err, "--replace")
	require.Equal(t, []string{day0().AddDate(0, 0, 1).Format(time.DateOnly), day0().AddDate(0, 0, 2).Format(time.DateOnly)}, sum.Days,
		"the other days are delivered")
	require.Equal(t, kept, day0Files(), "the refused day's files are untouched")

	// A deliberate replacement.
	sum, err = pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t), Replace: true}, pipeline.Range{From: from, To: to}, false)
	require.NoError(t, err)
	require.Equal(t, []string{from.Format(time.DateOnly)}, sum.Days, "only the refused day was left to do")
	exporttest.Compare(t, exporttest.Expected(after, from, to), exporttest.ReadNDJSON(t, nd), "acme")
}

// TestRefusedDayKeepsTheChain: a day refused in the middle of a block of
// consecutive days keeps its files, and its manifest is linked to the day
// before it, rewritten by the same run: the chain holds.
func TestRefusedDayKeepsTheChain(t *testing.T) {
	sim, _ := startSim(t, func(c *simulator.Config) { c.Events = 3000 })
	emptyDay1 := atomic.Bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start, _ := time.Parse(time.RFC3339Nano, r.URL.Query().Get("start_time"))
		if emptyDay1.Load() && !start.Before(day0().AddDate(0, 0, 1)) && start.Before(day0().AddDate(0, 0, 2)) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"data":[],"meta":{"paginate":{"has_next":false}}}`))
			return
		}
		sim.Handler().ServeHTTP(w, r)
	}))
	defer srv.Close()
	cfg := testConfig(t, srv.URL+simulator.BasePath)
	cfg.Source.Concurrency = 1 // one window per day: the empty answers cover exactly day 1
	from, to := day0(), day0().AddDate(0, 0, 3)
	_, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: from, To: to}, false)
	require.NoError(t, err)
	out := cfg.Sinks[0].File.Dir
	manifest := func(n int) []byte {
		b, err := os.ReadFile(filepath.Join(out, "dt="+day0().AddDate(0, 0, n).Format(time.DateOnly), sinks.ManifestName))
		require.NoError(t, err)
		return b
	}
	day1 := manifest(1)

	emptyDay1.Store(true)
	sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: from, To: to}, false)
	var refused *pipeline.RefusedError
	require.ErrorAs(t, err, &refused)
	require.Equal(t, day0().AddDate(0, 0, 1).Format(time.DateOnly), refused.Days[0].Day)
	require.Len(t, sum.Days, 2)
	for n := 1; n <= 2; n++ {
		m, err := sinks.DecodeManifest(manifest(n))
		require.NoError(t, err)
		require.Equal(t, sinks.Sum(manifest(n-1)), m.Previous, "day %d links to the day before", n)
	}
	m1, err := sinks.DecodeManifest(manifest(1))
	require.NoError(t, err)
	old, err := sinks.DecodeManifest(day1)
	require.NoError(t, err)
	require.Equal(t, old.Files, m1.Files, "the refused day's files are as they were")
}

// TestPartialRangeThenWholeDay: a one-off range inside a day, then the
// whole day (the nightly run after an ad-hoc backfill), leaves each event
// once in every file sink: the whole day's file replaces the partial one.
// A range inside a day exported whole is not written again, and a
// configuration with another state directory, which does not know the day
// is exported, is refused it: the day's file holds its events already.
func TestPartialRangeThenWholeDay(t *testing.T) {
	sim, base := startSim(t, func(c *simulator.Config) { c.Events = 3000 })
	cfg := testConfig(t, base)
	withParquet(t, cfg)
	nd, pq := cfg.Sinks[0].File.Dir, cfg.Sinks[1].File.Dir
	run := func(cfg *config.Config, from, to time.Time) *pipeline.Summary {
		t.Helper()
		sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: from, To: to}, false)
		require.NoError(t, err)
		return sum
	}
	dayFiles := func(dir string) []string {
		t.Helper()
		files, err := filepath.Glob(filepath.Join(dir, "dt="+day0().Format(time.DateOnly), "pachca-audit-*"))
		require.NoError(t, err)
		for i := range files {
			files[i] = filepath.Base(files[i])
		}
		return files
	}
	exact := func() {
		t.Helper()
		want := exporttest.Expected(sim, day0(), day0().AddDate(0, 0, 1))
		exporttest.Compare(t, want, exporttest.ReadNDJSON(t, nd), "acme") // fails on an id twice
		exporttest.Compare(t, want, exporttest.ReadParquet(t, pq), "acme")
		require.Equal(t, []string{"pachca-audit-" + day0().Format(time.DateOnly) + ".ndjson.gz"}, dayFiles(nd))
		require.Equal(t, []string{"pachca-audit-" + day0().Format(time.DateOnly) + ".parquet"}, dayFiles(pq))
	}

	run(cfg, day0(), day0().Add(12*time.Hour))
	require.Len(t, dayFiles(nd), 1, "the partial file")
	run(cfg, day0(), day0().AddDate(0, 0, 1))
	exact()

	// A range inside the day exported whole: nothing written.
	sum := run(cfg, day0().Add(6*time.Hour), day0().Add(18*time.Hour))
	require.Empty(t, sum.Days)
	exact()

	// Another state directory does not know the day is exported: its
	// partial range is refused, and its whole day replaces the day's file.
	other := *cfg
	other.State.Dir = filepath.Join(t.TempDir(), "state")
	sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: &other, Logger: testLogger(t)},
		pipeline.Range{From: day0().Add(12 * time.Hour), To: day0().AddDate(0, 0, 1)}, false)
	var refused *pipeline.RefusedError
	require.ErrorAs(t, err, &refused)
	require.ErrorContains(t, err, "the day is held whole here")
	require.Len(t, sum.Refused, 1)
	exact()
	run(&other, day0(), day0().AddDate(0, 0, 1))
	exact()
}

// TestNoCredentialsInIdentities: a user and password in base_url (a proxy
// that wants them) are left out of the state's identity and the sink's
// marker, which readers of the output can read: the same data, the same
// identity, and no password written anywhere.
func TestNoCredentialsInIdentities(t *testing.T) {
	_, base := startSim(t, func(c *simulator.Config) { c.Events = 500 })
	cfg := testConfig(t, base)
	plain := pipeline.Identity(cfg)
	data := pipeline.DataIdentity(cfg)
	cfg.Source.BaseURL = strings.Replace(base, "http://", "http://proxyuser:S3CR3T-pw@", 1)
	require.Equal(t, plain, pipeline.Identity(cfg))
	require.Equal(t, data, pipeline.DataIdentity(cfg))
	// The same for an S3 endpoint's (a state's key.json holds the identity).
	withS3 := *cfg
	withS3.Sinks = append(slices.Clone(cfg.Sinks), config.Sink{Type: "s3", S3: &s3sink.Config{Bucket: "b", Format: "parquet",
		Endpoint: "http://minioadmin:S3CR3T-pw@127.0.0.1:9000"}})
	id, err := json.Marshal(pipeline.Identity(&withS3))
	require.NoError(t, err)
	require.NotContains(t, string(id), "S3CR3T-pw")
	require.Contains(t, string(id), "http://127.0.0.1:9000")
	_, err = pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: day0(), To: day0().AddDate(0, 0, 1)}, false)
	require.NoError(t, err)
	for _, root := range []string{cfg.State.Dir, cfg.Sinks[0].File.Dir} {
		require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			require.NotContains(t, string(b), "S3CR3T-pw", p)
			return nil
		}))
	}
}

// TestSinkCheckFailureHasItsDuration: a run that fails when its sinks are
// checked (retries of an unreachable store can take a while) reports the
// time it took, in the summary and so in the metrics, not 0.
func TestSinkCheckFailureHasItsDuration(t *testing.T) {
	_, base := startSim(t, func(c *simulator.Config) { c.Events = 100 })
	cfg := testConfig(t, base)
	cfg.Sinks[0].File.Dir = "/proc/not-writable"
	sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: day0(), To: day0().AddDate(0, 0, 1)}, false)
	require.Error(t, err)
	require.NotNil(t, sum)
	require.Positive(t, sum.Duration)
}

// TestSameIDDifferentEventDeadLettered: two different events with one id in
// a window are not merged silently: one is delivered, the other goes to
// the dead letters, counted and warned of. The same event twice (a page
// repeating one) is still kept once, with nothing dead-lettered.
func TestSameIDDifferentEventDeadLettered(t *testing.T) {
	sim, _ := startSim(t, func(c *simulator.Config) { c.Events = 1000 })
	at := func(min int) string {
		return day0().Add(6*time.Hour + time.Duration(min)*time.Minute).Format("2006-01-02T15:04:05.000Z")
	}
	role := `{"id":"same-id","created_at":"` + at(1) + `","event_key":"user_role_changed","entity_id":"7","entity_type":"user","actor_id":"666","actor_type":"user","ip_address":"10.6.6.6","details":{"new_company_role":"admin","previous_company_role":"user"}}`
	login := `{"id":"same-id","created_at":"` + at(0) + `","event_key":"user_login","entity_id":"1","entity_type":"user","actor_id":"1","actor_type":"user","ip_address":"10.0.0.1","details":{}}`
	url, injected := prependToFirstPage(t, sim, role, login, role)
	cfg := testConfig(t, url+simulator.BasePath)
	cfg.Source.Concurrency = 1
	log, logs := logBuffer()
	from, to := day0(), day0().AddDate(0, 0, 1)
	sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: log}, pipeline.Range{From: from, To: to}, false)
	require.NoError(t, err)
	require.True(t, injected.Load())
	require.EqualValues(t, 1, sum.DeadLetters, "the other event of the id is counted")
	require.Contains(t, logs.String(), "same-id")

	got := exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir) // fails on an id twice
	kept, ok := got["same-id"]
	require.True(t, ok)
	delete(got, "same-id")
	exporttest.Compare(t, exporttest.Expected(sim, from, to), got, "acme")

	files, err := filepath.Glob(filepath.Join(cfg.State.Dir, "*", "dead_letter", "dt="+from.Format(time.DateOnly), "*.ndjson"))
	require.NoError(t, err)
	require.Len(t, files, 1)
	b, err := os.ReadFile(files[0])
	require.NoError(t, err)
	var dl struct{ Error, Raw string }
	require.NoError(t, json.Unmarshal(b, &dl))
	require.Contains(t, dl.Error, `"same-id"`)
	if kept.Fields["event_key"] == "user_login" {
		require.Equal(t, role, dl.Raw)
	} else {
		require.Equal(t, "user_role_changed", kept.Fields["event_key"])
		require.Equal(t, login, dl.Raw)
	}
}

// prependToFirstPage serves sim with events put before the first page that
// holds any: the first page of the day's one window, as concurrency 1
// never splits it. injected says whether they were served.
func prependToFirstPage(t *testing.T, sim *simulator.Server, events ...string) (url string, injected *atomic.Bool) {
	t.Helper()
	injected = new(atomic.Bool)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		sim.Handler().ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if rec.Code == 200 && r.URL.Query().Get("cursor") == "" && bytes.HasPrefix(body, []byte(`{"data":[{`)) && injected.CompareAndSwap(false, true) {
			extra := ""
			for _, ev := range events {
				extra += ev + ","
			}
			body = append([]byte(`{"data":[`+extra), body[len(`{"data":[`):]...)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rec.Code)
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, injected
}

// TestSameRangeEndingAfterNowTwice: a range ending after now, clipped to
// now minus period.lag, run again later: its longer part of the last day
// replaces the shorter one it contains, leaving each event once (was: two
// files, the events of the first in both).
func TestSameRangeEndingAfterNowTwice(t *testing.T) {
	sim, base := startSim(t, func(c *simulator.Config) { c.Events = 3000 })
	cfg := testConfig(t, base)
	withParquet(t, cfg)
	rng := pipeline.Range{From: day0(), To: day0().AddDate(0, 0, 2)}
	for _, h := range []time.Duration{12, 18} {
		now := func() time.Time { return day0().Add(h * time.Hour) }
		_, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t), Now: now}, rng, false)
		require.NoError(t, err)
	}
	want := exporttest.Expected(sim, day0(), day0().Add(18*time.Hour-cfg.Period.Lag))
	for _, dir := range []string{cfg.Sinks[0].File.Dir, cfg.Sinks[1].File.Dir} {
		files, err := filepath.Glob(filepath.Join(dir, "dt="+day0().Format(time.DateOnly), "pachca-audit-*"))
		require.NoError(t, err)
		require.Len(t, files, 1, "the longer part replaces the shorter")
	}
	exporttest.Compare(t, want, exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir), "acme")
	exporttest.Compare(t, want, exporttest.ReadParquet(t, cfg.Sinks[1].File.Dir), "acme")
}

// TestKilledPartOfTodayReplaced: a range ending after now, killed after
// renaming its part of the last day into place but before the day's
// manifest (the state below is what that kill leaves), run again later:
// the longer part replaces the file no manifest lists (was: left beside
// it, its events twice for every reader of the directory).
func TestKilledPartOfTodayReplaced(t *testing.T) {
	sim, base := startSim(t, func(c *simulator.Config) { c.Events = 3000 })
	cfg := testConfig(t, base)
	rng := pipeline.Range{From: day0(), To: day0().AddDate(0, 0, 2)}
	for _, h := range []time.Duration{12, 18} {
		now := func() time.Time { return day0().Add(h * time.Hour) }
		_, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t), Now: now}, rng, false)
		require.NoError(t, err)
		if h == 12 {
			require.NoError(t, os.Remove(filepath.Join(cfg.Sinks[0].File.Dir, "dt="+day0().Format(time.DateOnly), sinks.ManifestName)))
		}
	}
	files, err := filepath.Glob(filepath.Join(cfg.Sinks[0].File.Dir, "dt="+day0().Format(time.DateOnly), "pachca-audit-*"))
	require.NoError(t, err)
	require.Len(t, files, 1, "the longer part replaces the one no manifest lists")
	exporttest.Compare(t, exporttest.Expected(sim, day0(), day0().Add(18*time.Hour-cfg.Period.Lag)), exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir), "acme")
}
