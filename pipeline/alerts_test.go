package pipeline_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/alerts"
	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
)

// TestAlertsDuringExport: a watch rule over the exported events messages
// each recipient once per event, naming the workspace (was: not named, so
// that one recipient of several workspaces' alerts, as a managed security
// provider is, could not tell whose actor 10002 it was); a rerun of the
// same range sends nothing new; --alerts-dry-run prints instead of sending.
func TestAlertsDuringExport(t *testing.T) {
	sim, base := startSim(t, func(c *simulator.Config) { c.Events = 3000 })
	cfg := testConfig(t, base)
	watchDLP(t, cfg, "10001", "10002")
	from, to := day0(), day0().AddDate(0, 0, 1)
	dlp := dlpEvents(sim, from)
	require.Positive(t, dlp)

	var out bytes.Buffer
	_, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t), AlertsDryRun: true, AlertsOut: &out}, pipeline.Range{From: from, To: to}, false)
	require.NoError(t, err)
	require.Equal(t, 2*dlp, strings.Count(out.String(), "alert DLP -> "), out.String())
	require.Equal(t, 2*dlp, strings.Count(out.String(), ": [acme] DLP: dlp_violation_detected by actor "), out.String())
	require.Empty(t, sim.Stats().Messages, "a dry run sends nothing")

	sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: from, To: to}, false)
	require.NoError(t, err)
	require.Equal(t, dlp, sum.AlertFindings)
	require.Equal(t, 2*dlp, sum.AlertMessages)
	msgs := sim.Stats().Messages
	require.Len(t, msgs, 2*dlp)
	for _, m := range msgs {
		require.Equal(t, "user", m.EntityType)
		require.True(t, strings.HasPrefix(m.Content, "[acme] DLP: dlp_violation_detected by actor "), m.Content)
	}

	sum, err = pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: from, To: to}, false)
	require.NoError(t, err)
	require.Zero(t, sum.AlertMessages, "at most one message per finding across reruns")
	require.Len(t, sim.Stats().Messages, 2*dlp)
}

// TestAlertsOfAFailedRun: a run that delivers its days and then cannot send
// the messages (the API answers 503 to POST /messages) fails with the days
// recorded exported, so no later run delivers them again; their findings
// go out with the next run once the API is back, whether it resumes the
// same range (nothing to deliver) or exports the next day, each once (was:
// never sent).
func TestAlertsOfAFailedRun(t *testing.T) {
	sim, _ := startSim(t, func(c *simulator.Config) { c.Events = 3000 })
	gate := exporttest.GatePosts(t, sim, http.StatusServiceUnavailable, "upstream unavailable")
	cfg := testConfig(t, gate.URL)
	cfg.Source.MaxRetries = 1
	watchDLP(t, cfg, "10001")
	first, second, third := dlpEvents(sim, day0()), dlpEvents(sim, day0().AddDate(0, 0, 1)), dlpEvents(sim, day0().AddDate(0, 0, 2))
	require.Positive(t, first)
	require.Positive(t, second)
	run := func(from time.Time) (*pipeline.Summary, error) {
		return pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: from, To: from.AddDate(0, 0, 1)}, false)
	}

	sum, err := run(day0())
	require.ErrorContains(t, err, "server error 503")
	require.Len(t, sum.Days, 1, "the day is delivered before the messages fail")
	require.Empty(t, sim.Stats().Messages)

	gate.Closed.Store(false)
	sum, err = run(day0())
	require.NoError(t, err)
	require.Empty(t, sum.Days, "the day is not delivered again")
	require.Equal(t, first, sum.AlertMessages)
	require.EqualValues(t, first, sum.Requests, "the messages' requests")
	require.Len(t, sim.Stats().Messages, first)

	gate.Closed.Store(true)
	_, err = run(day0().AddDate(0, 0, 1))
	require.ErrorContains(t, err, "server error 503")
	gate.Closed.Store(false)
	sum, err = run(day0().AddDate(0, 0, 2))
	require.NoError(t, err)
	require.Equal(t, second+third, sum.AlertMessages, "the pending findings of the day before go out with the next day's")
	require.Len(t, sim.Stats().Messages, first+second+third)
}

