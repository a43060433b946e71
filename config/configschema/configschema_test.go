package configschema_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/config/configschema"
	"github.com/pachca-export/pachca-export/testkit/configschematest"
)

// compile returns the validator of the generated schema.
func compile(t *testing.T) *jsonschema.Schema {
	t.Helper()
	b, err := configschema.Generate()
	require.NoError(t, err)
	return configschematest.Compile(t, b)
}

var validate, documents = configschematest.Validate, configschematest.Documents

// TestSchemaIsJSONSchema: the generated schema is valid against the
// metaschema of draft 2020-12, as the validator ships it.
func TestSchemaIsJSONSchema(t *testing.T) {
	b, err := configschema.Generate()
	require.NoError(t, err)
	configschematest.CheckMeta(t, b)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(b, &doc))
	require.Equal(t, "https://json-schema.org/draft/2020-12/schema", doc["$schema"])
}

var update = flag.Bool("update", false, "rewrite ../pipeline.schema.json from the config structs (make config-schema)")

// TestSchemaFile: config/pipeline.schema.json, which the binary embeds
// and prints (schema --config), is what Generate writes from the structs.
func TestSchemaFile(t *testing.T) {
	b, err := configschema.Generate()
	require.NoError(t, err)
	file := filepath.Join("..", configschema.File)
	if *update {
		require.NoError(t, os.WriteFile(file, b, 0o644))
	}
	disk, err := os.ReadFile(file)
	require.NoError(t, err)
	if line, want, got := firstDiff(string(b), string(disk)); line > 0 {
		t.Fatalf("%s is not what the config structs give (make config-schema): line %d is\n%s\nnot\n%s", file, line, got, want)
	}
	if !*update { // the next build embeds the file just written
		require.True(t, bytes.Equal(b, config.JSONSchema), "the binary embeds another schema: rebuild")
	}
}

// firstDiff is the first line (from 1) where got differs from want, and
// both lines; 0 when they are equal.
func firstDiff(want, got string) (int, string, string) {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := range max(len(w), len(g)) {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b || i >= len(w) || i >= len(g) {
			return i + 1, a, b
		}
	}
	return 0, "", ""
}

// TestEveryKeyDescribed: every key of every object of the schema has a
// description, a sink's type included; Generate refuses a key that
// keys.go does not describe, and this holds whatever it builds.
func TestEveryKeyDescribed(t *testing.T) {
	b, err := configschema.Generate()
	require.NoError(t, err)
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	require.NoError(t, err)
	n := 0
	var walk func(v any, path string)
	walk = func(v any, path string) {
		switch v := v.(type) {
		case map[string]any:
			if props, ok := v["properties"].(map[string]any); ok {
				for name, p := range props {
					d, _ := p.(map[string]any)["description"].(string)
					require.NotEmpty(t, strings.TrimSpace(d), "%s.%s has no description", path, name)
					n++
				}
			}
			for k, c := range v {
				if k != "if" && k != "then" { // conditions on keys described where they are
					walk(c, path+"/"+k)
				}
			}
		case []any:
			for _, c := range v {
				walk(c, path)
			}
		}
	}
	walk(doc, "")
	require.Greater(t, n, 100, "the keys were not found")
}

// TestGoodFilesValidate: every good configuration of config's tests, and
// the repository's pipeline.yaml, pass the schema.
func TestGoodFilesValidate(t *testing.T) {
	s := compile(t)
	files, err := filepath.Glob("../testdata/good-*.yaml")
	require.NoError(t, err)
	files = append(files, "../../pipeline.yaml")
	require.GreaterOrEqual(t, len(files), 4)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		_, err = config.Parse(b, f, func(string) (string, bool) { return "set", true })
		require.NoError(t, err, "config refuses %s: not a good file", f)
		require.NoError(t, validate(s, b), "%s", f)
	}
}

// notYAML are the bad files no YAML parser reads: an editor reports them
// before any schema.
var notYAML = []string{
	"bad-tab.yaml", "bad-yaml.yaml", "bad-yaml-indent.yaml", "bad-yaml-quote.yaml", "bad-yaml-sink.yaml",
	"bad-twice.yaml", "bad-twice-sink.yaml", // a key given twice
}

