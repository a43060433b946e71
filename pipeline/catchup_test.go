package pipeline_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/kafkasink"
	"github.com/pachca-export/pachca-export/sinks/s3sink"
	"github.com/pachca-export/pachca-export/state"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
	"github.com/pachca-export/pachca-export/testkit/miniotest"
)

func markExported(t *testing.T, cfgDir string, id any, days ...time.Time) {
	st, err := state.Open(cfgDir, id)
	require.NoError(t, err)
	defer st.Close()
	for _, d := range days {
		require.NoError(t, st.MarkExported(state.Day{Day: d.Format(time.DateOnly), RunID: "earlier"}))
	}
}

func dayDirs(t *testing.T, dir string) []string {
	m, err := filepath.Glob(filepath.Join(dir, "dt=*"))
	require.NoError(t, err)
	var out []string
	for _, p := range m {
		out = append(out, filepath.Base(p))
	}
	sort.Strings(out)
	return out
}

// TestCatchUp: state says the last exported day was four days ago; one run
// exports the three missing complete days and nothing else, oldest first.
func TestCatchUp(t *testing.T) {
	today := time.Now().UTC().Truncate(24 * time.Hour)
	_, base := startSim(t, func(c *simulator.Config) {
		c.Events, c.From, c.To = 3000, today.AddDate(0, 0, -6), today.Add(12*time.Hour)
	})
	cfg := testConfig(t, base)
	markExported(t, cfg.State.Dir, pipeline.Identity(cfg), today.AddDate(0, 0, -4))

	sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{}, false)
	require.NoError(t, err)
	want := []string{
		today.AddDate(0, 0, -3).Format(time.DateOnly),
		today.AddDate(0, 0, -2).Format(time.DateOnly),
		today.AddDate(0, 0, -1).Format(time.DateOnly),
	}
	require.Equal(t, want, sum.Days)
	require.Equal(t, []string{"dt=" + want[0], "dt=" + want[1], "dt=" + want[2]}, dayDirs(t, cfg.Sinks[0].File.Dir))

	// Nothing left: a second run exports nothing and fetches nothing.
	sum, err = pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{}, false)
	require.NoError(t, err)
	require.Empty(t, sum.Days)
	require.Zero(t, sum.Requests)
}

// TestCatchUpFillsGaps: days missing between exported ones are exported too,
// and a first run exports only yesterday.
func TestCatchUpFillsGaps(t *testing.T) {
	today := time.Now().UTC().Truncate(24 * time.Hour)
	_, base := startSim(t, func(c *simulator.Config) {
		c.Events, c.From, c.To = 2000, today.AddDate(0, 0, -8), today
	})
	cfg := testConfig(t, base)
	sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{}, false)
	require.NoError(t, err)
	require.Equal(t, []string{today.AddDate(0, 0, -1).Format(time.DateOnly)}, sum.Days, "first run: yesterday")

	markExported(t, cfg.State.Dir, pipeline.Identity(cfg), today.AddDate(0, 0, -6), today.AddDate(0, 0, -3))
	sum, err = pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{}, false)
	require.NoError(t, err)
	require.Equal(t, []string{
		today.AddDate(0, 0, -5).Format(time.DateOnly),
		today.AddDate(0, 0, -4).Format(time.DateOnly),
		today.AddDate(0, 0, -2).Format(time.DateOnly),
	}, sum.Days)
}

// TestRetentionWarnings: days past the retention are reported lost and the
// oldest missing day near the limit is warned about.
func TestRetentionWarnings(t *testing.T) {
	today := time.Now().UTC().Truncate(24 * time.Hour)
	_, base := startSim(t, func(c *simulator.Config) { c.Events = 100 })
	cfg := testConfig(t, base)
	markExported(t, cfg.State.Dir, pipeline.Identity(cfg), today.AddDate(0, 0, -95))
	sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{}, true)
	require.NoError(t, err)
	require.NotNil(t, sum.Plan)
	// The day on the retention edge is exported for what the API still holds.
	require.Equal(t, today.AddDate(0, 0, -90).Format(time.DateOnly), sum.Plan.Days[0].Date())
	require.Len(t, sum.Plan.Days, 90)
	require.Len(t, sum.Plan.Notes, 3)
	require.Contains(t, sum.Plan.Notes[0], "past the API's retention and lost")
	require.Contains(t, sum.Plan.Notes[1], "straddles the API's retention edge")
	require.Contains(t, sum.Plan.Notes[2], "leaves the API's retention in")
}

