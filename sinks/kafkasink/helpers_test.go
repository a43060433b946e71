package kafkasink_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/kafkasink"
	"github.com/pachca-export/pachca-export/transform"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newCluster starts an in-process broker on a random loopback port and
// stops it when the test ends.
func newCluster(tb testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	tb.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	require.NoError(tb, err)
	tb.Cleanup(c.Close)
	for _, a := range c.ListenAddrs() {
		require.True(tb, strings.HasPrefix(a, "127.0.0.1:"), "kfake listens on %s, want loopback", a)
	}
	return c
}

// testConfig is a config with short, bounded timeouts for tests: a
// failure fails the write within 3 s.
func testConfig(brokers []string, topic string) kafkasink.Config {
	return kafkasink.Config{
		Brokers:         brokers,
		Topic:           topic,
		WriteTimeout:    3 * time.Second,
		DialTimeout:     2 * time.Second,
		MaxAttempts:     2,
		DeliveryTimeout: 3 * time.Second,
	}
}

func newSink(tb testing.TB, cfg kafkasink.Config) *kafkasink.Sink {
	tb.Helper()
	s, err := kafkasink.New(cfg)
	require.NoError(tb, err)
	tb.Cleanup(func() { require.NoError(tb, s.Close(context.Background())) })
	return s
}

func partition() sinks.Partition {
	day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	return sinks.NewPartition(day, day, day.Add(24*time.Hour), "run-1")
}

// makeRecords returns n realistic records (values of about 1 KB) whose ids
// start at first.
func makeRecords(first, n int) []transform.Record {
	recs := make([]transform.Record, n)
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	keys := []string{"user_login", "message_created", "chat_created", "user_2fa_fail"}
	for i := range recs {
		id := first + i
		recs[i] = transform.Record{
			ID:            fmt.Sprintf("%d", 1_000_000_000+id),
			CreatedAt:     base + int64(id)*137,
			EventKey:      keys[id%len(keys)],
			EventCategory: "auth",
			ActorID:       fmt.Sprintf("%d", 100+id%50),
			ActorType:     "user",
			EntityID:      fmt.Sprintf("%d", 9000+id%7),
			EntityType:    "chat",
			IPAddress:     transform.NullString{Valid: true, Str: "192.0.2.17"},
			UserAgent:     transform.NullString{Valid: id%3 != 0, Str: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/141.0 Safari/537.36"},
			DetailsJSON: fmt.Sprintf(`{"chat_id":%d,"message_id":%d,"content":"%s","tag_ids":[1,2,3],"changes":{"name":{"old":"design","new":"design & research"}}}`,
				9000+id%7, 50_000_000+id, strings.Repeat("Привет, мир! ", 40)),
			Workspace: "acme",
		}
	}
	return recs
}

// consume reads want records of topic from the beginning and then checks for
// a short while that no more arrive.
func consume(tb testing.TB, brokers []string, topic string, want int) []*kgo.Record {
	tb.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond),
	)
	require.NoError(tb, err)
	defer cl.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got []*kgo.Record
	for len(got) < want {
		fs := cl.PollFetches(ctx)
		require.NoError(tb, ctx.Err(), "got %d of %d records", len(got), want)
		for _, fe := range fs.Errors() {
			require.NoError(tb, fe.Err, "fetch %s/%d", fe.Topic, fe.Partition)
		}
		got = append(got, fs.Records()...)
	}
	extra, cancelExtra := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancelExtra()
	fs := cl.PollFetches(extra)
	require.Len(tb, got, want, "records beyond the expected ones")
	require.Empty(tb, fs.Records(), "records beyond the expected ones")
	return got
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return "<missing>"
}
