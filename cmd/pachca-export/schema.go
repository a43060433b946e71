package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/sinks/athena"
	"github.com/pachca-export/pachca-export/sinks/parquetfmt"
	"github.com/pachca-export/pachca-export/transform"
)

func schemaCommand() *command {
	return &command{
		name:     "schema",
		synopsis: "[--format json|arrow|sql] [--schema pachca.audit.v1|ocsf] [--layout parquet|ndjson] [--table NAME] [--location URL] | --config",
		summary:  "print the normalized schema: JSON, Arrow, or an Athena table; or pipeline.yaml's",
		about: `Prints schema v1, the columns of every NDJSON line, Kafka message and Parquet
file. --format sql prints a CREATE EXTERNAL TABLE for Athena (Hive DDL) over the
dt= partitions under --location: Parquet files, or with --layout ndjson the
NDJSON files through the Hive JSON SerDe. --schema ocsf gives the columns of a
sink's OCSF Parquet files instead (--format arrow or sql).

--config prints the JSON Schema (draft 2020-12) of pipeline.yaml instead, for
editors that check and complete YAML against one (VS Code's YAML extension,
JetBrains IDEs): pachca-export schema --config > pipeline.schema.json, then
"# yaml-language-server: $schema=pipeline.schema.json" as the first line of
pipeline.yaml. It is config/pipeline.schema.json of the repository.`,
		setup: func(fs *flags, e *env) func(context.Context, []string) error {
			format := fs.String("format", "json", "the output `FORMAT`: json, arrow or sql")
			schema := fs.String("schema", transform.SchemaVersion, "the record `SHAPE` a sink's schema names: "+transform.SchemaVersion+" or ocsf")
			layout := fs.String("layout", "parquet", "for --format sql, the `LAYOUT` of the files: parquet or ndjson")
			table := fs.String("table", "pachca_audit", "for --format sql, the table `NAME` (lower case, a-z 0-9 _; database.table allowed)")
			location := fs.String("location", "s3://pachca-audit/audit/", "for --format sql, the `URL` of the directory holding the dt= partitions")
			pipeline := fs.Bool("config", false, "print the JSON Schema of pipeline.yaml instead, for editors (no other flag)")
			return func(context.Context, []string) error {
				if *pipeline {
					var others []string
					fs.Visit(func(f *flag.Flag) {
						if f.Name != "config" {
							others = append(others, flagName(f.Name))
						}
					})
					if len(others) > 0 {
						return usageErr("schema: --config takes no other flag (%s)", strings.Join(others, ", "))
					}
					_, err := e.stdout.Write(config.JSONSchema)
					return err
				}
				if *format != "sql" {
					var sqlOnly []string
					fs.Visit(func(f *flag.Flag) {
						if f.Name == "layout" || f.Name == "table" || f.Name == "location" {
							sqlOnly = append(sqlOnly, flagName(f.Name))
						}
					})
					if len(sqlOnly) > 0 {
						return usageErr("schema: %s: for --format sql only", strings.Join(sqlOnly, ", "))
					}
				}
				var ocsfEvents bool
				switch *schema {
				case transform.SchemaVersion:
				case "ocsf":
					ocsfEvents = true
				default:
					return usageErr("schema: unknown --schema %q (%s, ocsf)", *schema, transform.SchemaVersion)
				}
				switch *format {
				case "json":
					if ocsfEvents {
						return usageErr("schema: --schema ocsf: for --format arrow or sql (OCSF's own schema is at https://schema.ocsf.io/1.3.0/)")
					}
					return e.schemaJSON()
				case "arrow":
					s := parquetfmt.ArrowSchema()
					if ocsfEvents {
						var err error
						if s, err = parquetfmt.OCSFArrowSchema(); err != nil {
							return err
						}
					}
					fmt.Fprintln(e.stdout, s.String())
					return nil
				case "sql":
					if err := athena.ValidName(*table); err != nil {
						return usageErr("schema: --table %v", err)
					}
					l := athena.Layout(*layout)
					if l != athena.Parquet && l != athena.NDJSON {
						return usageErr("schema: unknown --layout %q (parquet, ndjson)", *layout)
					}
					if err := athena.ValidLocation(*location); err != nil {
						return usageErr("schema: --location %v", err)
					}
					sql, err := athena.DDL(athena.Table{Name: *table, Location: *location, Layout: l, OCSF: ocsfEvents})
					if err != nil {
						return usageErr("schema: %v", err)
					}
					fmt.Fprint(e.stdout, sql)
					return nil
				}
				return usageErr("schema: unknown --format %q (json, arrow, sql)", *format)
			}
		},
	}
}

func (e *env) schemaJSON() error {
	type col struct {
		Name     string `json:"name"`
		Type     string `json:"type"`
		Nullable bool   `json:"nullable"`
		Doc      string `json:"doc"`
	}
	var cols []col
	for _, c := range transform.Columns() {
		cols = append(cols, col{c.Name, c.Kind.String(), c.Nullable, c.Doc})
	}
	// Not HTML-escaped: the types read list<string>, not list\u003cstring\u003e.
	enc := json.NewEncoder(e.stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Version string `json:"schema_version"`
		Columns []col  `json:"columns"`
	}{transform.SchemaVersion, cols})
}
