package pipeline_test

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/kafkasink"
	"github.com/pachca-export/pachca-export/sinks/s3sink"
	"github.com/pachca-export/pachca-export/sinks/shape"
	"github.com/pachca-export/pachca-export/sinkset"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
	"github.com/pachca-export/pachca-export/testkit/kafkatest"
	"github.com/pachca-export/pachca-export/testkit/miniotest"
)

// TestParquetRoundTrip: NDJSON and Parquet written in one pass from
// simulator data hold the same events, every value equal to the source, for
// every event key of the OpenAPI document and unknown ones.
func TestParquetRoundTrip(t *testing.T) {
	sim, base := startSim(t, func(c *simulator.Config) {
		c.Events, c.From, c.To, c.UnknownKeys = 8000, day0(), day0().AddDate(0, 0, 2), true
	})
	cfg := testConfig(t, base)
	dir := filepath.Dir(cfg.Sinks[0].File.Dir)
	cfg.Sinks = append(cfg.Sinks, config.Sink{Type: "parquet", File: &config.FileSink{Dir: filepath.Join(dir, "parquet")}})
	from, to := day0(), day0().AddDate(0, 0, 2)
	_, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: from, To: to}, false)
	require.NoError(t, err)
	want := exporttest.Expected(sim, from, to)
	exporttest.Compare(t, want, exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir), "acme")
	got := exporttest.ReadParquet(t, cfg.Sinks[1].File.Dir)
	exporttest.Compare(t, want, got, "acme")
	keys := map[string]bool{}
	for _, l := range got {
		keys[l.Fields["event_key"].(string)] = true
	}
	for _, k := range simulator.EventKeys() {
		require.True(t, keys[k], "no %s event in the output", k)
	}
	for _, k := range simulator.UnknownEventKeys() {
		require.True(t, keys[k], "unknown key %s kept", k)
	}
}

// download copies every object under prefix into a directory, keeping the
// dt= layout, and returns the directory and the object keys.
func download(t *testing.T, cl *s3.Client, bucket, prefix string) (string, []string) {
	dir := t.TempDir()
	out, err := cl.ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	require.NoError(t, err)
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, *o.Key)
		obj, err := cl.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: o.Key})
		require.NoError(t, err)
		path := filepath.Join(dir, strings.TrimPrefix(*o.Key, prefix))
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		b, err := io.ReadAll(obj.Body)
		obj.Body.Close()
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, b, 0o600))
	}
	return dir, keys
}

func s3Sink(m *miniotest.Server, bucket, prefix, format string) config.Sink {
	c := &s3sink.Config{Bucket: bucket, Prefix: prefix, Format: format, Region: m.Region, Endpoint: m.Endpoint,
		ForcePathStyle: true, AccessKeyID: m.AccessKey, SecretAccessKey: m.SecretKey, MaxAttempts: 2, Timeout: 3 * time.Second}
	c.SetDefaults()
	return config.Sink{Type: "s3", S3: c}
}

// lakeSink is an S3 sink of OCSF Parquet in the Security Lake layout of
// sl, its account 123456789012.
func lakeSink(m *miniotest.Server, bucket string, sl shape.SecurityLake) config.Sink {
	s := s3Sink(m, bucket, "", "parquet")
	s.S3.Timeout = 10 * time.Second
	sl.AccountID = "123456789012"
	s.S3.Keys = shape.Keys{Schema: shape.SchemaOCSF, Layout: shape.LayoutSecurityLake, SecurityLake: &sl}
	return s
}

