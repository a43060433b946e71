package kafkasink_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pachca-export/pachca-export/sinks/kafkasink"
	"github.com/pachca-export/pachca-export/sinks/ndjson"
	"github.com/pachca-export/pachca-export/testkit/kafkatest"
	"github.com/pachca-export/pachca-export/testkit/logbuf"
	"github.com/pachca-export/pachca-export/transform"
)

func TestDeliverManyBatches(t *testing.T) {
	const topic, batches, perBatch = "pachca.audit", 5, 1000
	c := newCluster(t, kfake.SeedTopics(3, topic))
	s := newSink(t, testConfig(c.ListenAddrs(), topic))
	require.Equal(t, "kafka pachca.audit", s.Name())
	require.NoError(t, s.Check(t.Context()))

	w, err := s.Open(t.Context(), partition())
	require.NoError(t, err)
	want := map[string]transform.Record{}
	var wantBytes int64
	for b := range batches {
		recs := makeRecords(b*perBatch, perBatch)
		for i := range recs {
			want[recs[i].ID] = recs[i]
			wantBytes += int64(len(ndjson.AppendRecord(nil, &recs[i])))
		}
		require.NoError(t, w.Write(t.Context(), recs))
		clear(recs) // the caller may reuse the batch after Write returns
	}
	require.NoError(t, w.Write(t.Context(), nil))
	res, err := w.Commit(t.Context())
	require.NoError(t, err)
	require.Equal(t, int64(batches*perBatch), res.Records)
	require.Equal(t, wantBytes, res.Bytes)
	require.NoError(t, w.Abort(context.Background()), "Abort after Commit is a no-op")

	got := consume(t, c.ListenAddrs(), topic, batches*perBatch)
	seen := map[string]bool{}
	partitions := map[int32]bool{}
	for _, r := range got {
		id := string(r.Key)
		rec, ok := want[id]
		require.True(t, ok, "unexpected key %q", id)
		require.False(t, seen[id], "key %q delivered twice", id)
		seen[id] = true
		partitions[r.Partition] = true
		require.Equal(t, string(ndjson.AppendRecord(nil, &rec)), string(r.Value))
		require.Equal(t, rec.EventKey, header(r, kafkasink.HeaderEventKey))
		require.Equal(t, transform.SchemaVersion, header(r, kafkasink.HeaderSchemaVersion))
		require.Equal(t, "acme", header(r, kafkasink.HeaderWorkspace))
		require.Len(t, r.Headers, 3)
		require.Equal(t, rec.CreatedAt, r.Timestamp.UnixMilli(), "the message time is the event's created_at")
	}
	require.Len(t, seen, batches*perBatch)
	require.Len(t, partitions, 3, "keys spread over every partition")
}

// TestMurmur2AsTheJavaClient: with the default balancer an event goes to
// the partition the Java client's default partitioner picks for its id
// (franz-go's KafkaHasher is its port), so that a consumer or a Kafka
// Streams job keyed by event id finds it co-partitioned.
func TestMurmur2AsTheJavaClient(t *testing.T) {
	const topic, partitions = "pachca.audit", 7
	c := newCluster(t, kfake.SeedTopics(partitions, topic))
	s := newSink(t, testConfig(c.ListenAddrs(), topic))
	w, err := s.Open(t.Context(), partition())
	require.NoError(t, err)
	recs := makeRecords(0, 500)
	require.NoError(t, w.Write(t.Context(), recs))
	_, err = w.Commit(t.Context())
	require.NoError(t, err)
	java := kgo.StickyKeyPartitioner(nil).ForTopic(topic)
	for _, r := range consume(t, c.ListenAddrs(), topic, len(recs)) {
		require.Equal(t, int32(java.Partition(r, partitions)), r.Partition, "event %s", r.Key)
	}
}

func TestCompressionRoundTrip(t *testing.T) {
	codecs := []string{"none", "gzip", "snappy", "lz4", "zstd"}
	c := newCluster(t, kfake.SeedTopics(1, codecs...))
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			cfg := testConfig(c.ListenAddrs(), codec)
			cfg.Compression = codec
			s := newSink(t, cfg)
			w, err := s.Open(t.Context(), partition())
			require.NoError(t, err)
			recs := makeRecords(0, 300)
			require.NoError(t, w.Write(t.Context(), recs))
			_, err = w.Commit(t.Context())
			require.NoError(t, err)

			got := consume(t, c.ListenAddrs(), codec, len(recs))
			for i, r := range got { // one partition: order is kept
				require.Equal(t, recs[i].ID, string(r.Key))
				require.Equal(t, string(ndjson.AppendRecord(nil, &recs[i])), string(r.Value))
			}
		})
	}
}

