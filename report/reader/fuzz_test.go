package reader_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/report/reader"
	"github.com/pachca-export/pachca-export/report/reporttest"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/filesink"
	"github.com/pachca-export/pachca-export/sinks/ndjson"
	"github.com/pachca-export/pachca-export/sinks/parquetfmt"
	"github.com/pachca-export/pachca-export/testkit/fuzztest"
)

// fuzzDay is the day the fuzz targets put their file under.
const fuzzDay = "2026-11-01"

// seedFile writes n records of one day (one without an address) through
// the file sink of format and returns the bytes of the data file it wrote.
func seedFile(f *testing.F, format sinks.Format, n int) []byte {
	f.Helper()
	recs := reporttest.Dataset()[:n]
	recs[0].IPAddress.Valid = false
	return reporttest.DataFile(f, format, recs)
}

// must is the format a constructor returns, which must not fail.
func must(f sinks.Format, err error) sinks.Format {
	if err != nil {
		panic(err)
	}
	return f
}

// readFuzzed puts b under name in a store whose manifest entry matches it
// (size, sha256 and the given record count: a file replaced together with
// its manifest) and reads it. Whatever b holds, the read ends with nil or
// a *DamagedError naming the file, on one line.
func readFuzzed(t *testing.T, dir, name string, b []byte, records int64) {
	path := filepath.Join(dir, "dt="+fuzzDay, name)
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
	require.NoError(t, os.WriteFile(path, b, 0o600))
	sum := sha256.Sum256(b)
	p := reader.Part{Day: fuzzDay, From: math.MinInt64, To: math.MaxInt64, File: sinks.ManifestFile{
		Name: name, Bytes: int64(len(b)), SHA256: hex.EncodeToString(sum[:]), Records: records}}
	var rows int64
	err := reader.NewReader(dir).Read(t.Context(), filesink.ReadOnly(dir), p, func(batch []reader.Row) error {
		for _, r := range batch {
			rows++
			_ = strings.Clone(r.ID) + strings.Clone(r.DetailsJSON) + strings.Clone(r.IPAddress.Str)
		}
		return nil
	})
	if err == nil {
		require.Equal(t, records, rows, "read without error, but not the records its manifest lists")
		return
	}
	var de *reader.DamagedError
	require.True(t, errors.As(err, &de), "not a DamagedError: %v", err)
	require.Equal(t, path, de.File)
	require.NotContains(t, err.Error(), "\n", "the error is not one line")
}

// parquetRows is the row count b's footer claims, -1 when it has none:
// the count a manifest written with the file would list. A panic is left
// to the read under test.
func parquetRows(b []byte) (n int64) {
	defer func() {
		if recover() != nil {
			n = -1
		}
	}()
	r, err := file.NewParquetReader(bytes.NewReader(b))
	if err != nil {
		return -1
	}
	defer r.Close()
	return r.NumRows()
}

// FuzzReadParquet: a Parquet file replaced together with its manifest
// entry (a disk, a tool or a person at work) is read or reported damaged,
// naming the file; never a panic, a hang or a huge allocation.
func FuzzReadParquet(f *testing.F) {
	f.Add(seedFile(f, must(parquetfmt.Format("none")), 2))
	f.Add(seedFile(f, must(parquetfmt.Format("zstd")), 20))
	f.Add([]byte("PAR1PAR1"))
	dir := fuzztest.Dir(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		readFuzzed(t, dir, "pachca-audit-fuzz.parquet", b, parquetRows(b))
	})
}

// FuzzReadNDJSON: the same for NDJSON, plain, gzip or zstd (by the
// magic number of b, as a file of that name would hold).
func FuzzReadNDJSON(f *testing.F) {
	f.Add(seedFile(f, must(ndjson.Format("none")), 3))
	f.Add(seedFile(f, must(ndjson.Format("gzip")), 3))
	f.Add(seedFile(f, must(ndjson.Format("zstd")), 3))
	f.Add([]byte(`{"id":"a","created_at":"2026-11-01T00:00:00.000Z","ip_address":null}` + "\n\n"))
	dir := fuzztest.Dir(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		name := "pachca-audit-fuzz.ndjson"
		switch {
		case bytes.HasPrefix(b, []byte{0x1f, 0x8b}):
			name += ".gz"
		case bytes.HasPrefix(b, []byte{0x28, 0xb5, 0x2f, 0xfd}):
			name += ".zst"
		}
		records := int64(0)
		if lines, err := ndjson.Decompress(name, bytes.NewReader(b)); err == nil {
			text, _ := io.ReadAll(io.LimitReader(lines, 64<<20))
			lines.Close()
			for l := range bytes.SplitSeq(text, []byte("\n")) {
				if len(l) > 0 {
					records++
				}
			}
		}
		readFuzzed(t, dir, name, b, records)
	})
}
