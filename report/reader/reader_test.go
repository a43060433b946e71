package reader_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/report/reader"
	"github.com/pachca-export/pachca-export/report/reporttest"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/filesink"
	"github.com/pachca-export/pachca-export/transform"
)

// readAll reads every part of the plan of [from, to) in dir.
func readAll(t *testing.T, dir string, from, to time.Time) (*reader.Plan, []reader.Row) {
	t.Helper()
	p, err := reader.NewPlan(t.Context(), filesink.ReadOnly(dir), from, to)
	require.NoError(t, err)
	var rows []reader.Row
	rd := reader.NewReader("")
	for _, part := range p.Parts {
		require.NoError(t, rd.Read(t.Context(), filesink.ReadOnly(dir), part, func(batch []reader.Row) error {
			for _, r := range batch {
				r.ID, r.EventKey, r.ActorID = strings.Clone(r.ID), strings.Clone(r.EventKey), strings.Clone(r.ActorID)
				r.EventCategory, r.DetailsJSON = strings.Clone(r.EventCategory), strings.Clone(r.DetailsJSON)
				r.IPAddress.Str = strings.Clone(r.IPAddress.Str)
				rows = append(rows, r)
			}
			return nil
		}))
	}
	return p, rows
}

// TestRoundTrip: every format gives back the columns the report reads,
// nulls included.
func TestRoundTrip(t *testing.T) {
	recs := reporttest.Dataset()
	from, to := reporttest.Day0, reporttest.Day0.AddDate(0, 0, 2)
	for _, format := range []string{"parquet", "ndjson", "ndjson.gz", "ndjson.zst"} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			reporttest.Write(t, reporttest.FileSink(t, dir, format), from, to, recs)
			p, rows := readAll(t, dir, from, to)
			require.True(t, p.Complete())
			want := map[string]transform.Record{}
			for _, r := range recs {
				if r.CreatedAt >= from.UnixMilli() && r.CreatedAt < to.UnixMilli() {
					want[r.ID] = r
				}
			}
			require.Len(t, rows, len(want))
			for _, r := range rows {
				w, ok := want[r.ID]
				require.True(t, ok, r.ID)
				require.Equal(t, w.CreatedAt, r.CreatedAt)
				require.Equal(t, w.EventKey, r.EventKey)
				require.Equal(t, w.EventCategory, r.EventCategory)
				require.Equal(t, w.ActorID, r.ActorID)
				require.Equal(t, w.IPAddress, r.IPAddress)
				require.JSONEq(t, w.DetailsJSON, r.DetailsJSON)
			}
		})
	}
}

// TestOverlappingFilesCountOnce: days made of partial files that overlap
// (runs of ranges that share hours, none inside another, which would
// replace it; the sinks refuse part of a day held whole, so a whole-day
// file has no overlap), give each event once.
func TestOverlappingFilesCountOnce(t *testing.T) {
	recs := reporttest.Dataset()
	dir := t.TempDir()
	s := reporttest.FileSink(t, dir, "parquet")
	d0, d1 := reporttest.Day0, reporttest.Day0.AddDate(0, 0, 1)
	reporttest.Write(t, s, d0.Add(6*time.Hour), d0.Add(12*time.Hour), recs)
	reporttest.Write(t, s, d0, d0.Add(10*time.Hour), recs)
	reporttest.Write(t, s, d0.Add(8*time.Hour), d0.AddDate(0, 0, 1), recs)
	files, err := filepath.Glob(filepath.Join(dir, "dt="+d0.Format(time.DateOnly), "*.parquet"))
	require.NoError(t, err)
	require.Len(t, files, 3, "three files of overlapping ranges")
	reporttest.Write(t, s, d1, d1.Add(12*time.Hour), recs)
	reporttest.Write(t, s, d1.Add(9*time.Hour), d1.Add(24*time.Hour), recs)
	p, rows := readAll(t, dir, d0, d1.AddDate(0, 0, 1))
	require.True(t, p.Complete())
	seen := map[string]bool{}
	for _, r := range rows {
		require.False(t, seen[r.ID], "event %s read twice", r.ID)
		seen[r.ID] = true
	}
	n := 0
	for _, r := range recs {
		if r.CreatedAt >= d0.UnixMilli() && r.CreatedAt < d1.AddDate(0, 0, 1).UnixMilli() {
			n++
		}
	}
	require.Len(t, seen, n)
}