// closedPort returns a loopback address where nothing listens.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// TestBrokerNotKafka: brokers pointing at another service's port (an HTTP
// server) are named as not answering as Kafka, at once (was: "unreachable:
// context deadline exceeded" after dial_timeout + write_timeout, kafka-go
// having decoded "HTTP/1.1 400" as a 1.2 GB response: 1.5 GB of RSS), and
// the sink's writes fail the same way.
func TestBrokerNotKafka(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	s := newSink(t, testConfig([]string{addr}, "pachca.audit"))
	require.EqualError(t, s.Check(t.Context()), "kafka: brokers "+addr+": "+addr+" did not answer as Kafka (another service on this port?): "+
		"check brokers (the host:port of a Kafka listener, not another service's)")

	w, err := s.Open(t.Context(), partition())
	require.NoError(t, err)
	err = w.Write(t.Context(), makeRecords(1, 1))
	require.ErrorContains(t, err, "did not answer as Kafka")
	require.NoError(t, w.Abort(t.Context()))
}

// TestBrokerHung: a broker that accepts connections and never answers (a
// stopped process, a hung host) is named as such (was: "unreachable: read
// tcp ...: i/o timeout").
func TestBrokerHung(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	accepted := make(chan net.Conn, 16)
	done := make(chan struct{})
	t.Cleanup(func() {
		ln.Close()
		<-done
		close(accepted)
		for c := range accepted {
			c.Close()
		}
	})
	go func() { // accepts, reads nothing, never answers
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			select {
			case accepted <- c:
			default:
				c.Close()
			}
		}
	}()
	addr := ln.Addr().String()
	s := newSink(t, testConfig([]string{addr}, "pachca.audit"))
	require.EqualError(t, s.Check(t.Context()), "kafka: brokers "+addr+" accepted the connection but did not answer as Kafka within 2s (dial_timeout): "+
		"check brokers (the host:port of a Kafka listener, not another service's) and that the brokers are up")
}

func TestBrokerUnreachable(t *testing.T) {
	addr := closedPort(t)
	s := newSink(t, testConfig([]string{addr}, "pachca.audit"))

	start := time.Now()
	err := s.Check(t.Context())
	require.Error(t, err)
	require.True(t, strings.HasPrefix(err.Error(), "kafka: brokers "+addr+" unreachable: "), err.Error())
	require.Contains(t, err.Error(), "connection refused")
	require.NotContains(t, err.Error(), "kafka.(*Client)", "no names of the library's methods")

	w, err := s.Open(t.Context(), partition())
	require.NoError(t, err)
	err = w.Write(t.Context(), makeRecords(0, 10))
	require.Error(t, err)
	require.Contains(t, err.Error(), "kafka: topic pachca.audit (brokers "+addr+"): ")
	require.Contains(t, err.Error(), "connection refused")
	t.Log(err)
	_, cerr := w.Commit(t.Context())
	require.ErrorIs(t, cerr, err, "Commit reports the failed Write")
	require.Less(t, time.Since(start), 10*time.Second)
}

func TestBrokerStopsMidway(t *testing.T) {
	const topic = "pachca.audit"
	c := newCluster(t, kfake.SeedTopics(2, topic))
	s := newSink(t, testConfig(c.ListenAddrs(), topic))
	w, err := s.Open(t.Context(), partition())
	require.NoError(t, err)
	for b := range 3 {
		require.NoError(t, w.Write(t.Context(), makeRecords(b*500, 500)))
	}

	c.Close()
	start := time.Now()
	var werr error
	for b := 3; b < 10 && werr == nil; b++ {
		werr = w.Write(t.Context(), makeRecords(b*500, 500))
	}
	require.Error(t, werr, "writes to a stopped broker must fail")
	t.Log(werr)
	require.Contains(t, werr.Error(), "kafka: topic pachca.audit")
	require.NotContains(t, werr.Error(), "kafka.(*Client)", "no names of the library's methods")
	require.Less(t, time.Since(start), 20*time.Second)
	_, err = w.Commit(t.Context())
	require.Error(t, err, "Commit must not report success after a failed delivery")
	require.NoError(t, w.Abort(context.Background()))
}

