package parquetfmt_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/sinks/ndjson"
	"github.com/pachca-export/pachca-export/sinks/parquetfmt"
	"github.com/pachca-export/pachca-export/testkit/ocsfschema"
	"github.com/pachca-export/pachca-export/testkit/ocsftest"
	"github.com/pachca-export/pachca-export/testkit/parquetjs"
	"github.com/pachca-export/pachca-export/transform"
)

// TestReadersManyRowGroups: files of many row groups, closed by their
// rows or by their bytes, of schema v1 and of OCSF, and a column chunk
// that falls back from dictionary to plain pages, are read by hyparquet
// and parquet-wasm (testkit/parquetjs) with every row equal to the NDJSON
// of the same record, and the statistics of each row group those of its
// rows (TestParquetReaders covers every configured variant).
func TestReadersManyRowGroups(t *testing.T) {
	recs := append(edgeRecords(), genRecords(3000, 7)...)
	recs = append(recs, ocsftest.Records(t)...)
	// 2 MB of distinct user agents: in a row group of the default size the
	// writer gives up the column's dictionary (at 1 MiB) half way through
	// the column chunk, whose first page is then dictionary-encoded and
	// the rest plain. 1.5 MB of details that do not compress fill row
	// groups of 64 KiB.
	agents := slices.Clone(recs[:1600])
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 10; i < 1510; i++ {
		agents[i].UserAgent = null(fmt.Sprintf("agent %d ", i) + strings.Repeat("ж", 700))
		noise := make([]byte, 500)
		for j := range noise {
			noise[j] = "0123456789abcdef"[rng.IntN(16)]
		}
		agents[i].DetailsJSON = `{"x":"` + string(noise) + `"}`
	}

	var buf bytes.Buffer
	oenc, err := ndjson.NewOCSFEncoder(&buf, "none")
	require.NoError(t, err)
	require.NoError(t, oenc.Write(recs))
	require.NoError(t, oenc.Close())
	events := map[string]map[string]any{}
	for _, ev := range decodeLines(t, buf.Bytes()) {
		events[ev["metadata"].(map[string]any)["uid"].(string)] = ev
	}
	require.Len(t, events, len(recs))

	byRows := encode(t, recs, 300, "zstd", parquetfmt.WithRowGroupRows(500))
	fallback := encode(t, agents, 300, "zstd")
	byBytes := encode(t, agents, 300, "snappy", parquetfmt.WithBatchRows(256), parquetfmt.WithRowGroupBytes(64<<10))
	ocsfPath := filepath.Join(t.TempDir(), "ocsf.parquet")
	f, err := os.Create(ocsfPath)
	require.NoError(t, err)
	enc, err := parquetfmt.NewOCSFEncoder(f, testPartition(), "gzip", nil, parquetfmt.WithRowGroupRows(900))
	require.NoError(t, err)
	require.NoError(t, enc.Write(recs))
	require.NoError(t, enc.Close())
	require.NoError(t, f.Close())

	files := []struct {
		name, path, compression string
		recs                    []transform.Record
	}{
		{"v1 row groups by rows", byRows, "zstd", recs}, {"v1 row groups by bytes", byBytes, "snappy", agents},
		{"OCSF", ocsfPath, "gzip", recs}, {"v1 dictionary fallback", fallback, "zstd", agents}}
	v1 := map[string]map[string]map[string]any{}
	for _, f := range files {
		v1[f.path] = v1Lines(t, f.recs)
	}
	var paths []string
	for _, f := range files {
		paths = append(paths, f.path)
	}
	read := parquetjs.Read(t, paths...)
	for _, reader := range parquetjs.Readers {
		for i, f := range read[reader] {
			name, recs := files[i].name, files[i].recs
			require.Len(t, f.Rows, len(recs), "%s: %s", reader, name)
			if reader == parquetjs.Hyparquet {
				if groups := f.Meta["row_groups"].([]any); files[i].path == fallback {
					require.True(t, fellBack(f.Meta, "user_agent"), "user_agent: dictionary and plain pages in one chunk")
				} else {
					require.Greater(t, len(groups), 2, "%s: row groups", name)
				}
				parquetjs.RequireFooter(t, name, f.Meta, files[i].compression)
				parquetjs.RequireStatistics(t, name, f)
			}
			for j, row := range f.Rows {
				if files[i].path == ocsfPath {
					uid := row["metadata"].(map[string]any)["uid"].(string)
					require.Equal(t, recs[j].ID, uid, "%s: %s: rows in order", reader, name)
					require.Equal(t, events[uid], ocsfschema.LikeJSON(events[uid], row), "%s: %s: event %s", reader, name, uid)
					continue
				}
				id := row["id"].(string)
				require.Equal(t, recs[j].ID, id, "%s: %s: rows in order", reader, name)
				require.Equal(t, parquetjs.WithoutNulls(v1[files[i].path][id]), row, "%s: %s: record %s", reader, name, id)
			}
		}
	}
}

// v1Lines are the NDJSON lines of recs, decoded, by id.
func v1Lines(t *testing.T, recs []transform.Record) map[string]map[string]any {
	t.Helper()
	var lines []byte
	for i := range recs {
		lines = append(ndjson.AppendRecord(lines, &recs[i]), '\n')
	}
	out := map[string]map[string]any{}
	for _, ev := range decodeLines(t, lines) {
		out[ev["id"].(string)] = ev
	}
	require.Len(t, out, len(recs))
	return out
}

// fellBack reports whether a chunk of column has dictionary-encoded and
// plain data pages both.
func fellBack(meta map[string]any, column string) bool {
	for _, g := range meta["row_groups"].([]any) {
		for _, c := range g.(map[string]any)["columns"].([]any) {
			md := c.(map[string]any)["meta_data"].(map[string]any)
			if fmt.Sprint(md["path_in_schema"]) != "["+column+"]" {
				continue
			}
			kinds := map[any]bool{}
			for _, st := range md["encoding_stats"].([]any) {
				if st := st.(map[string]any); st["page_type"] == "DATA_PAGE" {
					kinds[st["encoding"]] = true
				}
			}
			if kinds["PLAIN"] && kinds["RLE_DICTIONARY"] {
				return true
			}
		}
	}
	return false
}

// decodeLines decodes NDJSON lines with json.Number.
func decodeLines(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		d := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		d.UseNumber()
		var m map[string]any
		require.NoError(t, d.Decode(&m), sc.Text())
		out = append(out, m)
	}
	require.NoError(t, sc.Err())
	return out
}
