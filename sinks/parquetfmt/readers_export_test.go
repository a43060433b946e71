package parquetfmt_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/sinks/athena"
	"github.com/pachca-export/pachca-export/sinks/parquetfmt"
	"github.com/pachca-export/pachca-export/sinks/shape"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
	"github.com/pachca-export/pachca-export/testkit/ocsfschema"
	"github.com/pachca-export/pachca-export/testkit/parquetjs"
)

// edgeEvents are API events with what a reader may get wrong: text in
// many scripts, values longer than a data page (64 KiB), empty strings
// and lists, nulls, integers beyond 2^53. They go at the top of the day's
// first page, newest first: in the last milliseconds of day d.
func edgeEvents(d time.Time) []string {
	end := d.AddDate(0, 0, 1).Add(-time.Millisecond)
	at := func(ms int64) string {
		return end.Add(-time.Duration(ms) * time.Millisecond).Format("2006-01-02T15:04:05.000Z")
	}
	long := strings.Repeat("Пачка 🚀 中文 עברית e\u0301 ", 5000) // ~190 KB
	return []string{
		`{"id":"edge-unicode","created_at":"` + at(0) + `","event_key":"chat_created","entity_id":"7","entity_type":"Chat","actor_id":"5","actor_type":"User",` +
			`"ip_address":"2001:db8::1","user_agent":"` + long + `","details":{"name":"Чат «Ромашка» 🌼 \"quoted\" \\ back\tslash","public_access":true}}`,
		`{"id":"edge-empty","created_at":"` + at(1) + `","event_key":"user_updated","entity_id":"","entity_type":"","actor_id":"","actor_type":"",` +
			`"ip_address":"","user_agent":null,"details":{"changed_attrs":[]}}`,
		`{"id":"edge-lists","created_at":"` + at(2) + `","event_key":"bot_scopes_updated","entity_id":"9007199254740993","entity_type":"Bot","actor_id":"18446744073709551615","actor_type":"User",` +
			`"details":{"added_scopes":["messages:read","чаты:write",""],"removed_scopes":[""],"bot_id":9007199254740993,"changes":{"webhook":{"url":"https://example.com/ü"}}}}`,
		`{"id":"edge-ints","created_at":"` + at(3) + `","event_key":"search_messages_api","entity_id":"1","entity_type":"User","actor_id":"1","actor_type":"User",` +
			`"details":{"search_type":"messages","query_present":false,"cursor_present":true,"limit":9223372036854775807,"filters":{}}}`,
		`{"id":"edge-long-name","created_at":"` + at(4) + `","event_key":"chat_renamed","entity_id":"8","entity_type":"Chat","actor_id":"5","actor_type":"User",` +
			`"details":{"old_name":"` + strings.Repeat("x", 100_000) + `","new_name":"` + long + `"}}`,
	}
}

// readerSinks are a file sink of each Parquet variant a user can
// configure, after the NDJSON sinks of both schemas: schema v1 and OCSF
// daily files in every compression, and one file per OCSF class (the
// Security Lake layout).
func readerSinks(t *testing.T) []config.Sink {
	dir := t.TempDir()
	ocsfKeys := shape.Keys{Schema: shape.SchemaOCSF}
	out := []config.Sink{
		{Type: "ndjson", File: &config.FileSink{Dir: filepath.Join(dir, "v1.ndjson"), Compression: "gzip"}},
		{Type: "ndjson", File: &config.FileSink{Dir: filepath.Join(dir, "ocsf.ndjson"), Compression: "gzip", Keys: ocsfKeys}},
	}
	for _, c := range parquetfmt.Compressions {
		out = append(out,
			config.Sink{Type: "parquet", File: &config.FileSink{Dir: filepath.Join(dir, "v1."+c), Compression: c}},
			config.Sink{Type: "parquet", File: &config.FileSink{Dir: filepath.Join(dir, "ocsf."+c), Compression: c, Keys: ocsfKeys}})
	}
	return append(out, config.Sink{Type: "parquet", File: &config.FileSink{Dir: filepath.Join(dir, "lake"), Keys: shape.Keys{
		Schema: shape.SchemaOCSF, Layout: shape.LayoutSecurityLake,
		SecurityLake: &shape.SecurityLake{AccountID: "123456789012", Region: "eu-central-1"}}}})
}