// failProduce answers the first times produce requests (all of them if
// times < 0) with code for every partition, counting them in calls.
func failProduce(c *kfake.Cluster, code int16, times int32, calls *atomic.Int32) {
	c.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if times >= 0 && calls.Load() >= times {
			return nil, nil, false
		}
		calls.Add(1)
		req := kreq.(*kmsg.ProduceRequest)
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
}

func TestProduceErrors(t *testing.T) {
	const (
		head         = `^kafka: topic pachca\.audit \(brokers 127\.0\.0\.1:\d+\): `
		replicas     = `200 of 200 messages not delivered: \[19\] Not Enough Replicas: [^\n]+`
		unauthorized = `200 of 200 messages not delivered: \[29\] Topic Authorization Failed: [^\n]+$`
	)
	tests := []struct {
		name      string
		code      int16
		times     int32
		wantErr   error  // nil: delivered after a retry
		wantCalls int32  // 0: rounds of max_attempts (2) until delivery_timeout, at least two
		wantMsg   string // the error, on one line
	}{
		// delivery_timeout ends the rounds after one (the time left is
		// less than the pause before another) or during one (a round
		// slower than the time left after the pause, as on a busy
		// machine), which the error says; either way with the refusal.
		{"retriable error persists", kerr.NotEnoughReplicas.Code, -1, kafka.NotEnoughReplicas, 0,
			head + `(` + replicas + ` \(sent again for \d+s, delivery_timeout 10s\)|` +
				`200 messages not acknowledged within delivery_timeout \(10s, tried for \d+s\); the round before: ` + replicas + `)$`},
		{"retriable error once", kerr.NotEnoughReplicas.Code, 1, nil, 1, ""},
		{"permanent error", kerr.TopicAuthorizationFailed.Code, 1, kafka.TopicAuthorizationFailed, 1, head + unauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const topic = "pachca.audit"
			c := newCluster(t, kfake.SeedTopics(1, topic))
			cfg := testConfig(c.ListenAddrs(), topic)
			if tt.wantCalls == 0 {
				// Time for a second round however slow the first: on a
				// busy machine under -race one took over 2 s, the most
				// that 3 s leave before the pause of a second round.
				cfg.DeliveryTimeout = 10 * time.Second
			}
			s := newSink(t, cfg)
			w, err := s.Open(t.Context(), partition())
			require.NoError(t, err)

			var calls atomic.Int32
			failProduce(c, tt.code, tt.times, &calls)
			recs := makeRecords(0, 200)
			err = w.Write(t.Context(), recs)
			if tt.wantCalls == 0 {
				require.GreaterOrEqual(t, calls.Load(), int32(4), "produce requests answered with an error")
			} else {
				require.Equal(t, tt.wantCalls, calls.Load(), "produce requests answered with an error")
			}
			if tt.wantErr == nil {
				require.NoError(t, err)
				res, err := w.Commit(t.Context())
				require.NoError(t, err)
				require.Equal(t, int64(len(recs)), res.Records)
				consume(t, c.ListenAddrs(), topic, len(recs))
				return
			}
			t.Log(err)
			require.ErrorIs(t, err, tt.wantErr)
			var werrs kafka.WriteErrors
			require.ErrorAs(t, err, &werrs)
			require.Equal(t, len(recs), werrs.Count())
			require.Regexp(t, tt.wantMsg, err.Error())
			require.Less(t, len(err.Error()), 300, "one line, not one error per message")
			_, err = w.Commit(t.Context())
			require.ErrorIs(t, err, tt.wantErr)
		})
	}
}

// TestBrokerTextOnOneLine: the message a broker gives with its error code
// goes into the error on one line, without what a terminal acts on.
func TestBrokerTextOnOneLine(t *testing.T) {
	const topic = "pachca.audit"
	c := newCluster(t, kfake.SeedTopics(1, topic))
	s := newSink(t, testConfig(c.ListenAddrs(), topic))
	w, err := s.Open(t.Context(), partition())
	require.NoError(t, err)
	c.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		req := kreq.(*kmsg.ProduceRequest)
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		msg := "denied\npachca-export: run OK\x1b[2J"
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition, sp.ErrorCode, sp.ErrorMessage = rp.Partition, kerr.TopicAuthorizationFailed.Code, &msg
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	err = w.Write(t.Context(), makeRecords(0, 5))
	require.ErrorIs(t, err, kafka.TopicAuthorizationFailed)
	require.Contains(t, err.Error(), `: denied pachca-export: run OK\x1b[2J`)
	require.NotContains(t, err.Error(), "\n")
}

