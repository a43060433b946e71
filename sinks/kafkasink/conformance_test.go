package kafkasink_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/kafkasink"
	"github.com/pachca-export/pachca-export/sinks/sinktest"
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
			for _, r := range consumeAvailable(t, brokers[s], topic) {
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

// consumeAvailable reads topic from the beginning until nothing more
// arrives for a short while, in offset order within each partition.
func consumeAvailable(tb testing.TB, brokers []string, topic string) []*kgo.Record {
	tb.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond),
	)
	require.NoError(tb, err)
	defer cl.Close()
	var got []*kgo.Record
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		for _, fe := range fs.Errors() {
			if fe.Err != context.DeadlineExceeded {
				require.NoError(tb, fe.Err, "fetch %s/%d", fe.Topic, fe.Partition)
			}
		}
		recs := fs.Records()
		if len(recs) == 0 {
			return got
		}
		got = append(got, recs...)
	}
}
