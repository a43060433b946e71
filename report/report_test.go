package report_test

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/report"
	"github.com/pachca-export/pachca-export/report/reporttest"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/filesink"
	"github.com/pachca-export/pachca-export/transform"
)

// TestLeftOutIsNotZero: what the output's configuration keeps out (its
// marker says) is shown as not exported, not counted as 0; an output
// that keeps everything, or has no marker, shows its counts. The page
// names the workspace the marker records, in its title too (was: not
// named: the reports of several workspaces' outputs differed only in the
// path they were read from).
func TestLeftOutIsNotZero(t *testing.T) {
	for _, tc := range []struct {
		name    string
		claim   *sinks.Identity
		want    map[string]string // a cell's id or data-metric -> its text
		leftOut string
	}{
		{name: "no marker", want: map[string]string{"card-fails": `[\d,]+`, "card-other": `[\d,]+`, "Audit log reads": `[\d,]+`}},
		{name: "keeps everything", claim: &sinks.Identity{Workspace: "test"},
			want: map[string]string{"card-fails": `[\d,]+`, "card-other": `[\d,]+`, "Audit log reads": `[\d,]+`}},
		{name: "drops audit log reads, filters out failed 2FA",
			claim:   &sinks.Identity{Workspace: "test", EventKeys: []string{"user_login", "user_role_changed"}, DropEventKeys: []string{"audit_events_accessed"}},
			want:    map[string]string{"card-fails": "not exported", "card-other": "not exported", "Audit log reads": "not exported", "Role changes": `[\d,]+`},
			leftOut: "every event key but user_login, user_role_changed (source.filters.event_keys); audit_events_accessed (transform.drop_event_keys)"},
		{name: "drops its own reads only", claim: &sinks.Identity{Workspace: "test", DropOwnReads: true},
			want:    map[string]string{"card-fails": `[\d,]+`, "card-other": `[\d,]+`, "Audit log reads": `[\d,]+`},
			leftOut: "the exporter&#39;s own reads of the log, audit_events_accessed under its reader id; everyone else&#39;s are in (transform.drop_own_reads)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			sink := reporttest.FileSink(t, dir, "parquet")
			recs := reporttest.Dataset()
			if tc.claim != nil {
				_, err := sink.(sinks.Claimer).Claim(t.Context(), sinks.Claim{Identity: *tc.claim, Create: true})
				require.NoError(t, err)
				if len(tc.claim.EventKeys) > 0 {
					recs = slices.DeleteFunc(recs, func(r transform.Record) bool { return !slices.Contains(tc.claim.EventKeys, r.EventKey) })
				}
			}
			reporttest.Write(t, sink, reporttest.Day0, reporttest.Day0.AddDate(0, 0, 6), recs)
			var out bytes.Buffer
			_, err := report.Write(t.Context(), report.Options{Store: filesink.ReadOnly(dir), From: reporttest.Day0.AddDate(0, 0, 3),
				To: reporttest.Day0.AddDate(0, 0, 6), Version: "test"}, &out)
			require.NoError(t, err)
			page := out.String()
			has := func(re string) {
				t.Helper()
				require.True(t, regexp.MustCompile(re).MatchString(page), "the page has no match of %s", re)
			}
			has(`id="card-fails"><div class="label">failed 2FA</div><div class="value">` + tc.want["card-fails"] + `</div>`)
			has(`id="card-other"><div class="label">events of unknown keys</div><div class="value">` + tc.want["card-other"] + `</div>`)
			for metric, want := range tc.want {
				if strings.HasPrefix(metric, "card-") {
					continue
				}
				has(`<tr data-group="` + metric + `"><th scope="row">` + metric + `</th><td class="mono">(?:[^<]|</?bdi>)*</td><td class="n">` + want + `</td>`)
				has(`<tr data-metric="` + metric + `"><th scope="row">` + metric + `</th><td class="n">` + want + `</td>`)
			}
			if tc.claim != nil {
				has(`<title>Pachca security digest: test</title>`)
				has(`<p>Workspace <strong id="workspace">test</strong></p>`)
			} else {
				require.NotContains(t, page, `id="workspace"`)
			}
			note := regexp.MustCompile(`id="left-out">The configuration that wrote this output keeps out of it (.*?): no count`).FindStringSubmatch(page)
			if tc.leftOut == "" {
				require.Nil(t, note)
				return
			}
			require.NotNil(t, note)
			require.Equal(t, tc.leftOut, note[1])
		})
	}
}