func TestTopicMissing(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "other"))
	s := newSink(t, testConfig(c.ListenAddrs(), "missing"))
	require.EqualError(t, s.Check(t.Context()),
		"kafka: topic missing does not exist and allow_auto_topic_creation is false")

	w, err := s.Open(t.Context(), partition())
	require.NoError(t, err)
	err = w.Write(t.Context(), makeRecords(0, 5))
	t.Log(err)
	require.ErrorIs(t, err, kafka.UnknownTopicOrPartition)
	require.Contains(t, err.Error(), "the topic does not exist and allow_auto_topic_creation is false")
}

// TestTopicNotAutoCreated: allow_auto_topic_creation to brokers that do
// not create topics says so (was: "[3] Unknown Topic Or Partition: ..." and
// nothing on why, after check had said OK).
func TestTopicNotAutoCreated(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "other"))
	cfg := testConfig(c.ListenAddrs(), "missing")
	cfg.AllowAutoTopicCreation = true
	s := newSink(t, cfg)
	require.NoError(t, s.Check(t.Context()), "created by the first write, if the brokers allow it")

	w, err := s.Open(t.Context(), partition())
	require.NoError(t, err)
	err = w.Write(t.Context(), makeRecords(0, 5))
	require.ErrorIs(t, err, kafka.UnknownTopicOrPartition)
	require.Contains(t, err.Error(), "(the topic does not exist and the brokers did not create it: create the topic, or set auto.create.topics.enable on the brokers)")
}

func TestTopicAutoCreated(t *testing.T) {
	c := newCluster(t, kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(2))
	cfg := testConfig(c.ListenAddrs(), "created")
	cfg.AllowAutoTopicCreation = true
	s := newSink(t, cfg)
	require.NoError(t, s.Check(t.Context()))

	w, err := s.Open(t.Context(), partition())
	require.NoError(t, err)
	require.NoError(t, w.Write(t.Context(), makeRecords(0, 50)))
	res, err := w.Commit(t.Context())
	require.NoError(t, err)
	require.Equal(t, int64(50), res.Records)
	consume(t, c.ListenAddrs(), "created", 50)
}

func TestLifecycle(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	s, err := kafkasink.New(testConfig(c.ListenAddrs(), "t"))
	require.NoError(t, err)
	w, err := s.Open(t.Context(), partition())
	require.NoError(t, err)
	_, err = w.Commit(t.Context())
	require.NoError(t, err, "an empty partition commits")
	require.EqualError(t, w.Write(t.Context(), makeRecords(0, 1)), "kafka: topic t: write after commit or abort")

	require.NoError(t, s.Close(context.Background()))
	require.NoError(t, s.Close(context.Background()), "Close twice")
	_, err = s.Open(t.Context(), partition())
	require.EqualError(t, err, "kafka: topic t: sink is closed")
}

func TestCancelledContext(t *testing.T) {
	addr := closedPort(t)
	s := newSink(t, testConfig([]string{addr}, "t"))
	w, err := s.Open(t.Context(), partition())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err = w.Write(ctx, makeRecords(0, 1))
	require.Error(t, err)
	require.True(t, errors.Is(err, ctx.Err()) || strings.Contains(err.Error(), "connection refused"), err.Error())
}

func TestNewRejectsBadConfig(t *testing.T) {
	_, err := kafkasink.New(kafkasink.Config{Topic: "t"})
	require.EqualError(t, err, "kafka: brokers: required")

	cfg := testConfig([]string{"127.0.0.1:9092"}, "t")
	cfg.TLS = kafkasink.TLSConfig{Enabled: true, CAFile: t.TempDir() + "/missing.pem"}
	_, err = kafkasink.New(cfg)
	require.ErrorContains(t, err, "kafka: tls.ca_file: open ")
}