// TestConcurrentRunsOnOneState: the second run fails at once with a clear
// message while the first holds the state.
func TestConcurrentRunsOnOneState(t *testing.T) {
	_, base := startSim(t, nil)
	cfg := testConfig(t, base)
	id := pipeline.Identity(cfg)
	st, err := state.Open(cfg.State.Dir, id)
	require.NoError(t, err)
	defer st.Close()
	start := time.Now()
	_, err = pipeline.Run(t.Context(), pipeline.Options{Config: cfg}, pipeline.Range{From: day0(), To: day0().AddDate(0, 0, 1)}, false)
	require.ErrorIs(t, err, state.ErrLocked)
	require.ErrorContains(t, err, "another pachca-export process is using this state")
	require.Less(t, time.Since(start), 2*time.Second, "at once")
	_, statErr := os.Stat(cfg.Sinks[0].File.Dir)
	require.True(t, os.IsNotExist(statErr), "nothing written")
}

// TestCatchUpPerWorkspace: two configurations that differ only in the
// workspace label (two workspaces behind one base URL, feeding one stream,
// one state.dir) keep apart records of exported days: the second one's
// nightly run delivers its day too (was: one state, and "nothing to export"
// for the second workspace).
func TestCatchUpPerWorkspace(t *testing.T) {
	today := time.Now().UTC().Truncate(24 * time.Hour)
	_, base := startSim(t, func(c *simulator.Config) {
		c.Events, c.From, c.To = 500, today.AddDate(0, 0, -2), today
	})
	yesterday := []string{today.AddDate(0, 0, -1).Format(time.DateOnly)}
	stateDir := t.TempDir()
	for _, ws := range []string{"acme", "beta"} {
		cfg := testConfig(t, base)
		cfg.Source.Workspace, cfg.State.Dir = ws, stateDir
		cfg.Sinks = []config.Sink{{Type: "stdout", Stdout: &config.StdoutSink{}}}
		var out bytes.Buffer
		sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t), Stdout: &out}, pipeline.Range{}, false)
		require.NoError(t, err)
		require.Equal(t, yesterday, sum.Days, ws)
		require.Contains(t, out.String(), `"workspace":"`+ws+`"`)
	}
}

// TestStateTakenOver: the state of a configuration with a workspace label,
// written when the label was not part of its key, is taken over by the
// next run: the days it records stay exported.
func TestStateTakenOver(t *testing.T) {
	today := time.Now().UTC().Truncate(24 * time.Hour)
	_, base := startSim(t, func(c *simulator.Config) {
		c.Events, c.From, c.To = 500, today.AddDate(0, 0, -4), today
	})
	cfg := testConfig(t, base)
	former := pipeline.FormerIdentities(cfg)
	require.Len(t, former, 1)
	markExported(t, cfg.State.Dir, former[0], today.AddDate(0, 0, -3))
	oldKey, err := state.Key(former[0])
	require.NoError(t, err)

	sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{}, false)
	require.NoError(t, err)
	require.Equal(t, []string{today.AddDate(0, 0, -2).Format(time.DateOnly), today.AddDate(0, 0, -1).Format(time.DateOnly)}, sum.Days)
	_, err = os.Stat(filepath.Join(cfg.State.Dir, oldKey))
	require.ErrorIs(t, err, os.ErrNotExist, "the former state is renamed, not copied")
}