// TestFilesCheckedSaid: the page says how many files it read and that
// each matched its manifest, which the reader checks (was: the count only,
// and an auditor could not tell that the numbers came from files checked
// against their manifests).
func TestFilesCheckedSaid(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	reporttest.Write(t, reporttest.FileSink(t, dir, "parquet"), reporttest.Day0, reporttest.Day0.AddDate(0, 0, 6), reporttest.Dataset())
	var out bytes.Buffer
	st, err := report.Write(t.Context(), report.Options{Store: filesink.ReadOnly(dir), From: reporttest.Day0.AddDate(0, 0, 3),
		To: reporttest.Day0.AddDate(0, 0, 6), Version: "test"}, &out)
	require.NoError(t, err)
	require.Equal(t, 3, st.Files)
	require.Contains(t, out.String(), `<span id="files">3 file(s), each matching its day's manifest (bytes, sha256, record count)</span>`)
}

// cancelOnOpen is a store whose first file opened stops the report, as a
// SIGINT or SIGTERM while it is read does.
type cancelOnOpen struct {
	sinks.Store
	cancel context.CancelFunc
	opens  int
}

func (s *cancelOnOpen) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	rc, err := s.Store.Open(ctx, name)
	s.opens++
	s.cancel()
	return rc, err
}

// TestStopsWhenCancelled: a report stopped (its context cancelled) reads no
// day after the stop and writes no page (was: the files read to the last
// day, whatever the signal, and the page written).
func TestStopsWhenCancelled(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	// NDJSON files of fewer than 4,096 lines, which the reader reads
	// through without looking at the context.
	reporttest.Write(t, reporttest.FileSink(t, dir, "ndjson"), reporttest.Day0, reporttest.Day0.AddDate(0, 0, 6), reporttest.Dataset())
	ctx, cancel := context.WithCancel(t.Context())
	store := &cancelOnOpen{Store: filesink.ReadOnly(dir), cancel: cancel}
	var out bytes.Buffer
	_, err := report.Write(ctx, report.Options{Store: store, From: reporttest.Day0.AddDate(0, 0, 3),
		To: reporttest.Day0.AddDate(0, 0, 6), Version: "test"}, &out)
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, 1, store.opens, "files opened, of 6 days")
	require.Empty(t, out.String())
}

// TestUnsealedDaysNamed: a day of the period that follow is still feeding
// (its cycle files, which do not reach the day's end yet) is named on the
// page: events the API publishes late may still be added to it (was: shown
// as if final, which an auditor could not tell from a sealed day). A day
// sealed with follow.keep_cycle_files keeps its cycle files, which reach
// its end: it is not named.
func TestUnsealedDaysNamed(t *testing.T) {
	recs := reporttest.Dataset()
	d := func(n int) time.Time { return reporttest.Day0.AddDate(0, 0, n) }
	for _, tc := range []struct {
		name   string
		cycles []time.Time // the ends of day 5's cycle files; none: sealed into one file
		to     time.Time   // the period's end
		want   string      // the note's days, "" for no note
	}{
		{"sealed", nil, d(6), ""},
		{"today fed by follow", []time.Time{d(5).Add(10 * time.Hour), d(5).Add(20 * time.Hour)}, d(5).Add(20 * time.Hour), "2026-11-06"},
		{"the period ends before the last cycle", []time.Time{d(5).Add(10 * time.Hour), d(5).Add(20 * time.Hour)}, d(5).Add(8 * time.Hour), "2026-11-06"},
		{"sealed keeping its cycle files", []time.Time{d(5).Add(10 * time.Hour), d(6)}, d(5).Add(8 * time.Hour), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			s := reporttest.FileSink(t, dir, "parquet")
			if tc.cycles == nil {
				reporttest.Write(t, s, d(0), d(6), recs)
			} else {
				reporttest.Write(t, s, d(0), d(5), recs)
				from := d(5)
				for _, end := range tc.cycles {
					p := sinks.NewPartition(d(5), from, end, "cycle")
					p.Part = true
					reporttest.WritePartition(t, s, p, recs)
					from = end
				}
			}
			var out bytes.Buffer
			_, err := report.Write(t.Context(), report.Options{Store: filesink.ReadOnly(dir), From: d(3), To: tc.to, Version: "test"}, &out)
			require.NoError(t, err)
			note := regexp.MustCompile(`<p class="note" id="unsealed">Not sealed yet: ([^:]*):`).FindStringSubmatch(out.String())
			if tc.want == "" {
				require.Nil(t, note)
				return
			}
			require.NotNil(t, note, "the page names the days not sealed")
			require.Equal(t, tc.want, note[1])
		})
	}
}