// TestEventLargerThanBatchBytes: an event whose message exceeds batch_bytes
// is refused by the client before anything is sent; the error names the
// event, its size and the setting, not the server.
func TestEventLargerThanBatchBytes(t *testing.T) {
	const topic = "pachca.audit"
	c := newCluster(t, kfake.SeedTopics(1, topic))
	cfg := testConfig(c.ListenAddrs(), topic)
	cfg.BatchBytes = 4096
	s := newSink(t, cfg)
	recs := makeRecords(0, 3)
	recs[1].DetailsJSON = `{"text":"` + strings.Repeat("x", 8000) + `"}`
	w, err := s.Open(t.Context(), partition())
	require.NoError(t, err)
	err = w.Write(t.Context(), recs)
	require.Error(t, err)
	require.Contains(t, err.Error(), "event "+recs[1].ID+" makes a message of")
	require.Contains(t, err.Error(), "more than batch_bytes (4096): raise batch_bytes")
	require.NotContains(t, err.Error(), "the server has a configurable maximum")
}

// TestBatchLargerThanTopicLimit: batch_bytes raised above the topic's
// max.message.bytes, the brokers refuse a partition's batch; the error
// names the largest message refused and both settings (was: "4 of 11
// messages not delivered: [10] Message Size Too Large: ..." and nothing
// on which event, nor what to change).
func TestBatchLargerThanTopicLimit(t *testing.T) {
	const topic = "pachca.audit"
	c := newCluster(t, kfake.SeedTopics(1, topic), kfake.BrokerConfigs(map[string]string{"message.max.bytes": "20000"}))
	cfg := testConfig(c.ListenAddrs(), topic)
	cfg.BatchBytes = 1 << 20
	cfg.Compression = "none"
	s := newSink(t, cfg)
	recs := makeRecords(0, 3)
	recs[1].DetailsJSON = `{"text":"` + strings.Repeat("x", 30000) + `"}`
	w, err := s.Open(t.Context(), partition())
	require.NoError(t, err)
	err = w.Write(t.Context(), recs)
	require.ErrorIs(t, err, kafka.MessageSizeTooLarge)
	require.Regexp(t, `: 3 of 3 messages not delivered: \[10\] Message Size Too Large: .* \(the brokers refuse a batch larger than the topic's max.message.bytes, which is lower than batch_bytes \(1048576\); the largest message refused is event `+recs[1].ID+`, \d+ bytes: raise the topic's max.message.bytes to batch_bytes, or lower batch_bytes to it\)$`, err.Error())
}

// sized returns a record whose message is size bytes as the sink counts
// it against batch_bytes.
func sized(t *testing.T, size int) transform.Record {
	r := makeRecords(0, 1)[0]
	r.DetailsJSON = `{}`
	r.UserAgent = transform.NullString{Valid: true, Str: strings.Repeat("x", size-1000)}
	r.UserAgent.Str += strings.Repeat("x", size-kafkasink.MessageSize(r))
	require.Equal(t, size, kafkasink.MessageSize(r))
	return r
}

// TestMessageSizeAsTheBrokersCount: the size a message is checked
// against batch_bytes with is the bytes of its record batch, as the
// brokers count it against max.message.bytes: one byte more than their
// limit is refused by them, and with batch_bytes at that limit, by the
// sink first, with a line naming the event and a size above batch_bytes
// (was: kafka-go counted about 50 bytes less, so that such a message
// reached the brokers and came back as "Message Size Too Large ... the
// topic's max.message.bytes, which is lower than batch_bytes", with
// compression none, and one refused before was named "a message of
// 1048548 bytes, more than batch_bytes (1048576)").
func TestMessageSizeAsTheBrokersCount(t *testing.T) {
	const topic, limit = "pachca.audit", 1048588 // the brokers' default message.max.bytes
	c := newCluster(t, kfake.SeedTopics(1, topic))
	write := func(batchBytes int64, r transform.Record) error {
		cfg := testConfig(c.ListenAddrs(), topic)
		cfg.Compression = "none" // compression makes the batch smaller than counted
		cfg.BatchBytes = batchBytes
		s := newSink(t, cfg)
		w, err := s.Open(t.Context(), partition())
		require.NoError(t, err)
		return w.Write(t.Context(), []transform.Record{r})
	}
	require.NoError(t, write(limit+1000, sized(t, limit)))
	require.ErrorIs(t, write(limit+1000, sized(t, limit+1)), kafka.MessageSizeTooLarge, "the brokers count the same bytes")

	require.NoError(t, write(limit, sized(t, limit)))
	r := sized(t, limit+1)
	err := write(limit, r)
	require.EqualError(t, err, fmt.Sprintf("kafka: topic %s: event %s makes a message of %d bytes, more than batch_bytes (%d): raise batch_bytes, and the topic's max.message.bytes if it is lower", topic, r.ID, limit+1, limit))
	require.NotErrorIs(t, err, kafka.MessageSizeTooLarge, "refused before it was sent")
}