// semantic are the bad files the schema lets through, and why: rules that
// join keys, read the environment, or look into a value's meaning. Every
// other bad file (an unknown key, a wrong type, a value out of its enum or
// bounds, a required key missing) the schema refuses too.
var semantic = map[string]string{
	"bad-alerts-unseen.yaml":       "a rule's key against transform.drop_event_keys and source.filters.event_keys",
	"bad-base-url-endpoint.yaml":   "the URL's path (/audit_events)",
	"bad-base-url-port-range.yaml": "the URL's port",
	"bad-base-url-port.yaml":       "the URL's port",
	"bad-drop-filtered-key.yaml":   "drop_event_keys against source.filters.event_keys",
	"bad-env.yaml":                 "an environment variable not set",
	"bad-event-key-case.yaml":      "the list of known event keys",
	"bad-follow-lookback.yaml":     "follow.lookback against period.lag and period.retention",
	"bad-follow-own-trail.yaml":    "follow.lookback against follow.interval and the event keys",
	"bad-insecure.yaml":            "http:// against the host and allow_insecure",
	"bad-output.yaml":              "the bits of an octal mode",
	"bad-s3-prefix.yaml":           "the segments of a prefix, the port of an endpoint",
	"bad-tilde.yaml":               "a path starting with ~",
}

