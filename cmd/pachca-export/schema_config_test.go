package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/config/configschema"
	"github.com/pachca-export/pachca-export/testkit/configschematest"
)

// schemaConfig is what `schema --config` prints.
func schemaConfig(t *testing.T) []byte {
	t.Helper()
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, Main(t.Context(), []string{"schema", "--config"}, &stdout, &stderr), stderr.String())
	return stdout.Bytes()
}

// TestSchemaConfigFile: `schema --config` prints config/pipeline.schema.json,
// which the shipped configurations name, as the generator writes it from
// the config structs (make config-schema), and that is a JSON Schema by
// the metaschema.
func TestSchemaConfigFile(t *testing.T) {
	out := schemaConfig(t)
	configschematest.CheckMeta(t, out)
	file, err := os.ReadFile(filepath.Join("../../config", configschema.File))
	require.NoError(t, err)
	require.True(t, bytes.Equal(file, out), "schema --config prints another schema than config/pipeline.schema.json")
	gen, err := configschema.Generate()
	require.NoError(t, err)
	require.True(t, bytes.Equal(gen, out), "config/pipeline.schema.json is not what the config structs give: make config-schema")

	var stdout, stderr bytes.Buffer
	require.Equal(t, 2, Main(t.Context(), []string{"schema", "--config", "--format", "sql"}, &stdout, &stderr))
	require.Contains(t, stderr.String(), "schema: --config takes no other flag (--format)")
	require.Empty(t, stdout.String())
}

// modeline is the line naming the schema, for VS Code's YAML extension.
var modeline = regexp.MustCompile(`(?m)^# yaml-language-server: \$schema=(\S+)$`)

// TestSchemaConfigExamples: every configuration the project ships passes
// the schema: the README's snippets (as TestREADMEConfigSnippets loads
// them), the repository's pipeline.yaml, the packages' and the
// pipeline.yaml of every ConfigMap under deploy/. A modeline names the
// committed schema.
func TestSchemaConfigExamples(t *testing.T) {
	s := configschematest.Compile(t, schemaConfig(t))
	snips := readREADME(t).yamlSnippets()
	require.GreaterOrEqual(t, len(snips), 6, "the README's configuration snippets were not found")
	for _, sn := range snips {
		text := sn.text
		if !regexp.MustCompile(`(?m)^sinks:`).MatchString(text) {
			text += "\n" + minimalSinks
		}
		require.NoError(t, configschematest.Validate(s, []byte(text)), "README.md:%d:\n%s", sn.line, sn.text)
	}

	b, err := os.ReadFile("../../pipeline.yaml")
	require.NoError(t, err)
	require.NoError(t, configschematest.Validate(s, b), "pipeline.yaml")
	m := modeline.FindSubmatch(b)
	require.NotNil(t, m, "pipeline.yaml names no schema")
	require.FileExists(t, filepath.Join("../..", string(m[1])), "pipeline.yaml's modeline")

	b, err = os.ReadFile("../../deploy/package/pipeline.yaml") // the packages' /etc/pachca-export/pipeline.yaml
	require.NoError(t, err)
	require.NoError(t, configschematest.Validate(s, b), "deploy/package/pipeline.yaml")

	manifests, err := filepath.Glob("../../deploy/kubernetes/*.yaml")
	require.NoError(t, err)
	n := 0
	for _, f := range manifests {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		docs, err := configschematest.Documents(b)
		require.NoError(t, err, f)
		for _, d := range docs {
			obj, _ := d.(map[string]any)
			data, _ := obj["data"].(map[string]any)
			if obj["kind"] != "ConfigMap" || data["pipeline.yaml"] == nil {
				continue
			}
			text := data["pipeline.yaml"].(string)
			require.NoError(t, configschematest.Validate(s, []byte(text)), "%s: pipeline.yaml", f)
			n++
		}
	}
	require.GreaterOrEqual(t, n, 2, "the ConfigMaps of deploy/kubernetes were not found")
}