// TestParquetReaders: every Parquet file a user can configure, written
// by `run` (pipeline.Run against the simulator) through the real sinks,
// is read by hyparquet and by parquet-wasm (arrow-rs), readers that share no code with Arrow Go or
// DuckDB, with every column of every row equal to the NDJSON record of the
// same event; the footer has nothing Athena, Spark or pandas refuse
// (parquetjs.RequireFooter), its statistics are those of the rows, and
// the Athena table has each column, of its type.
func TestParquetReaders(t *testing.T) {
	// A day with a tie group of 500 events on one millisecond, events
	// at midnight, unknown and odd keys and ids, details of 200 KB and
	// edgeEvents; the next day has no event (an empty file).
	day0 := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -10)
	sc := simulator.DefaultConfig()
	sc.Events, sc.From, sc.To, sc.Seed = 1500, day0, day0.AddDate(0, 0, 1), 7
	sc.TieGroup, sc.Midnight, sc.UnknownKeys, sc.OddKeys = 500, true, true, true
	sc.BigDetails, sc.BigEvents = 200_000, 2
	sim, err := simulator.New(sc)
	require.NoError(t, err)
	t.Cleanup(func() { sim.Close() })
	url, injected := prependToFirstPage(t, sim, edgeEvents(day0)...)

	cfg := config.Default()
	cfg.File = "test.yaml"
	cfg.Source.BaseURL, cfg.Source.Token, cfg.Source.Workspace = url+simulator.BasePath, "sim-token", "acme"
	cfg.Source.RequestsPerSecond, cfg.Source.Timeout = 500, 5*time.Second
	cfg.State.Dir = filepath.Join(t.TempDir(), "state")
	cfg.Sinks = readerSinks(t)
	require.NoError(t, cfg.Validate())
	from, to := day0, day0.AddDate(0, 0, 2)
	sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: &cfg, Logger: slog.New(slog.DiscardHandler)}, pipeline.Range{From: from, To: to}, false)
	require.NoError(t, err)
	require.True(t, injected.Load())
	require.Zero(t, sum.DeadLetters)
	want := len(exporttest.Expected(sim, from, to)) + len(edgeEvents(day0))
	require.EqualValues(t, want, sum.Events)

	v1 := exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir)
	require.Len(t, v1, want)
	events := readOCSFLines(t, cfg.Sinks[1].File.Dir)
	require.Len(t, events, want)
	var paths []string
	sinkOf := map[string]config.Sink{}
	for _, s := range cfg.Sinks[2:] {
		files := parquetFiles(t, s.File.Dir)
		require.NotEmpty(t, files)
		for _, f := range files {
			sinkOf[f] = s
		}
		paths = append(paths, files...)
	}
	read := parquetjs.Read(t, paths...)
	for _, reader := range parquetjs.Readers {
		rows := map[string]int{}
		for i, f := range read[reader] {
			s := sinkOf[paths[i]]
			ocsfFiles := s.File.Keys.Schema == shape.SchemaOCSF
			rel, _ := filepath.Rel(filepath.Dir(s.File.Dir), paths[i])
			if reader == parquetjs.Hyparquet {
				parquetjs.RequireFooter(t, rel, f.Meta, s.File.Compression)
				requireAthenaTypes(t, rel, f.Meta, ocsfFiles)
				parquetjs.RequireStatistics(t, rel, f)
			}
			for _, row := range f.Rows {
				if ocsfFiles {
					uid := row["metadata"].(map[string]any)["uid"].(string)
					ev, ok := events[uid]
					require.True(t, ok, "%s: %s: event %s not in the NDJSON", reader, rel, uid)
					require.Equal(t, ev, ocsfschema.LikeJSON(ev, row), "%s: %s: event %s", reader, rel, uid)
				} else {
					id := row["id"].(string)
					line, ok := v1[id]
					require.True(t, ok, "%s: %s: record %s not in the NDJSON", reader, rel, id)
					require.Equal(t, parquetjs.WithoutNulls(line.Fields), row, "%s: %s: record %s", reader, rel, id)
				}
				rows[s.File.Dir]++
			}
		}
		for _, s := range cfg.Sinks[2:] {
			require.Equal(t, want, rows[s.File.Dir], "%s: %s: every event once", reader, s.File.Dir)
		}
	}
}

