package pipeline_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/alerts"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
)

// TestAlertsDuringExport: a watch rule over the exported events messages
// each recipient once per event; a rerun of the same range sends nothing
// new; --alerts-dry-run prints instead of sending.
func TestAlertsDuringExport(t *testing.T) {
	sim, base := startSim(t, func(c *simulator.Config) { c.Events = 3000 })
	cfg := testConfig(t, base)
	cfg.Alerts = alerts.Config{Rules: []alerts.Rule{{
		Name: "DLP", Kind: alerts.KindWatch, EventKeys: []string{"dlp_violation_detected"}, Recipients: []string{"10001", "10002"},
	}}}
	require.NoError(t, cfg.Validate())
	from, to := day0(), day0().AddDate(0, 0, 1)
	var dlp int
	for _, ev := range exporttest.Expected(sim, from, to) {
		if ev.Key == "dlp_violation_detected" {
			dlp++
		}
	}
	require.Positive(t, dlp)

	var out bytes.Buffer
	_, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t), AlertsDryRun: true, AlertsOut: &out}, pipeline.Range{From: from, To: to}, false)
	require.NoError(t, err)
	require.Equal(t, 2*dlp, strings.Count(out.String(), "alert DLP -> "), out.String())
	require.Empty(t, sim.Stats().Messages, "a dry run sends nothing")

	sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: from, To: to}, false)
	require.NoError(t, err)
	require.Equal(t, dlp, sum.AlertFindings)
	require.Equal(t, 2*dlp, sum.AlertMessages)
	msgs := sim.Stats().Messages
	require.Len(t, msgs, 2*dlp)
	for _, m := range msgs {
		require.Equal(t, "user", m.EntityType)
		require.Contains(t, m.Content, "dlp_violation_detected")
	}

	sum, err = pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: from, To: to}, false)
	require.NoError(t, err)
	require.Zero(t, sum.AlertMessages, "at most one message per finding across reruns")
	require.Len(t, sim.Stats().Messages, 2*dlp)
}
