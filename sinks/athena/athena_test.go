package athena_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/athena"
	"github.com/pachca-export/pachca-export/sinks/ndjson"
	"github.com/pachca-export/pachca-export/sinks/parquetfmt"
	"github.com/pachca-export/pachca-export/testkit/duckdbtest"
	"github.com/pachca-export/pachca-export/testkit/ocsftest"
	"github.com/pachca-export/pachca-export/transform"
)

func TestDDL(t *testing.T) {
	hive := map[transform.Kind]string{
		transform.KindString: "string", transform.KindTimestamp: "timestamp", transform.KindInt64: "bigint",
		transform.KindBool: "boolean", transform.KindStringList: "array<string>",
	}
	common := []string{
		"PARTITIONED BY (`dt` string)",
		"LOCATION 's3://pachca-audit/audit/'",
		"'projection.enabled'='true'",
		"'projection.dt.type'='date'",
		"'projection.dt.format'='yyyy-MM-dd'",
		"'storage.location.template'='s3://pachca-audit/audit/dt=${dt}/'",
	}
	for _, tc := range []struct {
		layout      athena.Layout
		want, avoid []string
	}{
		{athena.Parquet, []string{"STORED AS PARQUET\n"}, []string{"SERDE"}},
		{athena.NDJSON, []string{
			"ROW FORMAT SERDE 'org.apache.hive.hcatalog.data.JsonSerDe'\n",
			`WITH SERDEPROPERTIES ("timestamp.formats"="yyyy-MM-dd'T'HH:mm:ss.SSS'Z'")` + "\n",
		}, []string{"PARQUET"}},
	} {
		t.Run(string(tc.layout), func(t *testing.T) {
			sql, err := athena.DDL(athena.Table{Name: "security.pachca_audit", Location: "s3://pachca-audit/audit", Layout: tc.layout})
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(sql, "CREATE EXTERNAL TABLE IF NOT EXISTS `security`.`pachca_audit` (\n"), sql)
			for _, c := range transform.Columns() {
				require.Contains(t, sql, "\n  `"+c.Name+"` "+hive[c.Kind]+" COMMENT ", c.Name)
			}
			require.Equal(t, len(transform.Columns()), strings.Count(sql, " COMMENT '"), "one line per column")
			for _, w := range append(common, tc.want...) {
				require.Contains(t, sql, w)
			}
			for _, a := range tc.avoid {
				require.NotContains(t, sql, a)
			}
		})
	}
}

// TestTimestampFormat: the Joda pattern given to the JSON SerDe matches what
// the NDJSON encoder writes for created_at.
func TestTimestampFormat(t *testing.T) {
	re := strings.NewReplacer("yyyy", `\d{4}`, "MM", `\d{2}`, "dd", `\d{2}`, "HH", `\d{2}`, "mm", `\d{2}`,
		"ss", `\d{2}`, "SSS", `\d{3}`, "'T'", "T", "'Z'", "Z", ".", `\.`).Replace(athena.TimestampFormat)
	line := string(ndjson.AppendRecord(nil, &transform.Record{CreatedAt: 1747319400123}))
	m := regexp.MustCompile(`"created_at":"([^"]*)"`).FindStringSubmatch(line)
	require.NotNil(t, m, line)
	require.Regexp(t, "^"+re+"$", m[1])
	require.Equal(t, "2025-05-15T14:30:00.123Z", m[1])
}

func TestValidName(t *testing.T) {
	for _, ok := range []string{"pachca_audit", "security.pachca_audit", "audit2026", "_staging"} {
		require.NoError(t, athena.ValidName(ok), ok)
	}
	for bad, why := range map[string]string{
		"Pachca_Audit":   "lower-case",
		"pachca-audit":   "lower-case letters, digits and _",
		"a.b.c":          "more than one dot",
		"":               "lower-case",
		"db.":            "lower-case",
		"pachca audit":   "lower-case",
		"таблица":        "lower-case",
		"x`; DROP TABLE": "lower-case",
	} {
		require.ErrorContains(t, athena.ValidName(bad), why, bad)
		_, err := athena.DDL(athena.Table{Name: bad, Layout: athena.Parquet})
		require.Error(t, err, bad)
	}
	_, err := athena.DDL(athena.Table{Name: "t", Layout: "csv"})
	require.ErrorContains(t, err, `unknown layout "csv"`)
}

