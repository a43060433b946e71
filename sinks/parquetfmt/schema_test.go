package parquetfmt_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/sinks/parquetfmt"
	"github.com/pachca-export/pachca-export/transform"
)

func TestSchemaSQL(t *testing.T) {
	sql := parquetfmt.SchemaSQL("security.pachca_audit", "s3://pachca-audit/audit")
	require.True(t, strings.HasPrefix(sql, "CREATE EXTERNAL TABLE IF NOT EXISTS `security`.`pachca_audit` (\n"), sql)
	hive := map[transform.Kind]string{
		transform.KindString: "string", transform.KindTimestamp: "timestamp", transform.KindInt64: "bigint",
		transform.KindBool: "boolean", transform.KindStringList: "array<string>",
	}
	for _, c := range transform.Columns() {
		require.Contains(t, sql, "\n  `"+c.Name+"` "+hive[c.Kind]+" COMMENT ", c.Name)
	}
	for _, want := range []string{
		"PARTITIONED BY (`dt` string)",
		"STORED AS PARQUET",
		"LOCATION 's3://pachca-audit/audit/'",
		"'projection.enabled'='true'",
		"'projection.dt.type'='date'",
		"'projection.dt.format'='yyyy-MM-dd'",
		"'storage.location.template'='s3://pachca-audit/audit/dt=${dt}/'",
	} {
		require.Contains(t, sql, want)
	}
	require.Equal(t, len(transform.Columns()), strings.Count(sql, " COMMENT '"), "one line per column")
}