// prependToFirstPage serves sim with events put at the top of the first
// page of the day's one window (concurrency 1 never splits it).
func prependToFirstPage(t *testing.T, sim *simulator.Server, events ...string) (url string, injected *atomic.Bool) {
	t.Helper()
	injected = new(atomic.Bool)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		sim.Handler().ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if rec.Code == 200 && r.URL.Query().Get("cursor") == "" && bytes.HasPrefix(body, []byte(`{"data":[{`)) && injected.CompareAndSwap(false, true) {
			body = append([]byte(`{"data":[`+strings.Join(events, ",")+`,`), body[len(`{"data":[`):]...)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rec.Code)
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, injected
}

// readOCSFLines reads every OCSF NDJSON file under dir, by metadata.uid.
func readOCSFLines(t *testing.T, dir string) map[string]map[string]any {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "dt=*", "pachca-audit-*.ndjson.gz"))
	require.NoError(t, err)
	out := map[string]map[string]any{}
	for _, path := range files {
		f, err := os.Open(path)
		require.NoError(t, err)
		zr, err := gzip.NewReader(f)
		require.NoError(t, err)
		sc := bufio.NewScanner(zr)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			ev, err := ocsfschema.Decode(sc.Bytes())
			require.NoError(t, err)
			out[ev["metadata"].(map[string]any)["uid"].(string)] = ev
		}
		require.NoError(t, sc.Err())
		f.Close()
	}
	return out
}

// parquetFiles lists the data files under a sink's directory.
func parquetFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".parquet") {
			out = append(out, p)
		}
		return err
	}))
	return out
}

// requireAthenaTypes: every column of the file is a column of the Athena
// table (`pachca-export schema --format sql`) of the same Hive type,
// derived here from the Parquet schema in the footer.
func requireAthenaTypes(t *testing.T, file string, meta map[string]any, ocsfFiles bool) {
	t.Helper()
	sql, err := athena.DDL(athena.Table{Name: "pachca_audit", Location: "s3://b/audit/", Layout: athena.Parquet, OCSF: ocsfFiles})
	require.NoError(t, err)
	ddl := map[string]string{}
	for _, m := range regexp.MustCompile("(?m)^  `([a-z_]+)` (.+?)(?: COMMENT '.*')?,?$").FindAllStringSubmatch(sql, -1) {
		ddl[m[1]] = strings.ReplaceAll(m[2], "`", "")
	}
	root := parquetjs.Schema(t, meta)
	for _, c := range root.Children {
		name := c.Str("name")
		typ, ok := ddl[name]
		require.True(t, ok, "%s: column %s is not in the Athena table", file, name)
		require.Equal(t, typ, hiveOfParquet(t, c), "%s: column %s", file, name)
	}
}

// hiveOfParquet is the Hive type a Parquet schema node reads as.
func hiveOfParquet(t *testing.T, n *parquetjs.Node) string {
	t.Helper()
	switch lt, _ := n.Logical()["type"].(string); lt {
	case "LIST":
		return "array<" + hiveOfParquet(t, n.Children[0].Children[0]) + ">"
	case "MAP":
		kv := n.Children[0]
		return "map<" + hiveOfParquet(t, kv.Children[0]) + "," + hiveOfParquet(t, kv.Children[1]) + ">"
	case "STRING":
		return "string"
	case "TIMESTAMP":
		return "timestamp"
	}
	if len(n.Children) > 0 {
		fields := make([]string, len(n.Children))
		for i, c := range n.Children {
			fields[i] = c.Str("name") + ":" + hiveOfParquet(t, c)
		}
		return "struct<" + strings.Join(fields, ",") + ">"
	}
	typ := map[string]string{"INT32": "int", "INT64": "bigint", "BOOLEAN": "boolean"}[n.Str("type")]
	require.NotEmpty(t, typ, "Parquet type %v", n.Elem)
	return typ
}
