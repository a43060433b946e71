// Package sinktest is the conformance suite every sink runs (files, S3 on
// MinIO, Kafka on kfake, stdout): round trip, empty partition, many batches,
// abort twice, cancelled context, rerun of a partition, close twice. Sinks
// that replace a partition (files, objects) must show nothing of an aborted
// or cancelled one; streams (Kafka, stdout) cannot take back what they sent
// and are at least once instead.
package sinktest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/ndjson"
	"github.com/pachca-export/pachca-export/transform"
)

// Harness adapts one sink to the suite.
type Harness struct {
	// New returns a fresh sink; it is closed by the suite.
	New func(t *testing.T) sinks.Sink
	// Read returns the ids visible for partition p in delivery order, or nil
	// when nothing of p is visible.
	Read func(t *testing.T, s sinks.Sink, p sinks.Partition) []string
	// Replaces is true for sinks whose rerun of a partition replaces it
	// (files, objects); false for streams (at least once).
	Replaces bool
	// After, when set, runs at the end of every case with the case's sink,
	// for checks of the sink's own (no temporary file left, no upload).
	After func(t *testing.T, s sinks.Sink)
}

// IDs decodes the ids of a file or object in delivery order, by the
// extension of name: NDJSON (.ndjson, .ndjson.gz, .ndjson.zst) or Parquet.
func IDs(t *testing.T, name string, body []byte) []string {
	t.Helper()
	ids := []string{}
	if strings.HasSuffix(name, ".parquet") {
		rdr, err := file.NewParquetReader(bytes.NewReader(body))
		require.NoError(t, err, name)
		defer rdr.Close()
		fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
		require.NoError(t, err, name)
		tbl, err := fr.ReadTable(t.Context())
		require.NoError(t, err, name)
		defer tbl.Release()
		require.Equal(t, "id", tbl.Schema().Field(0).Name)
		for _, chunk := range tbl.Column(0).Data().Chunks() {
			s := chunk.(*array.String)
			for i := range s.Len() {
				ids = append(ids, s.Value(i))
			}
		}
		return ids
	}
	r, err := ndjson.Decompress(name, bytes.NewReader(body))
	require.NoError(t, err, name)
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var m struct{ ID string }
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), name)
		ids = append(ids, m.ID)
	}
	require.NoError(t, sc.Err(), name)
	return ids
}

// Records makes n valid records on day, a millisecond apart.
func Records(day time.Time, n int) []transform.Record {
	out := make([]transform.Record, n)
	for i := range out {
		r := &out[i]
		r.ID = fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		r.CreatedAt = day.Add(time.Duration(i) * time.Millisecond).UnixMilli()
		r.EventKey, r.EventCategory = "user_login", "auth"
		r.ActorID, r.ActorType, r.EntityID, r.EntityType = "1", "User", "1", "User"
		r.DetailsJSON, r.Workspace = "{}", "acme"
		if i%3 == 0 {
			r.IPAddress = transform.NullString{Valid: true, Str: "10.0.0.1"}
			r.Details[transform.DScopes] = transform.Value{Valid: true, List: []string{}}
		}
	}
	return out
}

func ids(recs []transform.Record) []string {
	out := make([]string, len(recs))
	for i := range recs {
		out[i] = recs[i].ID
	}
	return out
}

// Partition is a full-day partition of 2026-11-01 for tests.
func Partition() sinks.Partition {
	d := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	return sinks.NewPartition(d, d, d.Add(24*time.Hour), "run-1")
}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	part := func(d time.Time) sinks.Partition {
		return sinks.NewPartition(d, time.Time{}, d.Add(48*time.Hour), "run-1")
	}
	deliver := func(t *testing.T, s sinks.Sink, p sinks.Partition, batches ...[]transform.Record) sinks.Result {
		w, err := s.Open(t.Context(), p)
		require.NoError(t, err)
		for _, b := range batches {
			require.NoError(t, w.Write(t.Context(), b))
		}
		res, err := w.Commit(t.Context())
		require.NoError(t, err)
		require.NoError(t, w.Abort(t.Context()), "abort after commit is a no-op")
		return res
	}
	newSink := func(t *testing.T) sinks.Sink {
		s := h.New(t)
		t.Cleanup(func() {
			require.NoError(t, s.Close(context.Background()))
			require.NoError(t, s.Close(context.Background()), "close twice is safe")
			if h.After != nil {
				h.After(t, s)
			}
		})
		return s
	}

	t.Run("round trip in many batches", func(t *testing.T) {
		s := newSink(t)
		recs := Records(day, 2500)
		res := deliver(t, s, part(day), recs[:1], recs[1:1000], recs[1000:])
		require.EqualValues(t, 2500, res.Records)
		require.Equal(t, ids(recs), h.Read(t, s, part(day)))
	})
	t.Run("empty partition", func(t *testing.T) {
		s := newSink(t)
		res := deliver(t, s, part(day))
		require.Zero(t, res.Records)
		got := h.Read(t, s, part(day))
		require.Empty(t, got)
	})
	t.Run("abort leaves nothing and is safe twice", func(t *testing.T) {
		s := newSink(t)
		w, err := s.Open(t.Context(), part(day))
		require.NoError(t, err)
		require.NoError(t, w.Write(t.Context(), Records(day, 10)))
		require.NoError(t, w.Abort(t.Context()))
		require.NoError(t, w.Abort(t.Context()))
		_, err = w.Commit(t.Context())
		require.Error(t, err, "commit after abort")
		if h.Replaces {
			require.Nil(t, h.Read(t, s, part(day)))
		}
	})
	t.Run("cancelled context leaves nothing", func(t *testing.T) {
		s := newSink(t)
		ctx, cancel := context.WithCancel(t.Context())
		w, err := s.Open(ctx, part(day))
		require.NoError(t, err)
		require.NoError(t, w.Write(ctx, Records(day, 10)))
		cancel()
		_, err = w.Commit(ctx)
		require.Error(t, err)
		require.NoError(t, w.Abort(t.Context()))
		if h.Replaces {
			require.Nil(t, h.Read(t, s, part(day)))
		}
	})
	t.Run("rerun of a partition", func(t *testing.T) {
		s := newSink(t)
		recs := Records(day, 100)
		deliver(t, s, part(day), recs)
		deliver(t, s, part(day), recs[:60])
		got := h.Read(t, s, part(day))
		if h.Replaces {
			require.Equal(t, ids(recs[:60]), got, "the rerun replaced the partition")
		} else {
			require.Subset(t, got, ids(recs), "at least once")
		}
	})
}