func TestValidLocation(t *testing.T) {
	for _, ok := range []string{"s3://b", "s3://b/", "s3://b/audit", "s3://b/audit/pachca/", "s3://b/dt=archive/", "s3://b/dt=2026-11-01/x/"} {
		require.NoError(t, athena.ValidLocation(ok), ok)
	}
	for bad, why := range map[string]string{
		"notaurl":                       "want the URL of a directory",
		"":                              "want the URL of a directory",
		"https://b.s3.amazonaws.com/a/": "Athena reads only s3:// locations",
		"s3a://b/a/":                    "Athena reads only s3:// locations",
		"s3:///a/":                      "Athena reads only s3:// locations",
		"s3://b/a/dt=2026-11-01/":       "is one dt= partition: give the directory that holds them, s3://b/a/",
		"s3://b/dt=2026-11-01":          "is one dt= partition: give the directory that holds them, s3://b/",
		// Folders no sink writes (its prefix is refused): the table would be empty.
		"s3://b/audit//": `no sink writes there, its prefix "audit//" has an empty segment ("//")`,
		"s3://b//audit/": `no sink writes there, its prefix must not start with "/"`,
		"s3://b/a/../b/": `no sink writes there, its prefix "a/../b/" has a ".." segment`,
	} {
		require.ErrorContains(t, athena.ValidLocation(bad), why, bad)
	}
}

// TestDDLMatchesTheFiles: each column of the statement, schema v1's and
// OCSF's, has the type DuckDB reads from a Parquet file the encoders
// write, nested fields included, and the statement has no other column.
func TestDDLMatchesTheFiles(t *testing.T) {
	recs := ocsftest.Records(t)
	day := time.UnixMilli(recs[0].CreatedAt).UTC().Truncate(24 * time.Hour)
	for _, tc := range []struct {
		name string
		ocsf bool
	}{{"v1", false}, {"ocsf", true}} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := parquetfmt.Format("zstd")
			if tc.ocsf {
				f, err = parquetfmt.OCSFFormat("zstd")
			}
			require.NoError(t, err)
			path := filepath.Join(t.TempDir(), "day.parquet")
			out, err := os.Create(path)
			require.NoError(t, err)
			enc, err := f.New(out, sinks.NewPartition(day, day, day.AddDate(0, 0, 1), "run-1"))
			require.NoError(t, err)
			require.NoError(t, enc.Write(recs))
			require.NoError(t, enc.Close())
			require.NoError(t, out.Close())

			sql, err := athena.DDL(athena.Table{Name: "pachca_audit", Location: "s3://b/audit/", Layout: athena.Parquet, OCSF: tc.ocsf})
			require.NoError(t, err)
			var want []string
			for _, r := range duckdbtest.Query(t, "DESCRIBE SELECT * FROM read_parquet('"+path+"')") {
				want = append(want, fmt.Sprintf("%s %s", r["column_name"], hiveOfDuckDB(t, r["column_type"].(string))))
			}
			var got []string
			for _, m := range regexp.MustCompile("(?m)^  `([a-z_]+)` (.+?)(?: COMMENT '.*')?,?$").FindAllStringSubmatch(sql, -1) {
				got = append(got, m[1]+" "+strings.ReplaceAll(m[2], "`", ""))
			}
			require.NotEmpty(t, got)
			require.Equal(t, want, got)
		})
	}
}

// hiveOfDuckDB writes a type as DuckDB's DESCRIBE names it the way the
// statement does: VARCHAR as string, STRUCT(a VARCHAR) as
// struct<a:string>, VARCHAR[] as array<string>, MAP(K, V) as map<k,v>.
func hiveOfDuckDB(t *testing.T, typ string) string {
	t.Helper()
	switch {
	case strings.HasSuffix(typ, "[]"):
		return "array<" + hiveOfDuckDB(t, strings.TrimSuffix(typ, "[]")) + ">"
	case strings.HasPrefix(typ, "STRUCT(") && strings.HasSuffix(typ, ")"):
		var fields []string
		for _, f := range splitTop(typ[len("STRUCT(") : len(typ)-1]) {
			name, ft, ok := strings.Cut(f, " ")
			require.True(t, ok, f)
			fields = append(fields, strings.Trim(name, `"`)+":"+hiveOfDuckDB(t, ft))
		}
		return "struct<" + strings.Join(fields, ",") + ">"
	case strings.HasPrefix(typ, "MAP(") && strings.HasSuffix(typ, ")"):
		kv := splitTop(typ[len("MAP(") : len(typ)-1])
		require.Len(t, kv, 2, typ)
		return "map<" + hiveOfDuckDB(t, kv[0]) + "," + hiveOfDuckDB(t, kv[1]) + ">"
	}
	base := map[string]string{"VARCHAR": "string", "INTEGER": "int", "BIGINT": "bigint", "BOOLEAN": "boolean",
		"TIMESTAMP WITH TIME ZONE": "timestamp"}[typ]
	require.NotEmpty(t, base, "DuckDB type %q", typ)
	return base
}

// splitTop splits s at the commas outside parentheses, trimming spaces.
func splitTop(s string) []string {
	var out []string
	depth, from := 0, 0
	for i, c := range s {
		switch c {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, strings.TrimSpace(s[from:i]))
				from = i + 1
			}
		}
	}
	return append(out, strings.TrimSpace(s[from:]))
}
