package state_test

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/internal/failure"
	"github.com/pachca-export/pachca-export/state"
)

func TestFollowPosition(t *testing.T) {
	s, err := state.Open(t.TempDir(), "k")
	require.NoError(t, err)
	defer s.Close()
	_, ok, err := s.Follow()
	require.NoError(t, err)
	require.False(t, ok)

	start := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	f := state.Follow{Start: start, Watermark: start.Add(time.Minute), Seq: 3,
		Pending: &state.Cycle{Seq: 4, From: start.Add(-time.Minute), To: start.Add(2 * time.Minute)}}
	require.NoError(t, s.SetFollow(f))
	got, ok, err := s.Follow()
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, f, got)

	require.NoError(t, os.WriteFile(filepath.Join(s.Dir(), "follow.json"), []byte(`{"start":`), 0o600))
	_, _, err = s.Follow()
	require.True(t, failure.IsPermanent(err), "%v", err)
	require.ErrorContains(t, err, "follow.json is damaged")
}

func TestDeliveredLog(t *testing.T) {
	s, err := state.Open(t.TempDir(), "k")
	require.NoError(t, err)
	defer s.Close()
	day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	at := func(h int) int64 { return day.Add(time.Duration(h) * time.Hour).UnixMilli() }
	require.NoError(t, s.AppendDelivered(1, slices.Values([]state.DeliveredID{{"a", at(1), 1}, {"b", at(23), 2}, {"c", at(25), 3}})))
	require.NoError(t, s.AppendDelivered(2, slices.Values([]state.DeliveredID{{"d", at(2), 4}})))
	days, err := s.DeliveredDays()
	require.NoError(t, err)
	require.Equal(t, []string{"2026-11-01", "2026-11-02"}, days)

	read := func(day string, upTo int64) []string {
		var ids []string
		require.NoError(t, s.Delivered(day, upTo, func(d state.DeliveredID) { ids = append(ids, d.ID) }))
		return ids
	}
	require.Equal(t, []string{"a", "b", "d"}, read("2026-11-01", 2))
	require.Equal(t, []string{"a", "b"}, read("2026-11-01", 1), "ids of a cycle that did not commit are ignored")

	// A torn last line (killed while appending) is skipped; damage elsewhere is not.
	path := filepath.Join(s.Dir(), "follow-ids", "2026-11-01")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("3 17")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.Equal(t, []string{"a", "b", "d"}, read("2026-11-01", 3))
	// The next cycle's lines do not glue onto the torn one.
	require.NoError(t, s.AppendDelivered(3, slices.Values([]state.DeliveredID{{"f", at(3), 5}})))
	require.Equal(t, []string{"a", "b", "d", "f"}, read("2026-11-01", 3))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, bytes.Replace(b, []byte(" a "), []byte(" e "), 1), 0o600))
	err = s.Delivered("2026-11-01", 3, func(state.DeliveredID) {})
	require.True(t, failure.IsPermanent(err), "an id changed in place is found: %v", err)
	require.NoError(t, os.WriteFile(path, []byte("1 x a 0\n"), 0o600))
	err = s.Delivered("2026-11-01", 3, func(state.DeliveredID) {})
	require.True(t, failure.IsPermanent(err))
	require.ErrorContains(t, err, "2026-11-01:1 is damaged")

	require.NoError(t, s.RemoveDelivered("2026-11-01"))
	require.NoError(t, s.RemoveDelivered("2026-11-01"))
	days, err = s.DeliveredDays()
	require.NoError(t, err)
	require.Equal(t, []string{"2026-11-02"}, days)
}