// TestBatchAsTheBrokersCount: uncompressed messages near batch_bytes,
// alone or a few to a batch, are all accepted by brokers whose limit is
// batch_bytes, or refused by the sink before they are sent, naming a size
// above it (was: two events of 524,323 bytes each made a batch 35 bytes
// over the brokers' default limit, kafka-go counting 26 bytes of framing
// a message and no batch header: refused at every try, the feed stuck).
func TestBatchAsTheBrokersCount(t *testing.T) {
	const topic = "pachca.audit"
	for _, limit := range []int{4096, 1<<20 + 12} { // 1 MiB + 12: the brokers' default message.max.bytes
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			c := newCluster(t, kfake.SeedTopics(1, topic), kfake.BrokerConfigs(map[string]string{"message.max.bytes": fmt.Sprint(limit)}))
			cfg := testConfig(c.ListenAddrs(), topic)
			cfg.Compression = "none"
			cfg.BatchBytes = int64(limit)
			s := newSink(t, cfg)
			write := func(recs ...transform.Record) error {
				w, err := s.Open(t.Context(), partition())
				require.NoError(t, err)
				return w.Write(t.Context(), recs)
			}
			for size := limit - 30; size <= limit+5; size++ {
				err := write(sized(t, size))
				if size <= limit {
					require.NoError(t, err, "a message of %d bytes", size)
				} else {
					require.ErrorContains(t, err, fmt.Sprintf("makes a message of %d bytes, more than batch_bytes (%d)", size, limit))
				}
			}
			for _, n := range []int{2, 3} {
				for extra := 0; extra < 200; extra += 5 {
					recs := make([]transform.Record, n)
					for i := range recs {
						recs[i] = sized(t, limit/n+extra)
						recs[i].ID += fmt.Sprint(i)
						recs[i].CreatedAt += int64(i) * 3_600_000 // an hour apart: timestamp deltas of 4 bytes
					}
					require.NoError(t, write(recs...), "%d messages of %d bytes", n, limit/n+extra)
				}
			}
		})
	}
}

// TestBrokerRestarts: a broker that goes down and comes back (a rolling
// upgrade, a crash and restart) within delivery_timeout costs the write a
// wait, and every message arrives once (was: the write failed once
// max_attempts were spent, about 6 s with the defaults, and the run with
// it). The wait is in the log: a warning naming the cause when the
// messages are first sent again, a line when they are acknowledged (was:
// nothing for up to delivery_timeout, 2 minutes).
func TestBrokerRestarts(t *testing.T) {
	const topic = "pachca.audit"
	dir := t.TempDir()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, topic), kfake.DataDir(dir))
	require.NoError(t, err)
	addrs := c.ListenAddrs()

	cfg := testConfig(addrs, topic)
	cfg.DeliveryTimeout = time.Minute
	s := newSink(t, cfg)
	var log logbuf.Buffer
	s.SetLogger(slog.New(slog.NewTextHandler(&log, nil)))
	w, err := s.Open(t.Context(), partition())
	require.NoError(t, err)
	require.NoError(t, w.Write(t.Context(), makeRecords(0, 300)))
	require.Empty(t, log.String(), "nothing to say while the broker answers")

	c.Close()
	restarted := make(chan *kfake.Cluster, 1)
	go func() {
		time.Sleep(2 * time.Second) // down for longer than max_attempts last
		c2, err := kafkatest.Restart(addrs[0], dir)
		if err != nil {
			t.Error(err)
		}
		restarted <- c2
	}()
	require.NoError(t, w.Write(t.Context(), makeRecords(300, 300)), "the write waits for the broker to come back")
	res, err := w.Commit(t.Context())
	require.NoError(t, err)
	require.Equal(t, int64(600), res.Records)
	c2 := <-restarted
	require.NotNil(t, c2, "the broker restarted on its port")
	t.Cleanup(c2.Close)

	ids := map[string]int{}
	for _, r := range consume(t, c2.ListenAddrs(), topic, 600) {
		ids[string(r.Key)]++
	}
	require.Len(t, ids, 600, "every message once, those from before the restart kept")
	require.Regexp(t, `level=WARN msg="kafka: the brokers refused messages for a cause that passes; sending them again until delivery_timeout" topic=pachca.audit brokers=\S+ messages=300 cause=".*connection refused.*" for=\d+s delivery_timeout=1m0s\n`, log.String())
	require.Regexp(t, `level=INFO msg="kafka: the brokers acknowledged the messages sent again" topic=pachca.audit brokers=\S+ messages=\d+ after=\d+s\n`, log.String())
}