// TestCatchUpAfterSinkAdded: a Parquet sink added beside the NDJSON one of
// a nightly job that is up to date makes a new state, whose first catch-up
// exports yesterday only; the plan names the new sink, the states beside
// it and the verify --repair that gives it the days before (was: nothing
// said, the run succeeded, and verify then failed every earlier day on the
// new sink). A Parquet sink's codec changed, which holds its days, and a
// Kafka sink added, which is not read back, are no concern.
func TestCatchUpAfterSinkAdded(t *testing.T) {
	now := time.Now().UTC()
	today := now.Truncate(24 * time.Hour)
	day := func(n int) string { return today.AddDate(0, 0, n).Format(time.DateOnly) }
	before := testConfig(t, "http://127.0.0.1:1")
	markExported(t, before.State.Dir, pipeline.Identity(before), today.AddDate(0, 0, -5), today.AddDate(0, 0, -4),
		today.AddDate(0, 0, -3), today.AddDate(0, 0, -2), today.AddDate(0, 0, -1))
	oldKey, err := state.Key(pipeline.Identity(before))
	require.NoError(t, err)

	added := *before
	parquetDir := filepath.Join(t.TempDir(), "parquet")
	added.Sinks = append(before.Sinks[:1:1], config.Sink{Type: "parquet", File: &config.FileSink{Dir: parquetDir}})
	plan, err := pipeline.DryRun(t.Context(), &added, pipeline.Range{}, now, testLogger(t))
	require.NoError(t, err)
	start := "a new state: no state of this source and filters beside it (" + filepath.Join(before.State.Dir, oldKey) +
		"), which exported days from " + day(-5) + ", wrote where sinks[1] (parquet:" + parquetDir + ":) writes; such a sink gets the days from " + day(-1) +
		" on, and verify fails the days before on it"
	repair := func(from string) string {
		return ": if it was added (not moved with its data), give it the days from " + from + " with pachca-export verify --repair --from " +
			from + " --to " + day(-1) + " (it takes this state's lock: stop a follow loop meanwhile), which delivers them to every sink again " +
			"(the other sinks' files rewritten with the same events, Kafka sent them again)"
	}
	require.Equal(t, []string{start + repair(day(-5))}, plan.Notes)

	// Only the days the API still holds can be given to it.
	shortLived := added
	shortLived.Period.Retention = 72 * time.Hour
	plan, err = pipeline.DryRun(t.Context(), &shortLived, pipeline.Range{}, now, testLogger(t))
	require.NoError(t, err)
	require.Contains(t, plan.Notes, start+": those before "+day(-2)+" are past the API's retention and cannot be given to it (give verify a --from "+
		day(-2)+")"+repair(day(-2)))

	markExported(t, before.State.Dir, pipeline.Identity(&added), today.AddDate(0, 0, -1))
	snappy := *before
	snappy.State.Dir = before.State.Dir
	snappy.Sinks = append(before.Sinks[:1:1], config.Sink{Type: "parquet", File: &config.FileSink{Dir: parquetDir, Compression: "snappy"}})
	plan, err = pipeline.DryRun(t.Context(), &snappy, pipeline.Range{}, now, testLogger(t))
	require.NoError(t, err)
	require.Empty(t, plan.Notes, "a codec changed: the sink holds its days")

	withKafka := *before
	k := &kafkasink.Config{Brokers: []string{"127.0.0.1:9092"}, Topic: "audit"}
	k.SetDefaults()
	withKafka.Sinks = append(before.Sinks[:1:1], config.Sink{Type: "kafka", Kafka: k})
	plan, err = pipeline.DryRun(t.Context(), &withKafka, pipeline.Range{}, now, testLogger(t))
	require.NoError(t, err)
	require.Empty(t, plan.Notes, "a stream is not read back")
}

// TestCatchUpAfterSinkRemoved: a nightly job that ran with NDJSON alone,
// then with a Parquet sink beside it for a while, goes back to NDJSON
// alone, and so to its earlier state: the days the two-sink state
// exported meanwhile are in the NDJSON sink and count as exported (was:
// every one was exported again from the API, those past the retention
// reported lost, and the one on its edge, which the API holds in part,
// refused as shrinking its files: the run failed). Days of the other
// state before this state's first are not taken: its catch-up starts at
// its first day.
func TestCatchUpAfterSinkRemoved(t *testing.T) {
	now := time.Now().UTC()
	today := now.Truncate(24 * time.Hour)
	ndjsonOnly := testConfig(t, "http://127.0.0.1:1")
	markExported(t, ndjsonOnly.State.Dir, pipeline.Identity(ndjsonOnly), today.AddDate(0, 0, -10))
	both := *ndjsonOnly
	both.Sinks = append(ndjsonOnly.Sinks[:1:1], config.Sink{Type: "parquet", File: &config.FileSink{Dir: filepath.Join(t.TempDir(), "parquet")}})
	var days []time.Time
	for n := -12; n <= -1; n++ {
		if n != -10 {
			days = append(days, today.AddDate(0, 0, n))
		}
	}
	markExported(t, ndjsonOnly.State.Dir, pipeline.Identity(&both), days...)

	plan, err := pipeline.DryRun(t.Context(), ndjsonOnly, pipeline.Range{}, now, testLogger(t))
	require.NoError(t, err)
	require.Empty(t, plan.Days)
	require.Empty(t, plan.Notes)

	// A state whose sinks are not all in the other's: its days are its own.
	other := *ndjsonOnly
	other.Sinks = []config.Sink{{Type: "ndjson", File: &config.FileSink{Dir: filepath.Join(t.TempDir(), "other")}}}
	markExported(t, ndjsonOnly.State.Dir, pipeline.Identity(&other), today.AddDate(0, 0, -10))
	plan, err = pipeline.DryRun(t.Context(), &other, pipeline.Range{}, now, testLogger(t))
	require.NoError(t, err)
	require.Len(t, plan.Days, 9)
}

