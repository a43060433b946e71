package ndjson_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/ndjson"
	"github.com/pachca-export/pachca-export/transform"
)

// TestDecompress: what each compression's encoder writes decompresses, by
// the file's name, to the lines of the uncompressed encoder.
func TestDecompress(t *testing.T) {
	recs := []transform.Record{{ID: "a", EventKey: "user_login", DetailsJSON: "{}"}, {ID: "b", EventKey: "user_logout", DetailsJSON: "{}"}}
	encode := func(compression string) ([]byte, string) {
		f, err := ndjson.Format(compression)
		require.NoError(t, err)
		var buf bytes.Buffer
		enc, err := f.New(&buf, sinks.Partition{})
		require.NoError(t, err)
		require.NoError(t, enc.Write(recs))
		require.NoError(t, enc.Close())
		return buf.Bytes(), "pachca-audit-2026-11-01" + f.Ext
	}
	plain, _ := encode("none")
	for _, compression := range []string{"none", "gzip", "zstd"} {
		t.Run(compression, func(t *testing.T) {
			body, name := encode(compression)
			lines, err := ndjson.Decompress(name, bytes.NewReader(body))
			require.NoError(t, err)
			got, err := io.ReadAll(lines)
			require.NoError(t, err)
			require.NoError(t, lines.Close())
			require.Equal(t, string(plain), string(got))
		})
	}
	t.Run("not gzip", func(t *testing.T) {
		_, err := ndjson.Decompress("x.ndjson.gz", bytes.NewReader(plain))
		require.ErrorContains(t, err, "gzip: invalid header")
	})
}