// TestFollowCycleFiles: a follow cycle's file holds the events of its span
// that no cycle before it delivered, late ones among them, its span
// overlapping the one before (the look-back): every one is read, once (was:
// each file stood for the part of its span the ones before did not cover,
// so the late events in the overlap were left out: 971 of 1,287 events of
// a day a follow loop was feeding).
func TestFollowCycleFiles(t *testing.T) {
	recs := reporttest.Dataset()
	dir := t.TempDir()
	s := reporttest.FileSink(t, dir, "ndjson")
	d0 := reporttest.Day0
	late := func(r transform.Record) bool {
		return r.CreatedAt >= d0.Add(9*time.Hour).UnixMilli() && r.CreatedAt%3 == 0
	}
	cycle := func(from, to time.Time, take func(transform.Record) bool) {
		p := sinks.NewPartition(d0, from, to, "cycle")
		p.Part = true
		reporttest.WritePartition(t, s, p, slices.DeleteFunc(slices.Clone(recs), func(r transform.Record) bool { return !take(r) }))
	}
	cycle(d0, d0.Add(10*time.Hour), func(r transform.Record) bool { return !late(r) })
	cycle(d0.Add(9*time.Hour), d0.Add(20*time.Hour), func(r transform.Record) bool {
		return late(r) || r.CreatedAt >= d0.Add(10*time.Hour).UnixMilli()
	})
	for _, to := range []time.Time{d0.Add(20 * time.Hour), d0.Add(15 * time.Hour)} {
		p, rows := readAll(t, dir, d0, to)
		require.True(t, p.Complete())
		seen := map[string]bool{}
		for _, r := range rows {
			if r.CreatedAt < to.UnixMilli() {
				require.False(t, seen[r.ID], "event %s read twice", r.ID)
				seen[r.ID] = true
			}
		}
		n := 0
		for _, r := range recs {
			if r.CreatedAt >= d0.UnixMilli() && r.CreatedAt < to.UnixMilli() {
				n++
			}
		}
		require.Equal(t, n, len(seen), "to %s", to)
	}
}

// TestGaps: missing and partly covered days are named, each uncovered
// span of a day (was: a day whose first hours were missing was named
// missing whole, and only a day's first hole was named).
func TestGaps(t *testing.T) {
	recs := reporttest.Dataset()
	dir := t.TempDir()
	s := reporttest.FileSink(t, dir, "ndjson.gz")
	d := func(n int) time.Time { return reporttest.Day0.AddDate(0, 0, n) }
	h := func(n, hour int) time.Time { return d(n).Add(time.Duration(hour) * time.Hour) }
	reporttest.Write(t, s, d(0), d(1), recs)
	reporttest.Write(t, s, h(3, 6), d(4), recs)
	reporttest.Write(t, s, h(4, 3), h(4, 6), recs)
	reporttest.Write(t, s, h(4, 18), h(4, 21), recs)
	reporttest.Write(t, s, d(5), h(5, 12), recs)
	reporttest.Write(t, s, d(6), d(7), recs)
	// The folder an export that did not finish left, without a manifest:
	// the day is not held (was: "missing 2026-11-02 … (it holds … 2026-11-02 …)").
	require.NoError(t, os.Mkdir(filepath.Join(dir, "dt=2026-11-02"), 0o700))
	p, err := reader.NewPlan(t.Context(), filesink.ReadOnly(dir), d(0), d(7))
	require.NoError(t, err)
	require.False(t, p.Complete())
	want := "2026-11-02..2026-11-03, 2026-11-04 (00:00:00Z-06:00:00Z), " +
		"2026-11-05 (00:00:00Z-03:00:00Z), 2026-11-05 (06:00:00Z-18:00:00Z), 2026-11-05 (21:00:00Z-24:00), " +
		"2026-11-06 (12:00:00Z-24:00)"
	require.Equal(t, want, reader.DescribeGaps(p.Missing))
	require.Equal(t, "2026-11-01, 2026-11-04..2026-11-07", reader.DescribeDays(p.Held))
	err = reader.NotCovered(filesink.ReadOnly(dir), p)
	var ie *reader.InputError
	require.ErrorAs(t, err, &ie)
	require.Contains(t, err.Error(), "missing "+want)

	// Within the held part of a day, the period is covered.
	p, err = reader.NewPlan(t.Context(), filesink.ReadOnly(dir), h(3, 6), h(4, 6))
	require.NoError(t, err)
	require.Equal(t, "2026-11-05 (00:00:00Z-03:00:00Z)", reader.DescribeGaps(p.Missing))

	// A period of Moscow days (21:00 UTC to 21:00 UTC) needs the end of
	// a UTC day and the start of the next: a missing folder is named with
	// the span the period takes of it, not as the whole day (was:
	// "missing 2026-11-02..2026-11-03" for 3 hours of the first).
	p, err = reader.NewPlan(t.Context(), filesink.ReadOnly(dir), h(1, 21), h(2, 3))
	require.NoError(t, err)
	require.Equal(t, "2026-11-02 (21:00:00Z-24:00), 2026-11-03 (00:00:00Z-03:00:00Z)", reader.DescribeGaps(p.Missing))

	// A period whose only gap is its end (today so far, up to now, beside
	// the follow loop's last cycle) names the --to the output reaches.
	p, err = reader.NewPlan(t.Context(), filesink.ReadOnly(dir), d(5), h(5, 18))
	require.NoError(t, err)
	require.ErrorContains(t, reader.NotCovered(filesink.ReadOnly(dir), p),
		"2026-11-07); it reaches 2026-11-06T12:00:00.000Z: --to 2026-11-06T12:00:00.000Z reports up to there; export")
}

