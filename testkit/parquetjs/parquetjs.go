// Package parquetjs reads Parquet files with readers that share no code
// with the Arrow Go writer nor with DuckDB: hyparquet (pure JavaScript,
// with hyparquet-compressors for zstd, gzip, brotli and lz4) and
// parquet-wasm (arrow-rs's parquet crate compiled to WebAssembly, strict
// about the spec; its Arrow IPC output read with apache-arrow). They are
// installed pinned by `make parquetjs` into bin/parquet-js (or named by
// PACHCA_PARQUET_JS) and run with the machine's Node.js; tests skip
// without them unless CI=true.
package parquetjs

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/testkit/testbin"
)

// The readers Read takes.
const (
	Hyparquet   = "hyparquet"
	ParquetWasm = "parquet-wasm"
)

// Readers are every reader, in the order tests run them.
var Readers = []string{Hyparquet, ParquetWasm}

//go:embed read.mjs
var script []byte

// File is one Parquet file as a reader read it.
type File struct {
	// Rows are the rows as JSON objects decoded with json.Number: nested
	// groups as objects, lists as arrays, maps as objects, 64-bit
	// integers exact, timestamps as 2006-01-02T15:04:05.000Z text; a null
	// member is left out (a null in a list stays).
	Rows []map[string]any
	// Meta is hyparquet's FileMetaData of the footer (schema, row_groups,
	// created_by, key_value_metadata) or, for parquet-wasm, arrow_schema:
	// the Arrow fields arrow-rs derived from the Parquet schema.
	Meta map[string]any
}

// Read reads the files at paths with every reader, each in one Node.js
// process, the processes side by side; it returns, by reader, the files
// in the order of paths. A file a reader refuses fails the test with the
// reader's message.
func Read(t testing.TB, paths ...string) map[string][]File {
	t.Helper()
	dir := testbin.Require(t, "PACHCA_PARQUET_JS", "parquet-js", "parquetjs")
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("parquetjs: no node on PATH: %v", err)
		}
		t.Skipf("parquetjs: no node on PATH: %v", err)
	}
	js := filepath.Join(t.TempDir(), "read.mjs")
	require.NoError(t, os.WriteFile(js, script, 0o600))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	type run struct {
		cmd            *exec.Cmd
		stdout, stderr bytes.Buffer
	}
	runs := map[string]*run{}
	for _, reader := range Readers {
		r := &run{cmd: exec.CommandContext(ctx, node, append([]string{"--max-old-space-size=2048", js, reader}, paths...)...)}
		r.cmd.Env = append(os.Environ(), "PARQUET_JS_DIR="+dir)
		r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
		require.NoError(t, r.cmd.Start())
		runs[reader] = r
	}
	errs := map[string]error{}
	for reader, r := range runs {
		errs[reader] = r.cmd.Wait() // every process waited for before any failure
	}
	out := map[string][]File{}
	for _, reader := range Readers {
		r := runs[reader]
		require.NoError(t, errs[reader], "%s: %s", reader, r.stderr.String())
		d := json.NewDecoder(&r.stdout)
		d.UseNumber()
		files := make([]File, len(paths))
		for i := range files {
			require.NoError(t, d.Decode(&files[i]), "%s: output of %s", reader, paths[i])
		}
		require.False(t, d.More(), "%s: output after the last file", reader)
		out[reader] = files
	}
	return out
}