// TestAlertsBurstAcrossNightlyRuns: failed logins from 23:58 to 00:03, three
// on each side of midnight, exported by two nightly runs of one day each,
// are one burst, and one message, sent by the second run (was: each run
// judged its half alone, below the threshold, and the burst went
// unreported). A rerun of both days sends nothing more.
func TestAlertsBurstAcrossNightlyRuns(t *testing.T) {
	sim, base := startSim(t, func(c *simulator.Config) { c.Events = 500 })
	cfg := testConfig(t, base)
	cfg.Alerts = alerts.Config{Rules: []alerts.Rule{{Name: "Suspicious logins", Kind: alerts.KindThreshold,
		EventKeys: []string{"user_2fa_fail"}, Threshold: 5, Window: 10 * time.Minute, Recipients: []string{"10001"}}}}
	require.NoError(t, cfg.Validate())
	midnight := day0().AddDate(0, 0, 1)
	for i := range 6 {
		sim.WriteEvent("user_2fa_fail", midnight.Add(time.Duration(i-3)*time.Minute+30*time.Second), 20001)
	}
	run := func(from, to time.Time) *pipeline.Summary {
		sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: from, To: to}, false)
		require.NoError(t, err)
		return sum
	}
	run(day0(), midnight)
	require.Empty(t, sim.Stats().Messages, "three failures are no burst yet")
	require.Equal(t, 1, run(midnight, midnight.AddDate(0, 0, 1)).AlertMessages)
	msgs := sim.Stats().Messages
	require.Len(t, msgs, 1)
	require.Contains(t, msgs[0].Content, "6 user_2fa_fail events for actor 20001 (User) between "+
		midnight.Add(-150*time.Second).Format("2006-01-02T15:04:05Z")+" and "+midnight.Add(150*time.Second).Format("2006-01-02T15:04:05Z"))

	require.Zero(t, run(day0(), midnight.AddDate(0, 0, 1)).AlertMessages)
	require.Len(t, sim.Stats().Messages, 1)
}

// TestAlertsRefusedOnce: messages the API refuses for their content (422
// too_long, from a simulator that takes 40 bytes) fail the run that tried
// them, one line each, counted in its summary; the next run over the same
// range neither tries them again nor fails (was: tried, refused and failing
// at every run, for ever).
func TestAlertsRefusedOnce(t *testing.T) {
	sim, base := startSim(t, func(c *simulator.Config) { c.Events = 3000; c.MessageMaxBytes = 40 })
	cfg := testConfig(t, base)
	watchDLP(t, cfg, "10001")
	from, to := day0(), day0().AddDate(0, 0, 1)
	dlp := dlpEvents(sim, from)
	require.Positive(t, dlp)
	run := func() (*pipeline.Summary, error) {
		return pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: from, To: to}, false)
	}

	sum, err := run()
	require.Error(t, err)
	require.Equal(t, dlp, strings.Count(err.Error(), "(422 too_long: content is too long (maximum is 40 bytes), parameter content) (not sent again)"), err.Error())
	require.Len(t, strings.Split(err.Error(), "\n"), dlp, "one line per message")
	require.Equal(t, dlp, sum.AlertRefused)
	require.Zero(t, sum.AlertMessages)
	var out bytes.Buffer
	sum.Print(&out, "")
	require.Contains(t, out.String(), fmt.Sprintf("%d findings, 0 new messages, %d refused by the API (not sent again)", dlp, dlp))
	tried := sim.Stats().Requests

	sum, err = run()
	require.NoError(t, err)
	require.Zero(t, sum.AlertRefused)
	require.Equal(t, tried, sim.Stats().Requests, "no message tried again")
	require.Empty(t, sim.Stats().Messages)
}

// watchDLP gives cfg one alert rule, "DLP", that sends each
// dlp_violation_detected event to recipients.
func watchDLP(t *testing.T, cfg *config.Config, recipients ...string) {
	t.Helper()
	cfg.Alerts = alerts.Config{Rules: []alerts.Rule{{
		Name: "DLP", Kind: alerts.KindWatch, EventKeys: []string{"dlp_violation_detected"}, Recipients: recipients,
	}}}
	require.NoError(t, cfg.Validate())
}

// dlpEvents is how many dlp_violation_detected events sim holds in the day
// from from.
func dlpEvents(sim *simulator.Server, from time.Time) (n int) {
	for _, ev := range exporttest.Expected(sim, from, from.AddDate(0, 0, 1)) {
		if ev.Key == "dlp_violation_detected" {
			n++
		}
	}
	return n
}

// TestAlertsToAUserNotThere: a recipient the workspace does not have (a
// typo in alerts.rules[].recipients) is refused by the API (422
// not_found): its messages fail the run that tried them, one line each
// naming the user, and are not tried again; the other recipient gets
// every message, in that run.
func TestAlertsToAUserNotThere(t *testing.T) {
	sim, base := startSim(t, func(c *simulator.Config) { c.Events = 3000 })
	cfg := testConfig(t, base)
	watchDLP(t, cfg, "99999", "10001")
	from, to := day0(), day0().AddDate(0, 0, 1)
	dlp := dlpEvents(sim, from)
	require.Positive(t, dlp)
	run := func() (*pipeline.Summary, error) {
		return pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: from, To: to}, false)
	}

	sum, err := run()
	require.Error(t, err)
	require.Equal(t, dlp, strings.Count(err.Error(), "message to user 99999: the API refused POST /messages (422 not_found: User not found, parameter entity_id) (not sent again)"), err.Error())
	require.Equal(t, dlp, sum.AlertRefused)
	require.Equal(t, dlp, sum.AlertMessages)
	msgs := sim.Stats().Messages
	require.Len(t, msgs, dlp)
	for _, m := range msgs {
		require.EqualValues(t, 10001, m.EntityID)
	}
	tried := sim.Stats().Requests

	sum, err = run()
	require.NoError(t, err)
	require.Zero(t, sum.AlertRefused)
	require.Equal(t, tried, sim.Stats().Requests, "no message tried again")
}