// TestManifests: unknown manifest fields are ignored; another record shape
// or no data at all is an InputError; a broken manifest is a DamagedError.
func TestManifests(t *testing.T) {
	recs := reporttest.Dataset()
	from, to := reporttest.Day0, reporttest.Day0.AddDate(0, 0, 1)
	setup := func(t *testing.T, edit func(m map[string]any)) string {
		dir := t.TempDir()
		reporttest.Write(t, reporttest.FileSink(t, dir, "parquet"), from, to, recs)
		path := filepath.Join(dir, "dt=2026-11-01", "_manifest.json")
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, json.Unmarshal(b, &m))
		edit(m)
		b, err = json.Marshal(m)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, b, 0o600))
		return dir
	}
	t.Run("unknown fields", func(t *testing.T) {
		dir := setup(t, func(m map[string]any) {
			m["chain"] = map[string]any{"previous_sha256": "ab", "signature": "x"}
			m["files"].([]any)[0].(map[string]any)["identity"] = "k1"
		})
		_, rows := readAll(t, dir, from, to)
		require.NotEmpty(t, rows)
	})
	t.Run("other schema", func(t *testing.T) {
		dir := setup(t, func(m map[string]any) { m["schema_version"] = "ocsf.1.3.0" })
		_, err := reader.NewPlan(t.Context(), filesink.ReadOnly(dir), from, to)
		var ie *reader.InputError
		require.ErrorAs(t, err, &ie)
		require.Contains(t, err.Error(), `schema_version "ocsf.1.3.0"`)
	})
	t.Run("not json", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "dt=2026-11-01"), 0o750))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "dt=2026-11-01", "_manifest.json"), []byte("{trunc"), 0o600))
		_, err := reader.NewPlan(t.Context(), filesink.ReadOnly(dir), from, to)
		var de *reader.DamagedError
		require.ErrorAs(t, err, &de)
		require.Equal(t, filepath.Join(dir, "dt=2026-11-01", "_manifest.json"), de.File)
	})
	t.Run("no data", func(t *testing.T) {
		_, err := reader.NewPlan(t.Context(), filesink.ReadOnly(t.TempDir()), from, to)
		var ie *reader.InputError
		require.ErrorAs(t, err, &ie)
		require.Contains(t, err.Error(), "no exported data")
	})
}