// TestS3EndToEnd: both formats uploaded, listed and read back equal to the
// source; MinIO stopped in the middle of a run fails the run; started again,
// the rerun delivers the exact set with no duplicate objects.
func TestS3EndToEnd(t *testing.T) {
	t.Parallel()
	m := miniotest.Start(t)
	m.CreateBucket("audit")
	sim, base := startSim(t, func(c *simulator.Config) {
		c.Events, c.From, c.To = 4000, day0(), day0().AddDate(0, 0, 3)
		c.Latency = 20 * time.Millisecond
	})
	cfg := testConfig(t, base)
	cfg.Source.RequestsPerSecond, cfg.Source.Concurrency = 40, 2
	cfg.Sinks = []config.Sink{s3Sink(m, "audit", "pq/", "parquet"), s3Sink(m, "audit", "nd/", "ndjson")}
	require.NoError(t, cfg.Validate())
	from, to := day0(), day0().AddDate(0, 0, 3)

	// Stop MinIO right after the first day is committed to both sinks,
	// from inside the run, so the stop always falls in its middle.
	built, err := sinkset.Build(t.Context(), cfg.Sinks, nil)
	require.NoError(t, err)
	var once sync.Once
	built.Sinks[1] = &afterCommit{Sink: built.Sinks[1], hook: func() { once.Do(m.Stop) }}
	sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t), Sinks: built.Sinks}, pipeline.Range{From: from, To: to}, false)
	require.Error(t, err)
	require.Contains(t, err.Error(), "s3")
	require.Less(t, len(sum.Days), 3, "the run stopped part way")

	m.Restart()
	_, err = pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: from, To: to}, false)
	require.NoError(t, err)
	want := exporttest.Expected(sim, from, to)
	pq, pqKeys := download(t, m.Client(), "audit", "pq/")
	exporttest.Compare(t, want, exporttest.ReadParquet(t, pq), "acme")
	nd, ndKeys := download(t, m.Client(), "audit", "nd/")
	exporttest.Compare(t, want, exporttest.ReadNDJSON(t, nd), "acme")
	require.Len(t, pqKeys, 7, "the marker, then one object and one manifest per day: %v", pqKeys)
	require.Len(t, ndKeys, 7, "the marker, then one object and one manifest per day: %v", ndKeys)
	require.Equal(t, "pq/"+sinks.MarkerName, pqKeys[0])
}

// afterCommit runs hook after each successful commit of its sink.
type afterCommit struct {
	sinks.Sink
	hook func()
}

func (a *afterCommit) Open(ctx context.Context, p sinks.Partition) (sinks.Writer, error) {
	w, err := a.Sink.Open(ctx, p)
	if err != nil {
		return nil, err
	}
	return &afterCommitWriter{Writer: w, hook: a.hook}, nil
}

type afterCommitWriter struct {
	sinks.Writer
	hook func()
}

func (w *afterCommitWriter) Commit(ctx context.Context) (sinks.Result, error) {
	res, err := w.Writer.Commit(ctx)
	if err == nil {
		w.hook()
	}
	return res, err
}

// TestS3Failures: a missing bucket and wrong credentials fail the run with a
// clear message, and nothing is marked exported.
func TestS3Failures(t *testing.T) {
	m := miniotest.Start(t)
	m.CreateBucket("audit")
	_, base := startSim(t, func(c *simulator.Config) { c.Events = 200 })
	for name, mutate := range map[string]func(*s3sink.Config){
		"missing bucket":    func(c *s3sink.Config) { c.Bucket = "no-such-bucket" },
		"wrong credentials": func(c *s3sink.Config) { c.SecretAccessKey = "wrong-secret-key" },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(t, base)
			s := s3Sink(m, "audit", "x/", "ndjson")
			mutate(s.S3)
			cfg.Sinks = []config.Sink{s}
			_, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: day0(), To: day0().AddDate(0, 0, 1)}, false)
			require.Error(t, err)
			if name == "missing bucket" {
				require.ErrorContains(t, err, `bucket "no-such-bucket" does not exist`)
			} else {
				require.ErrorContains(t, err, "access denied")
				require.NotContains(t, err.Error(), "wrong-secret-key")
			}
		})
	}
}

func kafkaSink(brokers []string, topic string) config.Sink {
	c := &kafkasink.Config{Brokers: brokers, Topic: topic, WriteTimeout: 3 * time.Second, DialTimeout: 2 * time.Second, MaxAttempts: 2, DeliveryTimeout: 3 * time.Second}
	c.SetDefaults()
	return config.Sink{Type: "kafka", Kafka: c}
}

