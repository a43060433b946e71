package split_test

import (
	"bufio"
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/ndjson"
	"github.com/pachca-export/pachca-export/sinks/parquetfmt"
	"github.com/pachca-export/pachca-export/sinks/split"
	"github.com/pachca-export/pachca-export/testkit/ocsfschema"
	"github.com/pachca-export/pachca-export/testkit/ocsftest"
	"github.com/pachca-export/pachca-export/transform"
	"github.com/pachca-export/pachca-export/transform/ocsf"
)

var day = time.Date(2025, 5, 16, 0, 0, 0, 0, time.UTC)

func partition() sinks.Partition { return sinks.NewPartition(day, day, day.Add(24*time.Hour), "run-1") }

func byClass(r *transform.Record) int32 { return ocsf.ClassOf(r.EventKey) }

func writeAll(t *testing.T, enc sinks.Encoder, recs []transform.Record) {
	t.Helper()
	for i := 0; i < len(recs); i += 333 {
		require.NoError(t, enc.Write(recs[i:min(i+333, len(recs))]))
	}
}

// TestSplitByClass: each class gets exactly its records, in the order
// written; nothing is lost or doubled; ClassOf agrees with Map.
func TestSplitByClass(t *testing.T) {
	recs := append(ocsftest.Records(t), ocsftest.Many(t, 2000)...)
	bufs := map[int32]*bytes.Buffer{}
	enc := split.New(byClass, func(class int32) (sinks.Encoder, error) {
		bufs[class] = &bytes.Buffer{}
		return ndjson.NewOCSFEncoder(bufs[class], "")
	})
	writeAll(t, enc, recs)
	require.NoError(t, enc.Close())
	require.NoError(t, enc.Close(), "second Close")
	require.Error(t, enc.Write(recs[:1]), "Write after Close")

	want := map[int32][]string{}
	var order []int32
	for i := range recs {
		c := ocsf.Map(&recs[i]).ClassUID
		require.Equal(t, c, ocsf.ClassOf(recs[i].EventKey), recs[i].EventKey)
		if want[c] == nil {
			order = append(order, c)
		}
		want[c] = append(want[c], recs[i].ID)
	}
	require.Equal(t, order, enc.Keys())
	require.Len(t, bufs, len(ocsf.Classes()), "the records cover every class")
	for class, buf := range bufs {
		var ids []string
		sc := bufio.NewScanner(buf)
		for sc.Scan() {
			ev, err := ocsfschema.Decode(sc.Bytes())
			require.NoError(t, err)
			require.EqualValues(t, class, mustInt(t, ev["class_uid"]))
			ids = append(ids, ev["metadata"].(map[string]any)["uid"].(string))
		}
		require.Equal(t, want[class], ids, "class %d", class)
	}
}

// TestSplitParquetPerClass: one-class Parquet files accept their records.
func TestSplitParquetPerClass(t *testing.T) {
	recs := ocsftest.Many(t, 3000)
	bufs := map[int32]*bytes.Buffer{}
	enc := split.New(byClass, func(class int32) (sinks.Encoder, error) {
		bufs[class] = &bytes.Buffer{}
		return parquetfmt.NewOCSFEncoder(bufs[class], partition(), "", []int32{class})
	})
	writeAll(t, enc, recs)
	require.NoError(t, enc.Close())
	total := int64(0)
	for _, buf := range bufs {
		rdr, err := file.NewParquetReader(bytes.NewReader(buf.Bytes()))
		require.NoError(t, err)
		total += rdr.NumRows()
		require.NoError(t, rdr.Close())
	}
	require.EqualValues(t, len(recs), total)
}

type fakeEncoder struct {
	closed   int
	closeErr error
}

func (f *fakeEncoder) Write([]transform.Record) error { return nil }
func (f *fakeEncoder) Close() error                   { f.closed++; return f.closeErr }

// TestSplitErrors: a failed open or write is sticky, Close still closes
// every opened encoder, and Close errors are all reported.
func TestSplitErrors(t *testing.T) {
	recs := ocsftest.Records(t)
	opened := map[int32]*fakeEncoder{}
	enc := split.New(byClass, func(class int32) (sinks.Encoder, error) {
		if len(opened) == 2 {
			return nil, errors.New("no space for a third file")
		}
		opened[class] = &fakeEncoder{}
		return opened[class], nil
	})
	err := enc.Write(recs)
	require.ErrorContains(t, err, "no space for a third file")
	require.Equal(t, err, enc.Write(recs[:1]))
	require.Error(t, enc.Close())
	require.Len(t, opened, 2)
	for _, f := range opened {
		require.Equal(t, 1, f.closed)
	}

	opened = map[int32]*fakeEncoder{}
	enc = split.New(byClass, func(class int32) (sinks.Encoder, error) {
		opened[class] = &fakeEncoder{closeErr: errors.New("disk full")}
		return opened[class], nil
	})
	require.NoError(t, enc.Write(recs))
	err = enc.Close()
	require.ErrorContains(t, err, "disk full")
	for _, f := range opened {
		require.Equal(t, 1, f.closed, "every encoder closed despite the failures")
	}
	require.Equal(t, err, enc.Close(), "second Close")
	for _, f := range opened {
		require.Equal(t, 1, f.closed, "not closed twice")
	}
}

func mustInt(t *testing.T, v any) int64 {
	t.Helper()
	n, err := v.(interface{ Int64() (int64, error) }).Int64()
	require.NoError(t, err)
	return n
}
