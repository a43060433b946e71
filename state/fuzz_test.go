package state_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/extract"
	"github.com/pachca-export/pachca-export/internal/failure"
	"github.com/pachca-export/pachca-export/internal/sumfile"
	"github.com/pachca-export/pachca-export/state"
	"github.com/pachca-export/pachca-export/testkit/fuzztest"
)

// fuzzStore opens a state for a fuzz target's worker and returns it and
// the bytes of file, which write made there.
func fuzzStore(f *testing.F, file string, write func(s *state.Store) error) (*state.Store, []byte) {
	f.Helper()
	s, err := state.Open(fuzztest.Dir(f), "fuzz")
	require.NoError(f, err)
	f.Cleanup(func() { s.Close() })
	require.NoError(f, write(s))
	b, err := os.ReadFile(filepath.Join(s.Dir(), file))
	require.NoError(f, err)
	return s, b
}

// seal puts b into the envelope sumfile.Write makes, with its checksum:
// the file as a tool that rewrote it whole would leave it, so that the
// checks of the value behind the checksum are fuzzed too.
func seal(b []byte, sealed bool) []byte {
	if !sealed {
		return b
	}
	return sumfile.Seal(b)
}

// requireDamaged checks the error of a damaged state file: permanent,
// naming the file, on one line.
func requireDamaged(t *testing.T, err error, path string) {
	t.Helper()
	require.True(t, failure.IsPermanent(err), "%v", err)
	require.Contains(t, err.Error(), path)
	require.NotContains(t, err.Error(), "\n")
}

// FuzzExported: whatever exported.json holds, Exported gives days that
// are days (a date, a record count), or the permanent error of a damaged
// state naming the file; never a panic, never a day that is not one.
func FuzzExported(f *testing.F) {
	at := time.Date(2026, 11, 2, 0, 10, 0, 0, time.UTC)
	s, written := fuzzStore(f, "exported.json", func(s *state.Store) error {
		if err := s.MarkExported(state.Day{Day: "2026-11-01", ExportedAt: at, RunID: "run-1", Records: 12}); err != nil {
			return err
		}
		return s.MarkExported(state.Day{Day: "2026-11-02", ExportedAt: at.Add(24 * time.Hour), RunID: "run-2"})
	})
	path := filepath.Join(s.Dir(), "exported.json")
	f.Add(written, false)
	f.Add([]byte(`{"days":[{"day":"2026-11-01","exported_at":"2026-11-02T00:10:00Z","run_id":"r","records":3}]}`), false)
	f.Add([]byte(`{"days":[{"day":"2026-11-01","records":-3},{"day":"x"}]}`), true)
	f.Fuzz(func(t *testing.T, b []byte, sealed bool) {
		require.NoError(t, os.WriteFile(path, seal(b, sealed), 0o600))
		days, err := s.Exported()
		if err != nil {
			requireDamaged(t, err, path)
			return
		}
		for key, d := range days {
			require.Equal(t, key, d.Day)
			day, err := time.Parse(time.DateOnly, d.Day)
			require.NoError(t, err, "a day that is not a date read as exported")
			require.Equal(t, d.Day, day.Format(time.DateOnly))
			require.GreaterOrEqual(t, d.Records, int64(0), "a negative record count")
		}
	})
}

// FuzzFollow: whatever follow.json holds, Follow gives a position a loop
// can go on from (a start, a watermark not before it, a pending cycle
// after the last committed one, over a range that is not empty), or the
// permanent error of a damaged state naming the file; never a panic.
func FuzzFollow(f *testing.F) {
	start := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	s, written := fuzzStore(f, "follow.json", func(s *state.Store) error {
		return s.SetFollow(state.Follow{Start: start, Watermark: start.Add(time.Hour), Seq: 3, Read: start.Add(-time.Minute),
			Pending: &state.Cycle{Seq: 4, From: start.Add(50 * time.Minute), To: start.Add(2 * time.Hour)}})
	})
	path := filepath.Join(s.Dir(), "follow.json")
	f.Add(written, false)
	f.Add([]byte(`{"start":"2026-11-01T12:00:00Z","watermark":"2026-11-01T12:00:00Z","seq":0}`), false)
	f.Add([]byte(`{"start":"2026-11-01T12:00:00Z","watermark":"2026-10-01T12:00:00Z","seq":-1,"pending":{"seq":-1}}`), true)
	f.Fuzz(func(t *testing.T, b []byte, sealed bool) {
		require.NoError(t, os.WriteFile(path, seal(b, sealed), 0o600))
		pos, ok, err := s.Follow()
		if err != nil {
			require.False(t, ok)
			requireDamaged(t, err, path)
			return
		}
		require.True(t, ok, "a follow.json that is there reads as none")
		require.False(t, pos.Start.IsZero())
		require.False(t, pos.Watermark.Before(pos.Start), "a watermark before the start")
		require.GreaterOrEqual(t, pos.Seq, int64(0))
		if c := pos.Pending; c != nil {
			require.Greater(t, c.Seq, pos.Seq, "a pending cycle not after the last committed one")
			require.True(t, c.From.Before(c.To), "a pending cycle over nothing")
		}
	})
}

