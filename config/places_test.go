package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/config"
)

// TestSinksDoNotShareAPlace: two sinks writing one directory or one bucket
// and prefix (or one inside the other), or the state inside a sink, fail
// at loading, naming both, as do two Kafka sinks of one topic on one
// cluster (was: accepted, every event produced twice); Security Lake sinks in one bucket with their own
// sources and manifest_prefix are fine, as the README says. The line names
// the file's line of the key, as every configuration error does (was: the
// file alone).
func TestSinksDoNotShareAPlace(t *testing.T) {
	const lake = "    schema: ocsf\n    layout: security_lake\n    security_lake:\n      account_id: \"123456789012\"\n"
	s3 := func(bucket, prefix string) string {
		return "  - type: s3\n    bucket: " + bucket + "\n    region: eu-central-1\n    prefix: " + prefix + "\n"
	}
	cases := []struct {
		name, sinks, state, want string
	}{
		{name: "same dir", sinks: "  - type: ndjson\n    dir: out\n  - type: parquet\n    dir: ./out/\n",
			want: "p.yaml:7: sinks[1].dir: the same directory as sinks[0].dir (%DIR%/out)"},
		{name: "dir inside", sinks: "  - type: ndjson\n    dir: out\n  - type: parquet\n    dir: out/pq\n",
			want: "p.yaml:7: sinks[1].dir: %DIR%/out/pq is inside sinks[0].dir (%DIR%/out)"},
		{name: "dir around", sinks: "  - type: ndjson\n    dir: out/nd\n  - type: parquet\n    dir: out\n",
			want: "p.yaml:7: sinks[1].dir: %DIR%/out contains sinks[0].dir (%DIR%/out/nd)"},
		{name: "absolute and relative", sinks: "  - type: ndjson\n    dir: %DIR%/out\n  - type: parquet\n    dir: out\n",
			want: "sinks[1].dir: the same directory as sinks[0].dir"},
		{name: "state inside a sink", sinks: "  - type: ndjson\n    dir: out\n", state: "out/state",
			want: "p.yaml:7: state.dir: %DIR%/out/state is inside sinks[0].dir (%DIR%/out)"},
		{name: "state is a sink", sinks: "  - type: ndjson\n    dir: st\n", state: "st",
			want: "p.yaml:7: state.dir: the same directory as sinks[0].dir (%DIR%/st)"},
		{name: "same bucket and prefix", sinks: s3("bkt", "audit") + s3("bkt", "audit/"),
			want: "p.yaml:11: sinks[1].prefix: the same location as sinks[0].prefix (s3://bkt/audit/)"},
		{name: "prefix inside", sinks: s3("bkt", "audit/") + s3("bkt", "audit/v2"),
			want: "p.yaml:11: sinks[1].prefix: s3://bkt/audit/v2/ is inside sinks[0].prefix (s3://bkt/audit/)"},
		{name: "bucket root", sinks: s3("bkt", "audit") + s3("bkt", `""`),
			want: "p.yaml:11: sinks[1].prefix: s3://bkt/ contains sinks[0].prefix (s3://bkt/audit/)"},
		{name: "two lakes, one source", sinks: s3("lake", `""`) + lake + s3("lake", `""`) + lake + "      manifest_prefix: other\n",
			want: "p.yaml:18: sinks[1].security_lake.sources: the same location as sinks[0].security_lake.sources (s3://lake/ext/pachca-"},
		{name: "lake and daily", sinks: s3("lake", `""`) + lake + s3("lake", "ext"),
			want: "p.yaml:15: sinks[1].prefix: s3://lake/ext/ contains sinks[0].security_lake.sources (s3://lake/ext/pachca-"},
		{name: "same topic", sinks: "  - type: kafka\n    brokers: [k1:9092, K2:9092]\n    topic: audit\n  - type: kafka\n    brokers: [k2:9092]\n    topic: audit\n",
			want: "p.yaml:9: sinks[1].topic: the same topic as sinks[0].topic (audit on k2:9092): every event would be sent twice; give each its own"},
		// Allowed.
		{name: "siblings", sinks: "  - type: ndjson\n    dir: out\n  - type: parquet\n    dir: out2\n" + s3("bkt", "a") + s3("bkt", "ab") + s3("ckt", "a")},
		{name: "two lakes, own sources", sinks: s3("lake", `""`) + lake + s3("lake", `""`) + lake +
			"      manifest_prefix: other\n      sources: {authentication: a2, account_change: b2, user_access: c2, group_management: d2, entity_management: e2, api_activity: f2, web_resources_activity: g2, data_security_finding: h2, base_event: i2}\n"},
		{name: "state beside", sinks: "  - type: ndjson\n    dir: out\n", state: "out-state"},
		{name: "other endpoint", sinks: s3("bkt", "a") + s3("bkt", "a") + "    endpoint: http://127.0.0.1:9000\n"},
		{name: "one topic, two clusters", sinks: "  - type: kafka\n    brokers: [k1:9092]\n    topic: audit\n  - type: kafka\n    brokers: [dr:9092]\n    topic: audit\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			err := loadPlaces(t, dir, strings.ReplaceAll(tc.sinks, "%DIR%", dir), strings.ReplaceAll(tc.state, "%DIR%", dir))
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), strings.ReplaceAll(tc.want, "%DIR%", dir))
			require.Len(t, strings.Split(err.Error(), "\n"), 1, "one line: %s", err)
		})
	}
}

// TestPlacesThroughLinks: two paths that differ but name one directory
// through a symbolic link (out/b -> a), or one inside the other's, are
// refused as the same paths are (was: accepted: each sink removed the
// other's temporary files, and the run failed on a rename with "no such
// file or directory"). A link to a directory of its own is fine.
func TestPlacesThroughLinks(t *testing.T) {
	for _, tc := range []struct{ name, sinks, state, want string }{
		{name: "same dir", sinks: "  - {type: ndjson, dir: out/a}\n  - {type: ndjson, dir: out/b}\n",
			want: "%DIR%/p.yaml:5: sinks[1].dir: the same directory as sinks[0].dir (%DIR%/out/a), through a symbolic link; give each its own"},
		{name: "state inside a sink", sinks: "  - {type: ndjson, dir: out/a}\n", state: "out/b/state",
			want: "%DIR%/p.yaml:6: state.dir: %DIR%/out/a/state is inside sinks[0].dir (%DIR%/out/a), through a symbolic link; give each its own"},
		{name: "a link of its own", sinks: "  - {type: ndjson, dir: out/a}\n  - {type: ndjson, dir: out/own}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.MkdirAll(filepath.Join(dir, "out", "a"), 0o700))
			require.NoError(t, os.MkdirAll(filepath.Join(dir, "elsewhere"), 0o700))
			require.NoError(t, os.Symlink("a", filepath.Join(dir, "out", "b")))
			require.NoError(t, os.Symlink(filepath.Join(dir, "elsewhere"), filepath.Join(dir, "out", "own")))
			err := loadPlaces(t, dir, tc.sinks, tc.state)
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, strings.ReplaceAll(tc.want, "%DIR%", dir))
		})
	}
}

// loadPlaces loads dir/p.yaml with the given sinks (YAML list items) and,
// unless empty, state.dir.
func loadPlaces(t *testing.T, dir, sinks, state string) error {
	t.Helper()
	body := "source:\n  token: x\nsinks:\n" + sinks
	if state != "" {
		body += "state:\n  dir: " + state + "\n"
	}
	path := filepath.Join(dir, "p.yaml")
	require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
	_, err := config.Load(path, env(nil))
	return err
}
