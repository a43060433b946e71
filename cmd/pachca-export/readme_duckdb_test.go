package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/sinks/ndjson"
	"github.com/pachca-export/pachca-export/testkit/duckdbtest"
	"github.com/pachca-export/pachca-export/transform"
)

// TestREADMEDuckDBReadsRareDetails: the read_json call the README gives
// for DuckDB reads every details_* column, also one that only an event
// late in a busy day carries, past the 20,480 lines and 32 files DuckDB
// samples by default: SELECT * returns that event whole (was:
// read_json('out/ndjson/dt=*/*.ndjson.gz') failed the whole query with
// `unknown key "details_recording_id"`, and the ignore_errors=true its
// message suggests dropped the event's details columns without a word: a
// member's one recording among a day's logins was the event lost).
func TestREADMEDuckDBReadsRareDetails(t *testing.T) {
	var calls []string
	for _, p := range append(readREADME(t).prose, readREADME(t).blocks...) {
		calls = append(calls, regexp.MustCompile(`read_json\('out/ndjson/[^']*'[^)]*\)`).FindAllString(strings.Join(strings.Fields(p.text), " "), -1)...)
	}
	require.NotEmpty(t, calls, "the README says how DuckDB reads the NDJSON files")

	out := filepath.Join(t.TempDir(), "out", "ndjson")
	day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for d := range 2 {
		dt := day.AddDate(0, 0, d).Format(time.DateOnly)
		require.NoError(t, os.MkdirAll(filepath.Join(out, "dt="+dt), 0o755))
		f, err := os.Create(filepath.Join(out, "dt="+dt, "pachca-audit-"+dt+".ndjson.gz"))
		require.NoError(t, err)
		enc, err := ndjson.NewEncoder(f, "gzip")
		require.NoError(t, err)
		var recs []transform.Record
		for i := range 21000 {
			rec, err := transform.Normalize([]byte(fmt.Sprintf(`{"id":"login-%d-%d","created_at":"%sT01:00:00.000Z","event_key":"user_login","actor_id":"5","actor_type":"User","details":{}}`, d, i, dt)), "acme")
			require.NoError(t, err)
			recs = append(recs, rec)
		}
		if d == 1 {
			rec, err := transform.Normalize([]byte(`{"id":"insider-1","created_at":"`+dt+`T23:00:00.000Z","event_key":"video_call_recording_ready","actor_id":"666","actor_type":"User","details":{"chat_id":77,"recording_id":9,"file_id":10,"size":12345}}`), "acme")
			require.NoError(t, err)
			recs = append(recs, rec)
		}
		require.NoError(t, enc.Write(recs))
		require.NoError(t, enc.Close())
		require.NoError(t, f.Close())
	}
	for _, call := range calls {
		from := strings.Replace(call, "'out/ndjson/", "'"+filepath.ToSlash(out)+"/", 1)
		rows := duckdbtest.Query(t, "SELECT * FROM "+from+" WHERE id = 'insider-1'")
		require.Len(t, rows, 1, call)
		require.EqualValues(t, "9", fmt.Sprint(rows[0]["details_recording_id"]), "%s: %v", call, rows[0])
		require.EqualValues(t, "12345", fmt.Sprint(rows[0]["details_size"]), "%s: %v", call, rows[0])
	}
}