// TestCatchUpAfterKafkaBrokerMoved: a Kafka sink whose brokers changed (the
// broker moved to another port) makes a new state, whose first catch-up
// exports yesterday only; the plan names the state beside it, of the same
// source and filters, and the days between to export with --from/--to (was:
// nothing said, and the nights the moved broker could not be reached were
// exported by nothing, to Kafka or to the file sinks beside it). A state of
// other filters, or one with nothing missing, is no concern.
func TestCatchUpAfterKafkaBrokerMoved(t *testing.T) {
	now := time.Now().UTC()
	today := now.Truncate(24 * time.Hour)
	day := func(n int) string { return today.AddDate(0, 0, n).Format(time.DateOnly) }
	withBrokers := func(cfg *config.Config, brokers ...string) {
		k := &kafkasink.Config{Brokers: brokers, Topic: "audit"}
		k.SetDefaults()
		cfg.Sinks = append(cfg.Sinks, config.Sink{Type: "kafka", Kafka: k})
	}
	before := testConfig(t, "http://127.0.0.1:1")
	withBrokers(before, "127.0.0.1:9092")
	markExported(t, before.State.Dir, pipeline.Identity(before), today.AddDate(0, 0, -5))
	oldKey, err := state.Key(pipeline.Identity(before))
	require.NoError(t, err)

	moved := *before
	moved.Sinks = before.Sinks[:1:1]
	withBrokers(&moved, "127.0.0.1:9093")
	plan, err := pipeline.DryRun(t.Context(), &moved, pipeline.Range{}, now, testLogger(t))
	require.NoError(t, err)
	require.Equal(t, []string{"a new state: " + filepath.Join(before.State.Dir, oldKey) + ", the state of this source and filters with other sinks (" +
		"ndjson:" + before.Sinks[0].File.Dir + ":gzip, kafka:127.0.0.1:9092:audit), exported up to " + day(-5) + ", and this new state starts at " + day(-1) +
		"; if a sink only moved (a Kafka broker's address changed), export the days between with run --from " + day(-4) + " --to " + day(-1)}, plan.Notes)

	filtered := moved
	filtered.Source.Filters.EventKeys = []string{"user_login"}
	plan, err = pipeline.DryRun(t.Context(), &filtered, pipeline.Range{}, now, testLogger(t))
	require.NoError(t, err)
	require.Empty(t, plan.Notes, "another configuration's data")

	markExported(t, before.State.Dir, pipeline.Identity(before), today.AddDate(0, 0, -2))
	plan, err = pipeline.DryRun(t.Context(), &moved, pipeline.Range{}, now, testLogger(t))
	require.NoError(t, err)
	require.Empty(t, plan.Notes, "no day between")
}

