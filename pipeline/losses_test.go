package pipeline_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/internal/exporttest"
	"github.com/pachca-export/pachca-export/internal/failure"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/sinkset"
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
	var injected atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		sim.Handler().ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		// The first page of the day's one window: concurrency 1 never splits it.
		if rec.Code == 200 && r.URL.Query().Get("cursor") == "" && bytes.HasPrefix(body, []byte(`{"data":[{`)) && injected.CompareAndSwap(false, true) {
			extra := ""
			for _, ev := range noIDs {
				extra += ev + ","
			}
			body = append([]byte(`{"data":[`+extra), body[len(`{"data":[`):]...)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rec.Code)
		w.Write(body)
	}))
	defer srv.Close()
	cfg := testConfig(t, srv.URL+simulator.BasePath)
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
type failingCommit struct{ sinks.Sink }

func (f failingCommit) Open(ctx context.Context, p sinks.Partition) (sinks.Writer, error) {
	w, err := f.Sink.Open(ctx, p)
	if err != nil {
		return nil, err
	}
	return failingWriter{w}, nil
}

type failingWriter struct{ sinks.Writer }

func (w failingWriter) Commit(ctx context.Context) (sinks.Result, error) {
	return sinks.Result{}, errors.Join(errors.New("disk on fire"), w.Writer.Abort(ctx))
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
	_, err = pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t), Sinks: []sinks.Sink{failingCommit{set.Sinks[0]}}},
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
