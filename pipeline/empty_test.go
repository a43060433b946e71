package pipeline_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
)

// TestEmptyDay: a day without events is delivered like any other (an empty
// file and its manifest, the day recorded), counted in the summary and
// warned about in the log; a day with events is not.
func TestEmptyDay(t *testing.T) {
	_, base := startSim(t, func(c *simulator.Config) { c.Events = 500 }) // events on day0 .. day0+2 only
	cfg := testConfig(t, base)
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	empty := day0().AddDate(0, 0, 3)
	sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: log},
		pipeline.Range{From: day0().AddDate(0, 0, 2), To: empty.AddDate(0, 0, 1)}, false)
	require.NoError(t, err)
	date := empty.Format(time.DateOnly)
	require.Equal(t, []string{day0().AddDate(0, 0, 2).Format(time.DateOnly), date}, sum.Days)
	require.Equal(t, []string{date}, sum.EmptyDays)
	_, err = os.Stat(filepath.Join(cfg.Sinks[0].File.Dir, "dt="+date, "pachca-audit-"+date+".ndjson.gz"))
	require.NoError(t, err, "the empty day is delivered")

	var warned []string
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec struct {
			Level, Msg, Day string
		}
		require.NoError(t, json.Unmarshal([]byte(line), &rec), line)
		if rec.Level == "WARN" && strings.Contains(rec.Msg, "no events") {
			warned = append(warned, rec.Day)
		}
	}
	require.Equal(t, []string{date}, warned)
}