// TestStateOfARespeltS3Location: "audit" and "audit/" name the same S3
// folder, and an endpoint with and without its trailing slash the same
// server: each pair keys one state, and a state an earlier version keyed
// by the spelling as written is taken over whichever the configuration now
// has (was: adding the trailing slash README's examples have, or adding or
// dropping the endpoint's, made a new state, whose catch-up began at
// yesterday again and whose follow loop started today over, writing
// today's events a second time until the seal).
func TestStateOfARespeltS3Location(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1/api/shared/v1")
	s3 := func(endpoint, prefix string) *config.Config {
		c := *cfg
		sc := s3sink.Config{Bucket: "audit", Prefix: prefix, Region: "us-east-1", Endpoint: endpoint, ForcePathStyle: true}
		sc.SetDefaults()
		c.Sinks = []config.Sink{{Type: "s3", S3: &sc}}
		require.NoError(t, c.Validate())
		return &c
	}
	for _, tc := range []struct {
		name    string
		a, b    *config.Config // a is the spelling the earlier key has
		earlier string         // the sink as versions before 2026-12 keyed it
	}{
		{"prefix", s3("http://127.0.0.1:2", "pachca/audit"), s3("http://127.0.0.1:2", "pachca/audit/"),
			"s3:http://127.0.0.1:2:audit/pachca/audit:parquet:zstd"},
		{"endpoint", s3("http://127.0.0.1:2/", "pachca/"), s3("http://127.0.0.1:2", "pachca/"),
			"s3:http://127.0.0.1:2/:audit/pachca/:parquet:zstd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key, err := state.Key(pipeline.Identity(tc.a))
			require.NoError(t, err)
			key2, err := state.Key(pipeline.Identity(tc.b))
			require.NoError(t, err)
			require.Equal(t, key, key2)

			dir := t.TempDir()
			tc.a.State.Dir, tc.b.State.Dir = dir, dir
			day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
			markExported(t, dir, earlierIdentity(tc.earlier), day)
			requireTakenOver(t, "2026-11-20", tc.a, tc.b) // the spelling kept, or changed
		})
	}
}

// TestStateOfADefaultCompressionWrittenOut: a file sink's compression left
// out and its default written out (ndjson none, parquet zstd, as the
// README's sinks table states them) key one state, and a state an earlier
// version keyed by the default written out is taken over either way (was:
// the shipped pipeline.yaml's parquet `compression: zstd`, removed as the
// default it is, or `compression: none` added to an ndjson sink, made a
// new state, whose catch-up began at yesterday again, and exported it
// twice).
func TestStateOfADefaultCompressionWrittenOut(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1/api/shared/v1")
	for _, typ := range []string{"ndjson", "parquet"} {
		t.Run(typ, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			sink := func(compression string) *config.Config {
				c := *cfg
				c.State.Dir = filepath.Join(filepath.Dir(dir), "state")
				c.Sinks = []config.Sink{{Type: typ, File: &config.FileSink{Dir: dir, Compression: compression}}}
				require.NoError(t, c.Validate())
				return &c
			}
			written, left := sink(config.DefaultFileCompression(typ)), sink("")
			key, err := state.Key(pipeline.Identity(written))
			require.NoError(t, err)
			key2, err := state.Key(pipeline.Identity(left))
			require.NoError(t, err)
			require.Equal(t, key, key2)

			day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
			markExported(t, written.State.Dir, earlierIdentity(typ+":"+dir+":"+config.DefaultFileCompression(typ)), day)
			requireTakenOver(t, "2026-11-20", written, left)
		})
	}
}

// requireTakenOver checks that the state each of cfgs keys, or takes over
// (its former identities), records day exported.
func requireTakenOver(t *testing.T, day string, cfgs ...*config.Config) {
	t.Helper()
	for _, c := range cfgs {
		v, err := state.Peek(c.State.Dir, pipeline.Identity(c), pipeline.FormerIdentities(c)...)
		require.NoError(t, err)
		exported, err := v.Exported()
		require.NoError(t, err)
		require.Contains(t, exported, day)
	}
}

// TestCatchUpAPIClockBehind: the API's clock an hour behind this host's,
// still in what this host calls yesterday. The catch-up delivers yesterday
// but does not record it as exported, so an event the API creates after
// the run, at its now, is exported by the next run (was: the day was
// recorded as exported by this host's clock, and the event, created in the
// API's last hour of the day, was never exported by any run).
func TestCatchUpAPIClockBehind(t *testing.T) {
	now := time.Now().UTC()
	today := now.Truncate(24 * time.Hour)
	yesterday := today.AddDate(0, 0, -1)
	sim, base := startSim(t, func(c *simulator.Config) {
		c.Events, c.From, c.To = 200, yesterday, today.Add(-2*time.Hour)
		c.ClockOffset = today.Add(-time.Hour).Sub(now) // the API's now: an hour before this host's midnight
	})
	cfg := testConfig(t, base)
	sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{}, false)
	require.NoError(t, err)
	require.Equal(t, []string{yesterday.Format(time.DateOnly)}, sum.Days)
	require.Equal(t, int64(200), sum.Events)

	late := sim.WriteEvent("user_login", today.Add(-time.Hour), 0)
	sum, err = pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{}, false)
	require.NoError(t, err)
	require.Equal(t, []string{yesterday.Format(time.DateOnly)}, sum.Days, "the day is exported again")
	require.Equal(t, int64(201), sum.Events)
	got := exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir) // fails on an id twice
	require.Len(t, got, 201)
	require.Contains(t, got, late.ID)
}

