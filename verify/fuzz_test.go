package verify

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/report/reporttest"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/ndjson"
	"github.com/pachca-export/pachca-export/sinks/parquetfmt"
	"github.com/pachca-export/pachca-export/testkit/fuzztest"
)

// fuzzSeed writes a few records of one day through a file sink of format
// and returns the bytes of the data file.
func fuzzSeed(f *testing.F, formatOf func() (sinks.Format, error)) []byte {
	f.Helper()
	format, err := formatOf()
	require.NoError(f, err)
	return reporttest.DataFile(f, format, reporttest.Dataset()[:30])
}

// FuzzReadRecords: verify's reader of a data file (Parquet by its magic
// number, else NDJSON, plain, gzip or zstd), on anything a damaged disk
// or another tool may leave, hashes every byte and reads the records or
// fails with a one-line error; never a panic, a hang or a huge allocation.
func FuzzReadRecords(f *testing.F) {
	for _, format := range []func() (sinks.Format, error){
		func() (sinks.Format, error) { return parquetfmt.Format("zstd") },
		func() (sinks.Format, error) { return parquetfmt.OCSFFormat("snappy") },
		func() (sinks.Format, error) { return ndjson.Format("none") },
		func() (sinks.Format, error) { return ndjson.Format("gzip") },
		func() (sinks.Format, error) { return ndjson.Format("zstd") },
		func() (sinks.Format, error) { return ndjson.OCSFFormat("none") },
	} {
		f.Add(fuzzSeed(f, format))
	}
	dir := fuzztest.Dir(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		name := "pachca-audit-fuzz.ndjson"
		switch {
		case bytes.HasPrefix(b, []byte("PAR1")):
			name = "pachca-audit-fuzz.parquet"
		case bytes.HasPrefix(b, []byte{0x1f, 0x8b}):
			name += ".gz"
		case bytes.HasPrefix(b, []byte{0x28, 0xb5, 0x2f, 0xfd}):
			name += ".zst"
		}
		var n int64
		c, err := read(t.Context(), name, bytes.NewReader(b), dir, func(id, schema string) { n++ })
		sum := sha256.Sum256(b)
		require.Equal(t, hex.EncodeToString(sum[:]), c.SHA256, "not every byte hashed")
		require.EqualValues(t, len(b), c.Bytes)
		require.Equal(t, n, c.Records, "records counted and records passed on differ")
		if err != nil {
			require.NotContains(t, err.Error(), "\n", "the error is not one line")
			require.NotEmpty(t, strings.TrimSpace(err.Error()))
		}
	})
}
