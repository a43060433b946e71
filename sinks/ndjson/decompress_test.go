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

// TestDecompressHugeWindow: a zstd frame whose header asks for a window
// above MaxZstdWindow (512 MiB here, in a file of 14 bytes) is refused,
// not decoded with the memory it asks for; one of MaxZstdWindow decodes.
func TestDecompressHugeWindow(t *testing.T) {
	frame := func(windowDescriptor byte) []byte {
		// Magic, a frame header descriptor with no content size and no
		// single segment, the window descriptor, then one raw last block.
		b := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, windowDescriptor}
		bh := 5<<3 | 1
		return append(b, byte(bh), byte(bh>>8), byte(bh>>16), 'a', '\n', 'b', '\n', 'c')
	}
	for name, tc := range map[string]struct {
		wd byte
		ok bool
	}{
		"512 MiB": {0x98, false}, // exponent 19: 1 KiB << 19
		"8 MiB":   {0x68, true},  // exponent 13
	} {
		t.Run(name, func(t *testing.T) {
			lines, err := ndjson.Decompress("x.ndjson.zst", bytes.NewReader(frame(tc.wd)))
			require.NoError(t, err)
			defer lines.Close()
			got, err := io.ReadAll(lines)
			if tc.ok {
				require.NoError(t, err)
				require.Equal(t, "a\nb\nc", string(got))
				return
			}
			require.ErrorContains(t, err, "window size exceeded")
		})
	}
}