// TestStateOfReorderedEventKeys: the order of source.filters.event_keys,
// and `[]` for none, change no data and key the same state; a state an
// earlier version keyed by the keys as written is taken over (was: a
// nightly whose keys were reordered, or whose `event_keys: []` was left
// out, made a new state, whose first catch-up exported yesterday only: the
// days the old state had not exported yet were exported by nothing, and no
// note said so, since the filters differed).
func TestStateOfReorderedEventKeys(t *testing.T) {
	now := time.Now().UTC()
	today := now.Truncate(24 * time.Hour)
	base := testConfig(t, "http://127.0.0.1:1/api/shared/v1")
	withKeys := func(keys ...string) *config.Config {
		c := *base
		c.Source.Filters.EventKeys = keys
		return &c
	}
	keyOf := func(c *config.Config) string {
		k, err := state.Key(pipeline.Identity(c))
		require.NoError(t, err)
		return k
	}
	require.Equal(t, keyOf(withKeys("user_login", "user_2fa_fail")), keyOf(withKeys("user_2fa_fail", "user_login")))
	require.Equal(t, keyOf(withKeys()), keyOf(withKeys([]string{}...)))

	// The key versions before 2026-12 gave the keys as written.
	written := withKeys("user_login", "user_2fa_fail")
	earlier := struct {
		BaseURL   string         `json:"base_url"`
		Workspace string         `json:"workspace,omitempty"`
		Filters   config.Filters `json:"filters"`
		Sinks     []string       `json:"sinks"`
	}{"http://127.0.0.1:1/api/shared/v1", "acme", written.Source.Filters, []string{"ndjson:" + written.Sinks[0].File.Dir + ":gzip"}}
	markExported(t, written.State.Dir, earlier, today.AddDate(0, 0, -4))
	plan, err := pipeline.DryRun(t.Context(), written, pipeline.Range{}, now, testLogger(t))
	require.NoError(t, err)
	require.Equal(t, today.AddDate(0, 0, -3), plan.Days[0].Day, "the catch-up goes on from the earlier state")
	st, err := state.Open(written.State.Dir, pipeline.Identity(written), pipeline.FormerIdentities(written)...)
	require.NoError(t, err)
	require.NoError(t, st.Close())

	reordered := withKeys("user_2fa_fail", "user_login")
	plan, err = pipeline.DryRun(t.Context(), reordered, pipeline.Range{}, now, testLogger(t))
	require.NoError(t, err)
	require.Equal(t, today.AddDate(0, 0, -3), plan.Days[0].Day, "the same state, whatever the order")

	// Reordered when upgrading: the earlier state is found under state.dir.
	other := withKeys("user_2fa_fail", "user_login", "user_logout")
	other.State.Dir = t.TempDir()
	earlier.Filters.EventKeys = []string{"user_logout", "user_login", "user_2fa_fail"}
	markExported(t, other.State.Dir, earlier, today.AddDate(0, 0, -4))
	plan, err = pipeline.DryRun(t.Context(), other, pipeline.Range{}, now, testLogger(t))
	require.NoError(t, err)
	require.Equal(t, today.AddDate(0, 0, -3), plan.Days[0].Day, "the earlier state, its keys in another order")
	st, err = state.Open(other.State.Dir, pipeline.Identity(other), pipeline.FormerIdentities(other)...)
	require.NoError(t, err)
	require.NoError(t, st.Close())
	dirs, err := os.ReadDir(other.State.Dir)
	require.NoError(t, err)
	require.Len(t, dirs, 1, "taken over, not copied")
	key, err := state.Key(pipeline.Identity(other))
	require.NoError(t, err)
	require.Equal(t, key, dirs[0].Name())
}

// earlierIdentity is the state key of testConfig with one sink, as versions
// before 2026-12 wrote it.
func earlierIdentity(sink string) any {
	return struct {
		BaseURL   string         `json:"base_url"`
		Workspace string         `json:"workspace,omitempty"`
		Filters   config.Filters `json:"filters"`
		Sinks     []string       `json:"sinks"`
	}{"http://127.0.0.1:1/api/shared/v1", "acme", config.Filters{}, []string{sink}}
}

