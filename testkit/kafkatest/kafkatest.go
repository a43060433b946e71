// Package kafkatest reads back what tests produced to an in-process kfake
// broker, with franz-go's client: a reader independent of the kafka-go
// producer under test.
package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// patience bounds the reading of a topic to its end offsets: on a loaded
// 2-core machine under -race, a fetch took over a second.
const patience = time.Minute

// Consume reads topic from its beginning up to the end offsets its
// partitions have when it is called, and returns the records in the order
// fetched (offset order within each partition); for at most a minute, after
// which it returns what it read (was: until no fetch brought anything for a
// second, which a slow fetch on a loaded machine ended early, the last
// records missing). A topic that does not exist has no records.
func Consume(t testing.TB, brokers []string, topic string) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	left := endOffsets(ctx, t, cl, topic) // partition: the next offset to read up to
	for p, end := range left {
		if end <= 0 {
			delete(left, p)
		}
	}
	var out []*kgo.Record
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return out
		}
		for _, fe := range fs.Errors() {
			require.NoError(t, fe.Err, "fetch %s/%d", fe.Topic, fe.Partition)
		}
		for _, r := range fs.Records() {
			out = append(out, r)
			if end, ok := left[r.Partition]; ok && r.Offset+1 >= end {
				delete(left, r.Partition)
			}
		}
	}
	return out
}

// endOffsets asks the broker for the end offset of each partition of topic
// (none when the topic does not exist).
func endOffsets(ctx context.Context, t testing.TB, cl *kgo.Client, topic string) map[int32]int64 {
	t.Helper()
	meta := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	meta.Topics = append(meta.Topics, mt)
	meta.AllowAutoTopicCreation = false // reading creates nothing
	mresp, err := meta.RequestWith(ctx, cl)
	require.NoError(t, err, "metadata of %s", topic)
	ends := map[int32]int64{}
	if len(mresp.Topics) != 1 || errors.Is(kerr.ErrorForCode(mresp.Topics[0].ErrorCode), kerr.UnknownTopicOrPartition) {
		return ends
	}
	require.NoError(t, kerr.ErrorForCode(mresp.Topics[0].ErrorCode), "metadata of %s", topic)
	lo := kmsg.NewPtrListOffsetsRequest()
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = topic
	for _, p := range mresp.Topics[0].Partitions {
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Partition, lp.Timestamp = p.Partition, -1 // the end
		lt.Partitions = append(lt.Partitions, lp)
	}
	lo.Topics = append(lo.Topics, lt)
	lresp, err := lo.RequestWith(ctx, cl)
	require.NoError(t, err, "end offsets of %s", topic)
	for _, rt := range lresp.Topics {
		for _, rp := range rt.Partitions {
			require.NoError(t, kerr.ErrorForCode(rp.ErrorCode), "end offset of %s/%d", topic, rp.Partition)
			ends[rp.Partition] = rp.Offset
		}
	}
	return ends
}

// Restart starts a one-broker cluster again on the port of addr with the
// data kept in dir (kfake.DataDir), as a broker that restarts comes back.
// The port, just freed, may still be taken for a moment: it tries for up
// to five seconds. It may run outside the test's goroutine.
func Restart(addr, dir string) (*kfake.Cluster, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return nil, err
	}
	for range 50 {
		var c *kfake.Cluster
		if c, err = kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(dir)); err == nil {
			return c, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, fmt.Errorf("the broker did not restart on %s: %w", addr, err)
}