// FuzzDelivered: whatever a day's id log holds, Delivered gives the ids of
// its whole lines that check (their CRC), and stops at any other with the
// permanent error of a damaged state naming the file and line; never a
// panic.
func FuzzDelivered(f *testing.F) {
	const day = "2026-11-01"
	at := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC).UnixMilli()
	s, written := fuzzStore(f, filepath.Join("follow-ids", day), func(s *state.Store) error {
		if err := s.AppendDelivered(1, slices.Values([]state.DeliveredID{{ID: "a", At: at, Sum: 0xabc}, {ID: "b c\n", At: at + 1}})); err != nil {
			return err
		}
		return s.AppendDelivered(2, slices.Values([]state.DeliveredID{{ID: `"q`, At: at + 2, Sum: 1}}))
	})
	path := filepath.Join(s.Dir(), "follow-ids", day)
	f.Add(written, int64(1))
	f.Add([]byte("1 1793523600000 a\n2 1793523600000 b 1a2b3c4d\n3 x"), int64(5))
	f.Fuzz(func(t *testing.T, b []byte, upTo int64) {
		require.NoError(t, os.WriteFile(path, b, 0o600))
		n := 0
		err := s.Delivered(day, upTo, func(state.DeliveredID) { n++ })
		if err != nil {
			requireDamaged(t, err, path)
			return
		}
		require.LessOrEqual(t, n, bytes.Count(b, []byte("\n")), "more ids than whole lines")
	})
}

// FuzzSpool: whatever a window file of the spool holds, Read passes on its
// lines and ends with nil only when they match its trailer (their count,
// length and sha256), else with ErrDamaged naming the file on one line;
// never a panic.
func FuzzSpool(f *testing.F) {
	const day = "2026-11-01"
	w := extract.Window{Start: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).UnixMilli(), End: time.Date(2026, 11, 1, 1, 0, 0, 0, time.UTC).UnixMilli()}
	s, err := state.Open(fuzztest.Dir(f), "fuzz")
	require.NoError(f, err)
	f.Cleanup(func() { s.Close() })
	sp := s.Spool()
	ww, err := sp.Open(day, w)
	require.NoError(f, err)
	for _, raw := range []string{`{"id":1,"event_key":"user_login"}`, "{\"id\":\"2\",\n\"x\":[]}", "not json"} {
		require.NoError(f, ww.Add(extract.Event{Raw: []byte(raw)}))
	}
	require.NoError(f, ww.Commit(w))
	ws, err := sp.Windows(day)
	require.NoError(f, err)
	require.Len(f, ws, 1)
	entries, err := os.ReadDir(sp.Dir(day))
	require.NoError(f, err)
	require.Len(f, entries, 1)
	path := filepath.Join(sp.Dir(day), entries[0].Name())
	b, err := os.ReadFile(path)
	require.NoError(f, err)
	f.Add(b)
	f.Add([]byte("{}\n#pachca-spool records=1 bytes=3 sha256=00\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		require.NoError(t, os.WriteFile(path, b, 0o600))
		var lines int64
		err := sp.Read(day, w, func(raw []byte, at state.Line) error {
			lines++
			require.NotContains(t, string(raw), "\n")
			return nil
		})
		if err != nil {
			require.ErrorIs(t, err, state.ErrDamaged)
			require.Contains(t, err.Error(), path)
			require.NotContains(t, err.Error(), "\n")
			return
		}
		require.Contains(t, string(b), fmt.Sprintf("records=%d ", lines))
	})
}
