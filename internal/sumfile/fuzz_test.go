package sumfile_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/internal/failure"
	"github.com/pachca-export/pachca-export/internal/sumfile"
	"github.com/pachca-export/pachca-export/testkit/fuzztest"
)

// record is shaped as the state's files are: a list of structs with
// times and numbers.
type record struct {
	Days []struct {
		Day        string    `json:"day"`
		ExportedAt time.Time `json:"exported_at"`
		Records    int64     `json:"records"`
	} `json:"days"`
	Seq int64 `json:"seq,omitempty"`
}

// FuzzRead: whatever a file holds, Read gives its value, or a permanent
// one-line error naming the file and the recovery; never a panic, and
// never an empty value from a file Write did not write (sealed false:
// the fuzzer's bytes as they are). With sealed true the bytes are put
// into an envelope with their checksum, as a tool that rewrote the file
// whole would, so that the decoding of the data is fuzzed too. What reads
// writes back and reads again as the same value.
func FuzzRead(f *testing.F) {
	dir := fuzztest.Dir(f)
	path := filepath.Join(dir, "f.json")
	var v record
	require.NoError(f, json.Unmarshal([]byte(`{"days":[{"day":"2026-11-01","exported_at":"2026-11-02T00:10:00Z","records":12}],"seq":3}`), &v))
	require.NoError(f, sumfile.Write(path, v, 0o600))
	written, err := os.ReadFile(path)
	require.NoError(f, err)
	f.Add(written, false)
	f.Add([]byte(`{"days":[{"day":"2026-11-01","records":1}]}`), false)
	f.Add([]byte(`{"days":[{"day":"2026-11-01","records":1}]}`), true)
	f.Add([]byte(`{"sha256":"","data":null}`), false)
	f.Add([]byte(`{"days":null}`), false)
	f.Add([]byte(`{"days":[],"seq":0}`), false)
	f.Add([]byte(`[]`), true)
	f.Fuzz(func(t *testing.T, b []byte, sealed bool) {
		if sealed {
			b = sumfile.Seal(b)
		}
		require.NoError(t, os.WriteFile(path, b, 0o600))
		var got record
		ok, err := sumfile.Read(path, &got, "the recovery")
		if err != nil {
			require.False(t, ok)
			require.True(t, failure.IsPermanent(err), "%v", err)
			require.Contains(t, err.Error(), path)
			require.Contains(t, err.Error(), "the recovery")
			require.NotContains(t, err.Error(), "\n")
			return
		}
		require.True(t, ok, "a file that is there reads as missing")
		if !sealed && !bytes.Contains(b, []byte(`"sha256"`)) {
			require.False(t, reflect.ValueOf(got).IsZero() || len(got.Days) == 0 && got.Seq == 0, "a file of an earlier version read as an empty value")
		}
		require.NoError(t, sumfile.Write(path, got, 0o600))
		var again record
		ok, err = sumfile.Read(path, &again, "the recovery")
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, got, again, "what read does not read back the same once written")
	})
}
