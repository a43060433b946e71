package kafkasink_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/kafkasink"
	"github.com/pachca-export/pachca-export/sinks/sinktest"
	"github.com/pachca-export/pachca-export/testkit/kafkatest"
)

// TestConformance runs the sink suite against an in-process broker, one
// cluster per case: a stream cannot take back what it sent, so the suite
// checks at-least-once instead of replacement.
func TestConformance(t *testing.T) {
	const topic = "pachca.audit"
	brokers := map[sinks.Sink][]string{}
	sinktest.Run(t, sinktest.Harness{
		New: func(t *testing.T) sinks.Sink {
			c := newCluster(t, kfake.SeedTopics(1, topic)) // one partition: one order to compare
			s, err := kafkasink.New(testConfig(c.ListenAddrs(), topic))
			require.NoError(t, err)
			brokers[s] = c.ListenAddrs()
			return s
		},
		Read: func(t *testing.T, s sinks.Sink, p sinks.Partition) []string {
			ids := []string{}
			for _, r := range kafkatest.Consume(t, brokers[s], topic) {
				var v struct {
					ID        string    `json:"id"`
					CreatedAt time.Time `json:"created_at"`
				}
				require.NoError(t, json.Unmarshal(r.Value, &v))
				require.Equal(t, v.ID, string(r.Key), "keyed by event id")
				if !v.CreatedAt.Before(p.From) && v.CreatedAt.Before(p.To) {
					ids = append(ids, v.ID)
				}
			}
			return ids
		},
	})
}