// TestNewStateCatchesUpFromSinks: a state.dir lost (a CronJob whose state
// volume is an emptyDir), moved or renamed leaves a new state beside sinks
// that hold days. Its catch-up exports the days they lack from the first
// one they hold, not yesterday only, so that the nights that failed in
// between are exported rather than left in no sink without a word (was:
// yesterday only, and verify's chain linked across the hole; then, the
// days after the last one they hold, still not a night that failed before
// it). The S3 case lists the bucket.
func TestNewStateCatchesUpFromSinks(t *testing.T) {
	today := time.Now().UTC().Truncate(24 * time.Hour)
	for _, tc := range []struct {
		name string
		sink func(t *testing.T, dir string) (config.Sink, func() string)
	}{
		{"file", func(t *testing.T, dir string) (config.Sink, func() string) {
			s := config.Sink{Type: "ndjson", File: &config.FileSink{Dir: filepath.Join(dir, "ndjson"), Compression: "gzip"}}
			return s, func() string { return s.File.Dir }
		}},
		{"s3", func(t *testing.T, _ string) (config.Sink, func() string) {
			m := miniotest.Start(t)
			m.CreateBucket("audit")
			return s3Sink(m, "audit", "nd/", "ndjson"), func() string {
				dir, _ := download(t, m.Client(), "audit", "nd/")
				return dir
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			from := today.AddDate(0, 0, -6)
			sim, base := startSim(t, func(c *simulator.Config) { c.Events, c.From, c.To = 3000, from, today })
			cfg := testConfig(t, base)
			sink, read := tc.sink(t, t.TempDir())
			cfg.Sinks = []config.Sink{sink}
			require.NoError(t, cfg.Validate())
			// The nights up to five days ago ran, the next one failed,
			// the one after ran, and the last two failed.
			for _, r := range []pipeline.Range{{From: from, To: today.AddDate(0, 0, -4)}, {From: today.AddDate(0, 0, -3), To: today.AddDate(0, 0, -2)}} {
				_, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, r, false)
				require.NoError(t, err)
			}
			require.NoError(t, os.RemoveAll(cfg.State.Dir))

			want := []string{
				today.AddDate(0, 0, -4).Format(time.DateOnly),
				today.AddDate(0, 0, -2).Format(time.DateOnly),
				today.AddDate(0, 0, -1).Format(time.DateOnly),
			}
			plan, err := pipeline.DryRun(t.Context(), cfg, pipeline.Range{}, time.Now(), testLogger(t))
			require.NoError(t, err)
			require.Equal(t, want, dates(plan.Days), "--dry-run plans what the run does")
			var log bytes.Buffer
			sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(&log, nil))}, pipeline.Range{}, false)
			require.NoError(t, err)
			require.Equal(t, want, sum.Days, "the days the sink lacks, after its last one and between, not yesterday only")
			require.Contains(t, log.String(), "so the catch-up starts at "+want[0])
			require.Contains(t, log.String(), "and the 1 day(s) missing between them ("+want[0]+")")
			// Every event of the six days once.
			exporttest.Compare(t, exporttest.Expected(sim, from, today), exporttest.ReadNDJSON(t, read()), "acme")

			// Lost again the next night, with nothing missing: yesterday only.
			require.NoError(t, os.RemoveAll(cfg.State.Dir))
			sum, err = pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{}, false)
			require.NoError(t, err)
			require.Equal(t, []string{today.AddDate(0, 0, -1).Format(time.DateOnly)}, sum.Days)
		})
	}
}

// dates are the days of a plan's partitions, YYYY-MM-DD.
func dates(days []sinks.Partition) []string {
	var out []string
	for _, p := range days {
		out = append(out, p.Date())
	}
	return out
}

