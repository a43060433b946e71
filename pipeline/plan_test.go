package pipeline_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/pipeline"
)

// TestRangeOrigin: the messages about a range name its bounds where they
// were given: --from/--to on the command line, or period.from/period.to in
// the configuration file.
func TestRangeOrigin(t *testing.T) {
	now := time.Date(2026, 11, 30, 17, 50, 0, 0, time.UTC)
	cfg := testConfig(t, "http://127.0.0.1:1")
	log := testLogger(t)

	cfg.Period.From, cfg.Period.To = "2026-12-25", "2026-12-26"
	_, err := pipeline.DryRun(cfg, pipeline.Range{}, now, log)
	require.EqualError(t, err, "nothing to export: period.from 2026-12-25T00:00:00Z in test.yaml is not before now minus period.lag (2026-11-30T17:48:00Z)")

	cfg.Period.From, cfg.Period.To = "2026-11-25", "2027-11-26"
	p, err := pipeline.DryRun(cfg, pipeline.Range{}, now, log)
	require.NoError(t, err)
	require.Contains(t, p.Notes, "period.to 2027-11-26T00:00:00Z in test.yaml is later than now minus period.lag; exporting up to 2026-11-30T17:48:00Z")

	// The flags win over period.from/to, and are named as flags.
	from, to := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	p, err = pipeline.DryRun(cfg, pipeline.Range{From: from, To: to}, now, log)
	require.NoError(t, err)
	require.Contains(t, p.Notes, "--to 2027-01-01T00:00:00Z is later than now minus period.lag; exporting up to 2026-11-30T17:48:00Z")
	_, err = pipeline.DryRun(cfg, pipeline.Range{From: to, To: to.Add(24 * time.Hour)}, now, log)
	require.EqualError(t, err, "nothing to export: --from 2027-01-01T00:00:00Z is not before now minus period.lag (2026-11-30T17:48:00Z)")
}