// TestKafkaEndToEnd: a clean run delivers every event once with keys and
// headers right; an unreachable broker fails the run; a broker stopped in
// the middle fails it and leaves the day unexported; the rerun delivers
// everything (duplicates allowed, loss not).
func TestKafkaEndToEnd(t *testing.T) {
	t.Parallel()
	sim, base := startSim(t, func(c *simulator.Config) {
		c.Events, c.From, c.To = 3000, day0(), day0().AddDate(0, 0, 2)
	})
	from, to := day0(), day0().AddDate(0, 0, 2)
	want := exporttest.Expected(sim, from, to)

	t.Run("clean run", func(t *testing.T) {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "audit"))
		require.NoError(t, err)
		defer c.Close()
		cfg := testConfig(t, base)
		cfg.Sinks = []config.Sink{kafkaSink(c.ListenAddrs(), "audit")}
		_, err = pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: from, To: to}, false)
		require.NoError(t, err)
		recs := kafkatest.Consume(t, c.ListenAddrs(), "audit")
		got := map[string]exporttest.Line{}
		for _, r := range recs {
			_, dup := got[string(r.Key)]
			require.False(t, dup, "a clean run sends each event once")
			fields := exporttest.Decode(t, r.Value)
			require.Equal(t, string(r.Key), fields["id"])
			for _, h := range r.Headers {
				switch h.Key {
				case "event_key":
					require.Equal(t, fields["event_key"], string(h.Value))
				case "schema_version":
					require.Equal(t, "pachca.audit.v1", string(h.Value))
				case "workspace":
					require.Equal(t, "acme", string(h.Value))
				}
			}
			require.Len(t, r.Headers, 3)
			got[string(r.Key)] = exporttest.Line{Dir: "dt=" + fields["created_at"].(string)[:10], Fields: fields}
		}
		exporttest.Compare(t, want, got, "acme")
	})

	t.Run("unreachable broker", func(t *testing.T) {
		cfg := testConfig(t, base)
		cfg.Sinks = []config.Sink{kafkaSink([]string{"127.0.0.1:1"}, "audit")}
		sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: from, To: to}, false)
		require.ErrorContains(t, err, "kafka")
		require.Empty(t, sum.Days)
	})

	t.Run("broker restarted mid-run", func(t *testing.T) {
		// Within delivery_timeout: the run waits for it and succeeds,
		// every event in the topic (was: the run failed once
		// max_attempts were spent).
		dir := t.TempDir()
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "audit"), kfake.DataDir(dir))
		require.NoError(t, err)
		addrs := c.ListenAddrs()
		stop := afterProduce(c, 2)
		restarted := make(chan *kfake.Cluster, 1)
		go func() {
			<-stop
			c.Close()
			time.Sleep(2 * time.Second) // longer than max_attempts last
			c2, err := kafkatest.Restart(addrs[0], dir)
			if err != nil {
				t.Error(err)
			}
			restarted <- c2
		}()
		cfg := testConfig(t, base)
		cfg.Sinks = []config.Sink{kafkaSink(addrs, "audit")}
		k := cfg.Sinks[0].Kafka
		k.BatchSize, k.DeliveryTimeout = 100, time.Minute
		sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: from, To: to}, false)
		c2 := <-restarted
		require.NotNil(t, c2, "the broker restarted on its port")
		defer c2.Close()
		require.NoError(t, err)
		require.Len(t, sum.Days, 2)
		ids := map[string]bool{}
		for _, r := range kafkatest.Consume(t, c2.ListenAddrs(), "audit") {
			ids[string(r.Key)] = true
		}
		for _, ev := range want {
			require.True(t, ids[ev.ID], "event %s lost", ev.ID)
		}
	})

	t.Run("broker stopped mid-run, then rerun", func(t *testing.T) {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "audit"))
		require.NoError(t, err)
		addrs := c.ListenAddrs()
		// Stop the broker after its second produce request: part of the
		// first day is in the topic, the rest is not.
		stop := afterProduce(c, 2)
		var wg sync.WaitGroup
		wg.Go(func() { <-stop; c.Close() })
		cfg := testConfig(t, base)
		cfg.Sinks = []config.Sink{kafkaSink(addrs, "audit")}
		k := cfg.Sinks[0].Kafka
		k.BatchSize = 100 // many produce requests per day
		sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: from, To: to}, false)
		wg.Wait()
		require.ErrorContains(t, err, "kafka")
		require.Empty(t, sum.Days, "the day stays unexported")

		c2, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "audit"), kfake.Ports(portOf(t, addrs[0])))
		require.NoError(t, err)
		defer c2.Close()
		_, err = pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: from, To: to}, false)
		require.NoError(t, err)
		ids := map[string]bool{}
		for _, r := range kafkatest.Consume(t, c2.ListenAddrs(), "audit") {
			ids[string(r.Key)] = true
		}
		for _, ev := range want {
			require.True(t, ids[ev.ID], "event %s lost", ev.ID)
		}
	})
}