// TestBadFilesRefused: the schema agrees with config.Load on the
// structural errors of config's bad files.
func TestBadFilesRefused(t *testing.T) {
	s := compile(t)
	files, err := filepath.Glob("../testdata/bad-*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	seen := map[string]bool{}
	for _, f := range files {
		name := filepath.Base(f)
		seen[name] = true
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		_, err = config.Parse(b, name, func(string) (string, bool) { return "", false })
		require.Error(t, err, "config accepts %s", name)
		switch reason, ok := semantic[name]; {
		case slices.Contains(notYAML, name):
			_, err := documents(b)
			require.Error(t, err, "%s is read as YAML: not in notYAML", name)
		case ok:
			require.NoError(t, validate(s, b), "%s is refused by the schema: take it out of semantic (%s)", name, reason)
		default:
			require.Error(t, validate(s, b), "%s passes the schema: refuse what config refuses, or list it in semantic with the reason", name)
		}
	}
	for name := range semantic {
		require.True(t, seen[name], "semantic lists %s, which is gone", name)
	}
	for _, name := range notYAML {
		require.True(t, seen[name], "notYAML lists %s, which is gone", name)
	}
}

// TestSchemaAgreesWithConfig: values config accepts the schema accepts
// too, ${VAR} in a key of any type first of all, and values config
// refuses for their type or range the schema refuses.
func TestSchemaAgreesWithConfig(t *testing.T) {
	s := compile(t)
	env := map[string]string{"CONC": "8", "INSECURE": "true", "TIMEOUT": "30s", "COMP": "gzip", "SINK": "stdout",
		"DIR": "out", "BROKER": "127.0.0.1:9092", "THRESHOLD": "5"}
	lookup := func(name string) (string, bool) { v, ok := env[name]; return v, ok }
	const sink = "sinks:\n  - type: ndjson\n    dir: out\n"
	for _, tc := range []struct {
		name, yaml string
		ok         bool
	}{
		{"int from env", "source:\n  concurrency: ${CONC}\n" + sink, true},
		{"bool from env", "source:\n  allow_insecure: ${INSECURE:-false}\n" + sink, true},
		{"duration from env", "source:\n  timeout: ${TIMEOUT}\n" + sink, true},
		{"enum from env", "sinks:\n  - type: ndjson\n    dir: ${DIR}\n    compression: ${COMP}\n", true},
		{"sink type from env", "sinks:\n  - type: ${SINK}\n", true},
		{"list entry from env", "sinks:\n  - type: kafka\n    brokers: [\"${BROKER}\"]\n    topic: t\n", true},
		{"brokers as net.SplitHostPort takes them", "sinks:\n  - type: kafka\n    brokers: [\"h:9092\", \"[::1]:9092\", \"a@b:1\"]\n    topic: t\n", true},
		{"threshold from env", "alerts:\n  rules:\n    - name: a\n      kind: threshold\n      event_keys: [user_2fa_fail]\n      threshold: ${THRESHOLD}\n      window: 1m\n      recipients: [\"1\"]\n" + sink, true},
		{"empty keys", "source:\n  filters:\nperiod:\nfollow:\n  listen:\n" + sink, true},
		{"bare zero duration", "period:\n  lag: 0\n" + sink, true},
		{"numbers as text", "source:\n  workspace: 2026\n  filters: {actor_id: 12345}\noutput:\n  file_mode: 0640\nsinks:\n  - type: s3\n    bucket: b-1\n    region: eu-central-1\n    schema: ocsf\n    layout: security_lake\n" +
			"    security_lake: {account_id: 123456789012, source_version: 1.5}\n" +
			"alerts:\n  rules:\n    - {name: a, kind: watch, event_keys: [user_login], recipients: [10001]}\n", true},
		{"every default written", "source:\n  concurrency: 8\n  requests_per_second: 50\n  timeout: 30s\nperiod:\n  default: yesterday\n  lag: 2m\n  retention: 2160h\n" + sink, true},
		{"concurrency above 64", "source:\n  concurrency: 65\n" + sink, false},
		{"rate 0", "source:\n  requests_per_second: 0\n" + sink, false},
		{"negative duration", "follow:\n  lookback: -1m\n" + sink, false},
		{"unknown sink type", "sinks:\n  - type: elastic\n", false},
		{"stdout takes no key", "sinks:\n  - type: stdout\n    dir: out\n", false},
		{"snappy is parquet's", "sinks:\n  - type: ndjson\n    dir: out\n    compression: snappy\n", false},
		{"kafka acks none", "sinks:\n  - type: kafka\n    brokers: [\"h:1\"]\n    topic: t\n    required_acks: none\n", false},
		{"broker with a scheme", "sinks:\n  - type: kafka\n    brokers: [\"kafka://h:1\"]\n    topic: t\n", false},
		{"s3 part too small", "sinks:\n  - type: s3\n    bucket: b-1\n    region: r\n    part_size: 1024\n", false},
		{"storage class", "sinks:\n  - type: s3\n    bucket: b-1\n    region: r\n    storage_class: COLD\n", false},
		{"unknown class of sources", "sinks:\n  - type: s3\n    bucket: b-1\n    region: eu-central-1\n    schema: ocsf\n    layout: security_lake\n    security_lake: {account_id: \"123456789012\", sources: {login: x}}\n", false},
		{"a threshold rule without window", "alerts:\n  rules:\n    - {name: a, kind: threshold, event_keys: [user_2fa_fail], threshold: 5, recipients: [\"1\"]}\n" + sink, false},
		{"text with ${ and $", "source:\n  workspace: a$b$${DIR}$$\n  token_file: ${DIR}/t$\n" + sink, true},
		{"a ${ without its name", "source:\n  workspace: x${ DIR }\n" + sink, false},
		{"a ${ without its brace", "sinks:\n  - type: ndjson\n    dir: ${DIR\n", false},
		{"a number's ${ without its brace", "source:\n  concurrency: ${CONC}${\n" + sink, false},
		{"an empty source", "sinks:\n  - type: s3\n    bucket: b-1\n    region: eu-central-1\n    schema: ocsf\n    layout: security_lake\n    security_lake:\n      account_id: \"123456789012\"\n      sources:\n        authentication:\n", false},
		{"empty for the default", "output:\n  file_mode: \"\"\n  dir_mode: \"\"\nfollow:\n  listen: \"\"\nsinks:\n  - type: s3\n    bucket: b-1\n    region: eu-central-1\n    endpoint: \"\"\n    sse: \"\"\n    storage_class: \"\"\n    compression: \"\"\n" +
			"    schema: ocsf\n    layout: security_lake\n    security_lake: {account_id: \"123456789012\", region: \"\", source_version: \"\"}\n", true},
		{"a list for a text", "source:\n  workspace: [a]\n" + sink, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, cerr := config.Parse([]byte(tc.yaml), "p.yaml", lookup)
			serr := validate(s, []byte(tc.yaml))
			if tc.ok {
				require.NoError(t, cerr, "config")
				require.NoError(t, serr, "schema")
			} else {
				require.Error(t, cerr, "config")
				require.Error(t, serr, "schema")
			}
		})
	}
}
