package pipeline_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/state"
	"github.com/pachca-export/pachca-export/testkit/duckdbtest"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
)

// TestSeveralEventKeys: several event keys are several API streams; the
// output holds exactly the events of those keys, and the state is another
// one than the unfiltered export's.
func TestSeveralEventKeys(t *testing.T) {
	sim, base := startSim(t, func(c *simulator.Config) { c.Events = 5000 })
	cfg := testConfig(t, base)
	unfiltered, err := state.Key(pipeline.Identity(cfg))
	require.NoError(t, err)
	cfg.Source.Filters.EventKeys = []string{"user_login", "user_2fa_fail"}
	filtered, err := state.Key(pipeline.Identity(cfg))
	require.NoError(t, err)
	require.NotEqual(t, unfiltered, filtered, "a backfill with other filters has its own state")
	from, to := day0(), day0().AddDate(0, 0, 2)
	_, err = pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: from, To: to}, false)
	require.NoError(t, err)
	var want []simulator.Event
	for _, ev := range exporttest.Expected(sim, from, to) {
		if ev.Key == "user_login" || ev.Key == "user_2fa_fail" {
			want = append(want, ev)
		}
	}
	require.NotEmpty(t, want)
	exporttest.Compare(t, want, exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir), "acme")
	streams := map[string]bool{}
	for _, r := range sim.Stats().Log {
		streams[r.EventKey] = true
	}
	require.Equal(t, map[string]bool{"user_login": true, "user_2fa_fail": true}, streams, "one stream per key, no unfiltered request")
}

// injectFirst serves sim, with the event raw put first in the first page
// of events it answers; the flag tells whether it was.
func injectFirst(t *testing.T, sim *simulator.Server, raw string) (*httptest.Server, *atomic.Bool) {
	var injected atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		sim.Handler().ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if rec.Code == 200 && bytes.HasPrefix(body, []byte(`{"data":[{`)) && injected.CompareAndSwap(false, true) {
			body = append([]byte(`{"data":[`+raw+`,`), body[len(`{"data":[`):]...)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rec.Code)
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv, &injected
}

// TestDeadLetterDirLinkRefused: a symbolic link planted as a day directory
// of output.dead_letter_dir (which a group dir_mode lets the group write)
// is refused, naming it, as one in a file sink's dir is, rather than
// followed: the dead letters do not go where the link points.
func TestDeadLetterDirLinkRefused(t *testing.T) {
	sim, _ := startSim(t, func(c *simulator.Config) { c.Events = 100 })
	srv, injected := injectFirst(t, sim, `{"id":"broken-1","created_at":"not a time","event_key":"user_login"}`)
	cfg := testConfig(t, srv.URL+simulator.BasePath)
	cfg.Output.DeadLetterDir = filepath.Join(t.TempDir(), "dead letters")
	elsewhere := t.TempDir()
	require.NoError(t, os.Mkdir(cfg.Output.DeadLetterDir, 0o770))
	link := filepath.Join(cfg.Output.DeadLetterDir, "dt="+day0().Format(time.DateOnly))
	require.NoError(t, os.Symlink(elsewhere, link))
	_, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: day0(), To: day0().AddDate(0, 0, 1)}, false)
	require.True(t, injected.Load())
	require.ErrorContains(t, err, "dead letters: "+link+" is a symbolic link, not a directory the export made: move it away")
	entries, err := os.ReadDir(elsewhere)
	require.NoError(t, err)
	require.Empty(t, entries)
}

// TestDeadLetters: an event that cannot be parsed goes to the dead-letter
// file and is counted; every other event is exported. The file is outside
// every sink's directory (a reader's glob over it would take dead letters
// for data): in the state directory by default, with the state's private
// modes, or in output.dead_letter_dir with the output modes.
func TestDeadLetters(t *testing.T) {
	for _, tc := range []struct {
		name string
		dir  func(cfg *config.Config) string // set the configuration, return the expected root
		mode os.FileMode
	}{
		{"state directory", func(cfg *config.Config) string { return filepath.Join(cfg.State.Dir, "*", "dead_letter") }, 0o600},
		{"dead_letter_dir", func(cfg *config.Config) string {
			cfg.Output.DeadLetterDir = filepath.Join(filepath.Dir(cfg.State.Dir), "dead letters")
			cfg.Output.FileMode = "0640"
			return cfg.Output.DeadLetterDir
		}, 0o640},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim, _ := startSim(t, func(c *simulator.Config) { c.Events = 1000 })
			const broken = `{"id":"broken-1","created_at":"not a time","event_key":"user_login"}`
			srv, injected := injectFirst(t, sim, broken)
			cfg := testConfig(t, srv.URL+simulator.BasePath)
			root := tc.dir(cfg)
			from, to := day0(), day0().AddDate(0, 0, 1)
			sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: from, To: to}, false)
			require.NoError(t, err)
			require.True(t, injected.Load())
			require.EqualValues(t, 1, sum.DeadLetters)
			exporttest.Compare(t, exporttest.Expected(sim, from, to), exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir), "acme")
			files, err := filepath.Glob(filepath.Join(root, "dt=*", "*.ndjson"))
			require.NoError(t, err)
			require.Len(t, files, 1)
			// The summary read alone says where they are.
			var printed strings.Builder
			sum.Print(&printed, "")
			require.Regexp(t, `(?m)^dead letters +1 \(in `+regexp.QuoteMeta(filepath.Dir(filepath.Dir(files[0])))+`\)$`, printed.String())
			fi, err := os.Stat(files[0])
			require.NoError(t, err)
			require.Equal(t, tc.mode, fi.Mode().Perm())
			b, err := os.ReadFile(files[0])
			require.NoError(t, err)
			var dl struct{ Error, Raw string }
			require.NoError(t, json.Unmarshal(bytes.TrimSpace(b), &dl))
			require.Equal(t, broken, dl.Raw)
			require.True(t, strings.Contains(dl.Error, "created_at"), dl.Error)
			entries, err := os.ReadDir(cfg.Sinks[0].File.Dir)
			require.NoError(t, err)
			for _, e := range entries {
				require.True(t, strings.HasPrefix(e.Name(), "dt=") || e.Name() == sinks.MarkerName,
					"only partitions and the marker in the sink directory: %s", e.Name())
			}
			t.Run("duckdb", func(t *testing.T) {
				// DuckDB's globs skip no _ or . name: a recursive glob over the
				// sink reads exactly the exported events.
				glob := filepath.Join(cfg.Sinks[0].File.Dir, "**", "*.ndjson*")
				for _, row := range duckdbtest.Query(t, "SELECT file FROM glob('"+glob+"')") {
					require.Regexp(t, `/dt=[0-9-]+/pachca-audit-[0-9-]+\.ndjson\.gz$`, row["file"])
				}
				rows := duckdbtest.Query(t, "SELECT count(*) AS n, count(DISTINCT id) AS ids FROM read_json('"+glob+"', columns={id: 'VARCHAR'})")
				want := len(exporttest.Expected(sim, from, to))
				require.EqualValues(t, fmt.Sprint(want), fmt.Sprint(rows[0]["n"]))
				require.EqualValues(t, fmt.Sprint(want), fmt.Sprint(rows[0]["ids"]))
			})
		})
	}
}
