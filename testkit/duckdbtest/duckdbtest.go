// Package duckdbtest runs SQL in DuckDB itself, the reader the README's
// claims about globs and files are about, through its Node.js binding
// (@duckdb/node-api, installed pinned by `make duckdb` into bin/duckdb-node;
// Node.js comes with the machine). Tests skip without it unless CI=true.
package duckdbtest

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/testkit/testbin"
)

// script runs the SQL of argv[2] and prints its rows as a JSON array of
// objects (numbers that do not fit a double as strings).
const script = `const { DuckDBInstance } = require(process.env.DUCKDB_NODE_API);
(async () => {
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  const r = await c.runAndReadAll(process.argv[2]);
  process.stdout.write(JSON.stringify(r.getRowObjectsJson()));
})().catch(e => { process.stderr.write(String((e && e.message) || e)); process.exit(1); });
`

// Query runs sql in a fresh in-memory DuckDB and returns its rows.
func Query(t testing.TB, sql string) []map[string]any {
	t.Helper()
	dir := testbin.Require(t, "PACHCA_DUCKDB_NODE", "duckdb-node", "duckdb")
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("duckdbtest: no node on PATH: %v", err)
		}
		t.Skipf("duckdbtest: no node on PATH: %v", err)
	}
	path := filepath.Join(t.TempDir(), "query.cjs")
	require.NoError(t, os.WriteFile(path, []byte(script), 0o600))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, path, sql)
	cmd.Env = append(os.Environ(), "DUCKDB_NODE_API="+filepath.Join(dir, "node_modules", "@duckdb", "node-api"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "duckdb: %s\nSQL: %s", stderr.String(), sql)
	var rows []map[string]any
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &rows), stdout.String())
	return rows
}