// TestDeliveredOddIDs: ids the API may send however odd (a space, a
// newline, a quote, bytes that are not UTF-8, one long enough for a line of
// over 64 KiB) are logged and read back as they came, with their sums,
// next to ordinary ones.
// Was: an id with a space or a newline made the day's log "damaged", and
// the follow loop stopped at every start.
func TestDeliveredOddIDs(t *testing.T) {
	s, err := state.Open(t.TempDir(), "k")
	require.NoError(t, err)
	defer s.Close()
	at := time.Date(2026, 11, 1, 1, 0, 0, 0, time.UTC).UnixMilli()
	ids := []string{"plain", "a b", " lead", "trail ", "two\nlines", "cr\r", `"quoted"`, `"`, "\xff\xfe", "tab\there", "nbsp\u00a0x", "\u2028", strings.Repeat("x", 70_000), "after-long"}
	var in []state.DeliveredID
	for i, id := range ids {
		in = append(in, state.DeliveredID{ID: id, At: at, Sum: uint64(i) << 60})
	}
	require.NoError(t, s.AppendDelivered(1, slices.Values(in)))
	var got []state.DeliveredID
	require.NoError(t, s.Delivered("2026-11-01", 1, func(d state.DeliveredID) { got = append(got, d) }))
	require.Equal(t, in, got)

	// A log written before sums were ("seq at id crc"): its ids are read as
	// they are, quotes and all, with no sum.
	path := filepath.Join(s.Dir(), "follow-ids", "2026-11-01")
	var old []byte
	for _, id := range []string{`"quoted"`, `"half`, "plain"} {
		line := fmt.Sprintf("2 %d %s", at, id)
		old = fmt.Appendf(old, "%s %x\n", line, crc32.Checksum([]byte(line), crc32.MakeTable(crc32.Castagnoli)))
	}
	require.NoError(t, os.WriteFile(path, old, 0o600))
	got = got[:0]
	require.NoError(t, s.Delivered("2026-11-01", 2, func(d state.DeliveredID) { got = append(got, d) }))
	require.Equal(t, []state.DeliveredID{{`"quoted"`, at, 0}, {`"half`, at, 0}, {"plain", at, 0}}, got)
}

// TestDeliveredBeforeCRC: a day's log an earlier version wrote before lines
// carried a CRC ("seq at id") is read, and so are the lines appended to it
// after the upgrade (was: "follow-ids/<day>:1 is damaged", and the follow
// loop of an upgraded binary stopped at every start on the old version's
// log, whose removal would send the day's events again).
func TestDeliveredBeforeCRC(t *testing.T) {
	s, err := state.Open(t.TempDir(), "k")
	require.NoError(t, err)
	defer s.Close()
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC).UnixMilli()
	require.NoError(t, os.MkdirAll(filepath.Join(s.Dir(), "follow-ids"), 0o700))
	path := filepath.Join(s.Dir(), "follow-ids", "2026-11-01")
	old := fmt.Sprintf("1 %d 34daed81-d089-4a08-80c6-d4ab738ba1b3\n2 %d b\n3 %d c\n", at, at+1, at+2)
	require.NoError(t, os.WriteFile(path, []byte(old), 0o600))
	require.NoError(t, s.AppendDelivered(3, slices.Values([]state.DeliveredID{{"d", at + 3, 7}})))

	var got []state.DeliveredID
	require.NoError(t, s.Delivered("2026-11-01", 2, func(d state.DeliveredID) { got = append(got, d) }))
	require.Equal(t, []state.DeliveredID{{"34daed81-d089-4a08-80c6-d4ab738ba1b3", at, 0}, {"b", at + 1, 0}}, got,
		"ids of a cycle that did not commit are ignored in old lines too")
	got = got[:0]
	require.NoError(t, s.Delivered("2026-11-01", 3, func(d state.DeliveredID) { got = append(got, d) }))
	require.Len(t, got, 4)
	require.Equal(t, state.DeliveredID{ID: "d", At: at + 3, Sum: 7}, got[3])

	for _, bad := range []string{"1 x a\n", "1 2\n", "1 2 a b\n", "x 2 a\n"} {
		require.NoError(t, os.WriteFile(path, []byte(bad), 0o600))
		err := s.Delivered("2026-11-01", 3, func(state.DeliveredID) {})
		require.True(t, failure.IsPermanent(err), "%q: %v", bad, err)
	}
}
