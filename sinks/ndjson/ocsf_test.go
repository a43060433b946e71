package ndjson_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/ndjson"
	"github.com/pachca-export/pachca-export/testkit/ocsfschema"
	"github.com/pachca-export/pachca-export/testkit/ocsftest"
)

// TestOCSFRoundTrip: every line decodes to the event of its record, in the
// order written, validates against OCSF 1.3.0, and embeds details_json
// byte for byte, with each compression.
func TestOCSFRoundTrip(t *testing.T) {
	schema, err := ocsfschema.Load()
	require.NoError(t, err)
	recs := append(ocsftest.Records(t), ocsftest.Many(t, 1000)...)
	day := time.Date(2025, 5, 16, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct{ compression, ext string }{{"", ".ndjson"}, {"gzip", ".ndjson.gz"}, {"zstd", ".ndjson.zst"}} {
		t.Run("compression="+c.compression, func(t *testing.T) {
			f, err := ndjson.OCSFFormat(c.compression)
			require.NoError(t, err)
			require.Equal(t, "ndjson", f.Name)
			require.Equal(t, c.ext, f.Ext)
			var buf bytes.Buffer
			enc, err := f.New(&buf, sinks.NewPartition(day, day, day.Add(24*time.Hour), "run-1"))
			require.NoError(t, err)
			for i := 0; i < len(recs); i += 700 {
				require.NoError(t, enc.Write(recs[i:min(i+700, len(recs))]))
			}
			require.NoError(t, enc.Close())

			sc := bufio.NewScanner(decompress(t, c.compression, &buf))
			sc.Buffer(nil, 1<<20)
			n := 0
			for ; sc.Scan(); n++ {
				require.Less(t, n, len(recs))
				line := sc.Bytes()
				got, err := ocsfschema.Decode(line)
				require.NoError(t, err)
				require.Equal(t, ocsftest.Event(t, &recs[n]), got)
				require.Contains(t, string(line), `"unmapped":{"details":`+recs[n].DetailsJSON)
				if n < 100 {
					require.NoError(t, schema.Validate(got), "%s", line)
				}
			}
			require.NoError(t, sc.Err())
			require.Equal(t, len(recs), n)
		})
	}
	_, err = ndjson.OCSFFormat("brotli")
	require.ErrorContains(t, err, `unknown compression "brotli"`)
}

func decompress(t *testing.T, compression string, r io.Reader) io.Reader {
	t.Helper()
	switch compression {
	case "gzip":
		zr, err := gzip.NewReader(r)
		require.NoError(t, err)
		return zr
	case "zstd":
		zr, err := zstd.NewReader(r)
		require.NoError(t, err)
		t.Cleanup(zr.Close)
		return zr
	}
	return r
}
