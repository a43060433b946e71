package config_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/config"
)

// FuzzParse: Parse never panics, and whatever it accepts passes Validate.
// The shipped pipeline.yaml and testdata/*.yaml seed
// testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"",
		"sinks:\n  - type: stdout\n",
		"source:\n  token: ${PACHCA_TOKEN}\n  timeout: ${TIMEOUT:-5s}\nsinks:\n  - type: stdout\n",
		"a: &x [*x]\n",
		"source: &s {token: t}\nperiod: *s\nsinks: [{type: ndjson, dir: d}]\n",
		"sinks:\n  - !!binary aGk=\n",
	} {
		f.Add([]byte(s))
	}
	lookup := env(map[string]string{"PACHCA_TOKEN": "fuzz-token", "EMPTY": ""})
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := config.Parse(b, "fuzz.yaml", lookup)
		if err != nil {
			require.Nil(t, cfg)
			require.NotEmpty(t, err.Error())
			return
		}
		require.NotNil(t, cfg)
		require.NoError(t, cfg.Validate(), "Parse accepted a configuration that does not validate")
		require.NotEmpty(t, cfg.Sinks)
	})
}