// TestKafkaHungInterruptedRun: a run stopped (SIGTERM) while the broker
// leaves its produce request unanswered returns within
// InterruptedCloseTimeout, the day unexported (was: it waited
// ShutdownTimeout, 30 s, in silence for messages of a day it would not
// record, and a pod's default grace of 30 s ended in SIGKILL: no summary,
// no metrics file).
func TestKafkaHungInterruptedRun(t *testing.T) {
	t.Parallel()
	_, base := startSim(t, func(c *simulator.Config) {
		c.Events, c.From, c.To = 300, day0(), day0().AddDate(0, 0, 1)
	})
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "audit"))
	require.NoError(t, err)
	defer c.Close()
	hung := make(chan struct{})
	var once sync.Once
	var released atomic.Bool
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		if released.Load() {
			return nil, nil, false
		}
		c.KeepControl()
		once.Do(func() { close(hung) })
		return nil, nil, true // never answered
	})
	cfg := testConfig(t, base)
	cfg.Sinks = []config.Sink{kafkaSink(c.ListenAddrs(), "audit")}
	// The producer would go on retrying past ShutdownTimeout.
	cfg.Sinks[0].Kafka.WriteTimeout, cfg.Sinks[0].Kafka.MaxAttempts = 2*time.Second, 30
	ctx, cancel := context.WithCancel(t.Context())
	type result struct {
		sum *pipeline.Summary
		err error
	}
	done := make(chan result, 1)
	go func() {
		sum, err := pipeline.Run(ctx, pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: day0(), To: day0().AddDate(0, 0, 1)}, false)
		done <- result{sum, err}
	}()
	select {
	case <-hung:
	case <-time.After(15 * time.Second):
		t.Fatal("timed out waiting for a produce request")
	}
	cancel()
	select {
	case r := <-done:
		require.ErrorIs(t, r.err, context.Canceled)
		require.Empty(t, r.sum.Days, "the day stays unexported")
	case <-time.After(pipeline.ShutdownTimeout / 2):
		t.Fatalf("the interrupted run still waits for the hung broker after %s", pipeline.ShutdownTimeout/2)
	}
	// kafka-go retries in the background until its attempts succeed: let
	// it through, so that it ends before the test does.
	released.Store(true)
	require.Eventually(t, func() bool { return len(kafkatest.Consume(t, c.ListenAddrs(), "audit")) > 0 },
		30*time.Second, 100*time.Millisecond, "the producer's retry")
}

// afterProduce is closed once c has taken n produce requests.
func afterProduce(c *kfake.Cluster, n int32) <-chan struct{} {
	var produced atomic.Int32
	done := make(chan struct{})
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if produced.Add(1) == n {
			close(done)
		}
		return nil, nil, false
	})
	return done
}

func portOf(t *testing.T, addr string) int {
	_, p, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	n, err := strconv.Atoi(p)
	require.NoError(t, err)
	return n
}