// TestCatchUpWarnsOfMissingOutput: an output restored from a backup older
// than the state (or deleted, or a volume not mounted) lacks the days the
// state records. The catch-up has nothing to export, and says which sink
// lacks the last of them and what to run (was: only "nothing to export").
func TestCatchUpWarnsOfMissingOutput(t *testing.T) {
	today := time.Now().UTC().Truncate(24 * time.Hour)
	from := today.AddDate(0, 0, -3)
	_, base := startSim(t, func(c *simulator.Config) { c.Events, c.From, c.To = 1000, from, today })
	cfg := testConfig(t, base)
	_, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: from, To: today}, false)
	require.NoError(t, err)

	run := func() (*pipeline.Summary, string) {
		var log bytes.Buffer
		sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(&log, nil))}, pipeline.Range{}, false)
		require.NoError(t, err)
		return sum, log.String()
	}
	_, log := run()
	require.NotContains(t, log, "holds no manifest", "the output is whole")

	// The output of a backup taken two days ago: the last two days gone.
	for _, d := range []int{-2, -1} {
		require.NoError(t, os.RemoveAll(filepath.Join(cfg.Sinks[0].File.Dir, "dt="+today.AddDate(0, 0, d).Format(time.DateOnly))))
	}
	sum, log := run()
	require.Empty(t, sum.Days)
	require.Contains(t, log, "sinks[0] ndjson "+cfg.Sinks[0].File.Dir+" holds no manifest of "+today.AddDate(0, 0, -1).Format(time.DateOnly)+
		", the last day the state records as exported")
	require.Contains(t, log, "verify --repair delivers them again")
}

// TestCatchUpAfterOutputMoved: the output directory moved with its data
// (renamed, or copied with the state to another path or host, where the
// configuration's relative paths name other absolute ones) keys a new
// state, whose catch-up goes on from what the directory holds. Its
// warnings say so, and not that the sink lacks the days before (was: "such
// a sink gets the days from ... on, and verify fails the days before on
// it ... give it the days with verify --repair", a repair that rewrites
// every file of those days and sends them to Kafka again, for nothing).
func TestCatchUpAfterOutputMoved(t *testing.T) {
	today := time.Now().UTC().Truncate(24 * time.Hour)
	from := today.AddDate(0, 0, -6)
	sim, base := startSim(t, func(c *simulator.Config) { c.Events, c.From, c.To = 2000, from, today })
	cfg := testConfig(t, base)
	_, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: from, To: today.AddDate(0, 0, -3)}, false)
	require.NoError(t, err)

	moved := func(cfg *config.Config) *config.Config {
		to := filepath.Join(t.TempDir(), "ndjson")
		require.NoError(t, os.Rename(cfg.Sinks[0].File.Dir, to))
		next := *cfg
		next.Sinks = []config.Sink{{Type: "ndjson", File: &config.FileSink{Dir: to, Compression: "gzip"}}}
		require.NoError(t, next.Validate())
		return &next
	}
	const added = "no state of this source and filters beside it"
	cfg = moved(cfg)
	plan, err := pipeline.DryRun(t.Context(), cfg, pipeline.Range{}, time.Now(), testLogger(t))
	require.NoError(t, err)
	require.Len(t, plan.Notes, 1)
	require.Contains(t, plan.Notes[0], "beside sinks that hold days")
	var log bytes.Buffer
	sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(&log, nil))}, pipeline.Range{}, false)
	require.NoError(t, err)
	require.Equal(t, []string{today.AddDate(0, 0, -3).Format(time.DateOnly), today.AddDate(0, 0, -2).Format(time.DateOnly),
		today.AddDate(0, 0, -1).Format(time.DateOnly)}, sum.Days)
	require.NotContains(t, log.String(), added)
	exporttest.Compare(t, exporttest.Expected(sim, from, today), exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir), "acme")

	// Moved again after the night's run: the catch-up has yesterday to
	// export again, and no sink was added.
	cfg = moved(cfg)
	plan, err = pipeline.DryRun(t.Context(), cfg, pipeline.Range{}, time.Now(), testLogger(t))
	require.NoError(t, err)
	require.Equal(t, []string{today.AddDate(0, 0, -1).Format(time.DateOnly)}, dates(plan.Days))
	for _, n := range plan.Notes {
		require.NotContains(t, n, added)
		require.NotContains(t, n, "export the days between", "the second state exported them")
	}

	// A sink added beside the moved one is told of still.
	withParquet := *cfg
	withParquet.Sinks = append(cfg.Sinks[:1:1], config.Sink{Type: "parquet", File: &config.FileSink{Dir: filepath.Join(t.TempDir(), "parquet")}})
	require.NoError(t, withParquet.Validate())
	plan, err = pipeline.DryRun(t.Context(), &withParquet, pipeline.Range{}, time.Now(), testLogger(t))
	require.NoError(t, err)
	require.Len(t, plan.Notes, 1)
	require.Contains(t, plan.Notes[0], added+" ("+cfg.State.Dir)
	require.Contains(t, plan.Notes[0], "wrote where sinks[1] (parquet:")
}
