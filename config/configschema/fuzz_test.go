package configschema_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/config/configschema"
	"github.com/pachca-export/pachca-export/testkit/configschematest"
)

// FuzzSchemaTakesWhatConfigTakes: a file config accepts, the schema
// accepts: an editor never marks a working configuration as wrong. Seeded
// with config's good and bad files.
func FuzzSchemaTakesWhatConfigTakes(f *testing.F) {
	files, err := filepath.Glob("../testdata/*.yaml")
	require.NoError(f, err)
	for _, file := range append(files, "../../pipeline.yaml") {
		b, err := os.ReadFile(file)
		require.NoError(f, err)
		f.Add(b)
	}
	for _, seed := range []string{
		"sinks:\n  - type: kafka\n    brokers: [\"h:9092\"]\n    topic: t\n    sasl: {mechanism: scram-sha-256, username: u, password: ${PACHCA_TOKEN}}\n    tls: {enabled: true, server_name: h}\n",
		"sinks:\n  - type: s3\n    bucket: b-1\n    region: eu-central-1\n    part_size: 5242880\n    timeout: ${D}\n    force_path_style: ${B}\n",
		"source:\n  concurrency: ${N}\n  filters: {actor_id: 1}\nsinks:\n  - type: ${T}\n",
	} {
		f.Add([]byte(seed))
	}
	b, err := configschema.Generate()
	require.NoError(f, err)
	s := configschematest.Compile(f, b)
	lookup := func(name string) (string, bool) {
		return map[string]string{"PACHCA_TOKEN": "t", "N": "8", "D": "30s", "B": "true", "T": "stdout"}[name], true
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// A token config cannot use (TokenError) fails every command
		// that needs one: the editor may mark it.
		if cfg, err := config.Parse(b, "fuzz.yaml", lookup); err != nil || cfg.Source.TokenError != nil {
			return
		}
		require.NoError(t, configschematest.Validate(s, b), "config accepts:\n%s", b)
	})
}