// TestRunAndFollowFilesOfADayCountOnce: a day a run exported the morning of
// (a partial-day file) and follow fed from before its end (cycle files
// overlapping it) counts each event once, the events the cycle file holds
// again as well as a late one only it has (was: every event of the overlap
// counted twice: 1,471 events of a morning that has 1,247).
func TestRunAndFollowFilesOfADayCountOnce(t *testing.T) {
	recs := reporttest.Dataset()
	d := func(n int) time.Time { return reporttest.Day0.AddDate(0, 0, n) }
	day, late := d(5), reporttest.Rec("late-one", d(5).Add(3*time.Hour+30*time.Minute), "user_login", "10001", "203.0.113.1", "")
	dir := filepath.Join(t.TempDir(), "out")
	s := reporttest.FileSink(t, dir, "parquet")
	reporttest.Write(t, s, d(0), day, recs)
	reporttest.Write(t, s, day, day.Add(4*time.Hour), recs) // the run's morning
	p := sinks.NewPartition(day, day.Add(3*time.Hour), day.Add(20*time.Hour), "cycle")
	p.Part = true // follow from 03:00: its first cycle holds 03:00..04:00 again, and the late event
	reporttest.WritePartition(t, s, p, append(slices.Clone(recs), late))
	want := 1 // the late event
	for _, r := range recs {
		if r.CreatedAt >= d(3).UnixMilli() && r.CreatedAt < day.Add(20*time.Hour).UnixMilli() {
			want++
		}
	}
	var out bytes.Buffer
	st, err := report.Write(t.Context(), report.Options{Store: filesink.ReadOnly(dir), From: d(3), To: day.Add(20 * time.Hour), Version: "test"}, &out)
	require.NoError(t, err)
	require.Equal(t, int64(want), st.Events)
}

// TestPreviousPeriodInDaysOfTheZone: the period before 3 days of New York
// is its 3 days before, from midnight to midnight, though the change back
// from summer time made one of them 25 hours long (was: the same length,
// 72 hours, which would start the previous period at 01:00 of 1 November
// and leave its first hour out).
func TestPreviousPeriodInDaysOfTheZone(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	dir := filepath.Join(t.TempDir(), "out")
	recs := reporttest.Dataset()
	reporttest.Write(t, reporttest.FileSink(t, dir, "parquet"), reporttest.Day0, reporttest.Day0.AddDate(0, 0, 7), recs)
	from, to := time.Date(2026, 11, 4, 0, 0, 0, 0, ny), time.Date(2026, 11, 7, 0, 0, 0, 0, ny)
	prevFrom := time.Date(2026, 11, 1, 0, 0, 0, 0, ny)
	require.Equal(t, 73*time.Hour, from.Sub(prevFrom))
	var out bytes.Buffer
	st, err := report.Write(t.Context(), report.Options{Store: filesink.ReadOnly(dir), From: from, To: to, Location: ny, Version: "test"}, &out)
	require.NoError(t, err)
	require.True(t, st.Previous)
	require.Contains(t, out.String(), `<strong id="previous-period">2026-11-01 00:00:00-04:00 .. 2026-11-04 00:00:00-05:00</strong>`)
	var want int64
	for _, r := range recs {
		if r.CreatedAt >= prevFrom.UnixMilli() && r.CreatedAt < from.UnixMilli() {
			want++
		}
	}
	m := regexp.MustCompile(`<tr[^>]*><th scope="row">events</th><td class="n">([0-9,]+)</td>`).FindStringSubmatch(out.String())
	require.NotNil(t, m, "the comparison's events row")
	require.Equal(t, strings.ReplaceAll(m[1], ",", ""), strconv.FormatInt(want, 10))
}