// TestDeliveryTimeoutBoundsTheWait: a broker that stays away fails the
// write once delivery_timeout has passed, saying how long it was tried;
// only the messages refused are sent again.
func TestDeliveryTimeoutBoundsTheWait(t *testing.T) {
	const topic = "pachca.audit"
	t.Run("broker gone", func(t *testing.T) {
		addr := closedPort(t)
		cfg := testConfig([]string{addr}, topic)
		cfg.DeliveryTimeout = 3 * time.Second
		s := newSink(t, cfg)
		w, err := s.Open(t.Context(), partition())
		require.NoError(t, err)
		start := time.Now()
		err = w.Write(t.Context(), makeRecords(0, 10))
		require.Error(t, err)
		require.GreaterOrEqual(t, time.Since(start), 2*time.Second, "sent again until delivery_timeout")
		require.Contains(t, err.Error(), "connection refused")
		require.Regexp(t, `\(sent again for \d+s, delivery_timeout 3s\)$`, err.Error())
	})
	t.Run("refused longer than max_attempts", func(t *testing.T) {
		c := newCluster(t, kfake.SeedTopics(1, topic))
		cfg := testConfig(c.ListenAddrs(), topic)
		cfg.DeliveryTimeout = 30 * time.Second
		s := newSink(t, cfg)
		w, err := s.Open(t.Context(), partition())
		require.NoError(t, err)
		var calls atomic.Int32
		failProduce(c, kerr.NotEnoughReplicas.Code, 3, &calls) // more than max_attempts (2)
		require.NoError(t, w.Write(t.Context(), makeRecords(0, 200)))
		require.Equal(t, int32(3), calls.Load(), "three refused, the fourth delivered")
		consume(t, c.ListenAddrs(), topic, 200)
	})
	t.Run("permanent refusal is not waited for", func(t *testing.T) {
		c := newCluster(t, kfake.SeedTopics(1, topic))
		cfg := testConfig(c.ListenAddrs(), topic)
		cfg.DeliveryTimeout = time.Minute
		s := newSink(t, cfg)
		w, err := s.Open(t.Context(), partition())
		require.NoError(t, err)
		var calls atomic.Int32
		failProduce(c, kerr.TopicAuthorizationFailed.Code, -1, &calls)
		require.ErrorIs(t, w.Write(t.Context(), makeRecords(0, 20)), kafka.TopicAuthorizationFailed)
		require.Equal(t, int32(1), calls.Load())
	})
}

// TestBrokerStopsAnswering: a broker that takes produce requests and never
// answers them (a frozen process, a hung disk) fails the write once
// delivery_timeout has passed (was: kafka-go sends the batches of a
// partition one after another, each for max_attempts × write_timeout, so
// a write of many batches waited as many times that: a run measured
// still waiting after 6 minutes).
func TestBrokerStopsAnswering(t *testing.T) {
	const topic = "pachca.audit"
	c := newCluster(t, kfake.SeedTopics(1, topic))
	hang := make(chan struct{})
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		<-hang
		return nil, nil, false
	})
	cfg := testConfig(c.ListenAddrs(), topic)
	cfg.BatchSize = 100 // five batches, each up to max_attempts × write_timeout (6 s)
	s := newSink(t, cfg)
	w, err := s.Open(t.Context(), partition())
	require.NoError(t, err)
	start := time.Now()
	err = w.Write(t.Context(), makeRecords(0, 500))
	require.Error(t, err)
	t.Log(err)
	require.Regexp(t, `^kafka: topic pachca\.audit \(brokers 127\.0\.0\.1:\d+\): 500 messages not acknowledged within delivery_timeout \(3s, tried for 3s\): the brokers did not answer$`, err.Error())
	require.Less(t, time.Since(start), 20*time.Second)
	close(hang) // kafka-go's batches still under way end, and the sink closes
}