// TestDamagedFiles: a changed byte, a truncated file and a missing file are
// each reported with the file's path, in every format.
func TestDamagedFiles(t *testing.T) {
	recs := reporttest.Dataset()
	from, to := reporttest.Day0, reporttest.Day0.AddDate(0, 0, 1)
	for _, format := range []string{"parquet", "ndjson", "ndjson.zst"} {
		for _, damage := range []string{"flip", "truncate", "remove"} {
			t.Run(format+"/"+damage, func(t *testing.T) {
				dir := t.TempDir()
				reporttest.Write(t, reporttest.FileSink(t, dir, format), from, to, recs)
				files, _ := filepath.Glob(filepath.Join(dir, "dt=2026-11-01", "pachca-audit-*"))
				require.Len(t, files, 1)
				b, err := os.ReadFile(files[0])
				require.NoError(t, err)
				switch damage {
				case "flip":
					b[len(b)/2] ^= 0x20
					require.NoError(t, os.WriteFile(files[0], b, 0o600))
				case "truncate":
					require.NoError(t, os.WriteFile(files[0], b[:len(b)-100], 0o600))
				case "remove":
					require.NoError(t, os.Remove(files[0]))
				}
				p, err := reader.NewPlan(t.Context(), filesink.ReadOnly(dir), from, to)
				require.NoError(t, err)
				err = reader.NewReader("").Read(t.Context(), filesink.ReadOnly(dir), p.Parts[0], func([]reader.Row) error { return nil })
				var de *reader.DamagedError
				require.ErrorAs(t, err, &de)
				require.Equal(t, files[0], de.File)
				require.True(t, slices.ContainsFunc([]string{"sha256", "bytes", "missing"}, func(s string) bool { return strings.Contains(err.Error(), s) }) ||
					errors.Unwrap(err) != nil, err.Error())
			})
		}
	}
}

// TestLongLine: a record whose NDJSON line is longer than the report's
// bound once was (16 MiB), as an event with large details makes, is read
// like any other, not taken for a damaged file.
func TestLongLine(t *testing.T) {
	recs := reporttest.Dataset()[:3]
	from := time.UnixMilli(recs[0].CreatedAt).UTC().Truncate(24 * time.Hour)
	to := from.AddDate(0, 0, 1)
	for i := range recs {
		recs[i].CreatedAt = from.Add(time.Duration(i) * time.Minute).UnixMilli()
	}
	recs[1].DetailsJSON = `{"blob":"` + strings.Repeat("x", 20<<20) + `"}`
	dir := t.TempDir()
	reporttest.Write(t, reporttest.FileSink(t, dir, "ndjson"), from, to, recs)
	_, rows := readAll(t, dir, from, to)
	require.Len(t, rows, 3)
	require.Equal(t, recs[1].DetailsJSON, rows[1].DetailsJSON)
}

// TestAnotherConfigurationsDay: a day folder copied in from the output of
// another configuration (another filter) is refused, naming its manifest,
// not read as this output's day.
func TestAnotherConfigurationsDay(t *testing.T) {
	recs := reporttest.Dataset()
	from, to := reporttest.Day0, reporttest.Day0.AddDate(0, 0, 2)
	export := func(id sinks.Identity) string {
		dir := filepath.Join(t.TempDir(), "out")
		s := reporttest.FileSink(t, dir, "parquet")
		_, err := s.(sinks.Claimer).Claim(t.Context(), sinks.Claim{Identity: id, Create: true})
		require.NoError(t, err)
		reporttest.Write(t, s, from, to, recs)
		return dir
	}
	dir := export(sinks.Identity{Workspace: "test"})
	other := export(sinks.Identity{Workspace: "test", EventKeys: []string{"user_2fa_fail"}})
	_, rows := readAll(t, dir, from, to)
	require.NotEmpty(t, rows, "this configuration's own days are read")

	day := filepath.Join(dir, "dt=2026-11-01")
	require.NoError(t, os.RemoveAll(day))
	require.NoError(t, os.CopyFS(day, os.DirFS(filepath.Join(other, "dt=2026-11-01"))))
	_, err := reader.NewPlan(t.Context(), filesink.ReadOnly(dir), from, to)
	var de *reader.DamagedError
	require.ErrorAs(t, err, &de)
	require.Equal(t, filepath.Join(day, "_manifest.json"), de.File)
	require.Contains(t, err.Error(), "another configuration's events")
	_, rows = readAll(t, dir, from.AddDate(0, 0, 1), to)
	require.NotEmpty(t, rows, "the other days are still read")
}
