// Package kafkatest reads back what tests produced to an in-process kfake
// broker, with franz-go's client: a reader independent of the kafka-go
// producer under test.
package kafkatest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
)

// idle is how long a topic must stay quiet to count as read to its end.
const idle = time.Second

// Consume reads topic from its beginning until nothing more arrives for a
// second, and returns the records in the order fetched (offset order within
// each partition).
func Consume(t testing.TB, brokers []string, topic string) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	require.NoError(t, err)
	defer cl.Close()
	var out []*kgo.Record
	for {
		ctx, cancel := context.WithTimeout(context.Background(), idle)
		fs := cl.PollFetches(ctx)
		cancel()
		for _, fe := range fs.Errors() {
			if fe.Err != context.DeadlineExceeded {
				require.NoError(t, fe.Err, "fetch %s/%d", fe.Topic, fe.Partition)
			}
		}
		if len(fs.Records()) == 0 {
			return out
		}
		out = append(out, fs.Records()...)
	}
}
