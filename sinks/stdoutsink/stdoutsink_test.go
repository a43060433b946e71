package stdoutsink_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/sinktest"
	"github.com/pachca-export/pachca-export/sinks/stdoutsink"
)

func TestConformance(t *testing.T) {
	bufs := map[sinks.Sink]*bytes.Buffer{}
	sinktest.Run(t, sinktest.Harness{
		New: func(t *testing.T) sinks.Sink {
			var b bytes.Buffer
			s := stdoutsink.New(&b)
			bufs[s] = &b
			return s
		},
		Read: func(t *testing.T, s sinks.Sink, p sinks.Partition) []string {
			ids := []string{}
			for _, line := range strings.Split(strings.TrimSpace(bufs[s].String()), "\n") {
				if line == "" {
					continue
				}
				var m struct{ ID string }
				require.NoError(t, json.Unmarshal([]byte(line), &m))
				ids = append(ids, m.ID)
			}
			return ids
		},
	})
}
