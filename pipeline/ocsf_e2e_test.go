package pipeline_test

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/parquet-go/parquet-go"
	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/internal/failure"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/shape"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
	"github.com/pachca-export/pachca-export/testkit/miniotest"
	"github.com/pachca-export/pachca-export/testkit/ocsfschema"
	"github.com/pachca-export/pachca-export/transform/ocsf"
	"github.com/pachca-export/pachca-export/verify"
)

// TestOCSFRoundTrip: `run` with an OCSF NDJSON file sink and an OCSF
// Parquet S3 sink in the Security Lake layout on MinIO. Every event of the
// simulator (every key of the OpenAPI document, unknown ones too) is in
// both, once, valid against the OCSF 1.3.0 schema; the S3 keys are exactly
// one object per class and day under its source, the marker and a manifest
// per day outside ext/; an independent Parquet reader reads every object
// back equal to the NDJSON event; verify passes on both sinks. A sink of
// another schema on the NDJSON sink's directory is refused before anything
// is fetched.
func TestOCSFRoundTrip(t *testing.T) {
	m := miniotest.Start(t)
	const bucket = "aws-security-data-lake-test"
	m.CreateBucket(bucket)
	from, to := day0(), day0().AddDate(0, 0, 2)
	sim, base := startSim(t, func(c *simulator.Config) {
		c.Events, c.From, c.To, c.UnknownKeys = 3000, from, to, true
	})
	cfg := testConfig(t, base)
	nd := cfg.Sinks[0].File
	nd.Keys = shape.Keys{Schema: shape.SchemaOCSF}
	cfg.Sinks = append(cfg.Sinks, lakeSink(m, bucket, shape.SecurityLake{}))
	require.NoError(t, cfg.Validate())

	sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: from, To: to}, false)
	require.NoError(t, err)
	want := exporttest.Expected(sim, from, to)
	require.EqualValues(t, len(want), sum.Events)
	schema, err := ocsfschema.Load()
	require.NoError(t, err)

	// The NDJSON sink: one valid event per source event, in its day.
	events := map[string]map[string]any{}
	for _, day := range []time.Time{from, from.AddDate(0, 0, 1)} {
		date := day.Format(time.DateOnly)
		f, err := os.Open(filepath.Join(nd.Dir, "dt="+date, "pachca-audit-"+date+".ndjson.gz"))
		require.NoError(t, err)
		zr, err := gzip.NewReader(f)
		require.NoError(t, err)
		sc := bufio.NewScanner(zr)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			ev, err := ocsfschema.Decode(sc.Bytes())
			require.NoError(t, err)
			require.NoError(t, schema.Validate(ev), sc.Text())
			uid := ev["metadata"].(map[string]any)["uid"].(string)
			require.NotContains(t, events, uid, "event %s twice", uid)
			require.True(t, strings.HasPrefix(ev["time_dt"].(string), date), "event %s in its day", uid)
			events[uid] = ev
		}
		require.NoError(t, sc.Err())
		f.Close()
	}
	require.Len(t, events, len(want))
	keys := map[string]bool{}
	wantKeys := []string{"pachca-export/" + sinks.MarkerName}
	for _, e := range want {
		ev, ok := events[e.ID]
		require.True(t, ok, "event %s (%s) missing", e.ID, e.Key)
		require.Equal(t, e.Key, ev["metadata"].(map[string]any)["event_code"])
		require.Equal(t, json.Number(strconv.FormatInt(e.CreatedAt.UnixMilli(), 10)), ev["time"])
		class := ocsf.ClassOf(e.Key)
		require.Equal(t, json.Number(strconv.Itoa(int(class))), ev["class_uid"], e.Key)
		keys[e.Key] = true
		wantKeys = append(wantKeys, lakeKey(class, e.CreatedAt, m.Region))
	}
	for _, k := range append(simulator.EventKeys(), simulator.UnknownEventKeys()...) {
		require.True(t, keys[k], "no %s event in the output", k)
	}
	for _, day := range []time.Time{from, from.AddDate(0, 0, 1)} {
		wantKeys = append(wantKeys, "pachca-export/dt="+day.Format(time.DateOnly)+"/"+sinks.ManifestName)
	}
	slices.Sort(wantKeys)
	wantKeys = slices.Compact(wantKeys)

	// The Security Lake objects, read back by parquet-go.
	dir, got := download(t, m.Client(), bucket, "")
	require.Equal(t, wantKeys, got, "the keys in MinIO")
	rows := 0
	for _, key := range got {
		if !strings.HasPrefix(key, "ext/") {
			continue
		}
		class := classOfKey(t, key)
		last := int64(0)
		for _, row := range readParquetGo(t, filepath.Join(dir, key)) {
			ev := jsonForm("", row).(map[string]any)
			at, err := ev["time"].(json.Number).Int64()
			require.NoError(t, err)
			require.GreaterOrEqual(t, at, last, "%s: records sorted by time (one stream)", key)
			last = at
			require.NoError(t, schema.Validate(ev), "%s: %v", key, ev)
			require.Equal(t, json.Number(strconv.Itoa(int(class))), ev["class_uid"], "one class per object: %s", key)
			uid := ev["metadata"].(map[string]any)["uid"].(string)
			require.Equal(t, events[uid], ocsfschema.LikeJSON(events[uid], ev), "%s: event %s as NDJSON has it", key, uid)
			rows++
		}
	}
	require.Equal(t, len(want), rows, "every event in exactly one object")
	head, err := m.Client().HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(got[0])})
	require.NoError(t, err)
	require.Equal(t, ocsf.SchemaVersion, head.Metadata["schema-version"])

	rep, err := verify.Run(t.Context(), verify.Options{Config: cfg, Logger: testLogger(t)})
	require.NoError(t, err)
	require.False(t, rep.Failed(), "%+v", rep.Lines)
	require.Len(t, rep.Lines, 4, "two days of two sinks: %+v", rep.Lines)
	for _, l := range rep.Lines {
		require.Equal(t, verify.OK, l.Status, "%+v", l)
	}

	// An object in a source's day that the manifest does not list fails
	// that day (verify lists every source's directory of the day).
	stray := strings.Replace(got[0], "pachca-audit-", "stray-", 1)
	_, err = m.Client().PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(stray), Body: strings.NewReader("x")})
	require.NoError(t, err)
	rep, err = verify.Run(t.Context(), verify.Options{Config: cfg, Logger: testLogger(t)})
	require.NoError(t, err)
	require.True(t, rep.Failed())
	var failed []string
	for _, l := range rep.Lines {
		if l.Status == verify.Fail {
			failed = append(failed, l.Detail)
		}
	}
	require.Equal(t, []string{stray + " is not in the manifest"}, failed)

	// The NDJSON sink's directory holds OCSF: a schema v1 sink there is refused.
	v1 := *cfg
	v1.Sinks = []config.Sink{{Type: "ndjson", File: &config.FileSink{Dir: nd.Dir, Compression: nd.Compression}}}
	before := sim.Stats().Requests
	_, err = pipeline.Run(t.Context(), pipeline.Options{Config: &v1, Logger: testLogger(t)}, pipeline.Range{From: from, To: to}, false)
	require.Error(t, err)
	require.True(t, failure.IsUsage(err), "a usage error (exit 2): %v", err)
	require.Contains(t, err.Error(), `schema: "pachca.audit.v1" here, "ocsf.1.3.0" there`)
	require.Equal(t, before, sim.Stats().Requests, "refused before fetching")
}

// lakeKey is the key of the object of class on the day of at.
func lakeKey(class int32, at time.Time, region string) string {
	src := shape.SecurityLake{}.SourceOf()[class]
	day := at.UTC()
	return "ext/" + src + "/region=" + region + "/accountId=123456789012/eventDay=" + day.Format("20060102") +
		"/pachca-audit-" + day.Format(time.DateOnly) + ".parquet"
}

// classOfKey is the class whose default source a key's ext/<source>/ names.
func classOfKey(t *testing.T, key string) int32 {
	t.Helper()
	src := strings.Split(key, "/")[1]
	for class, s := range (shape.SecurityLake{}).SourceOf() {
		if s == src {
			return class
		}
	}
	t.Fatalf("%s: no class has source %s", key, src)
	return -1
}

// readParquetGo reads every row of a Parquet file with parquet-go, which
// shares no code with the Arrow writer.
func readParquetGo(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	st, err := f.Stat()
	require.NoError(t, err)
	pf, err := parquet.OpenFile(f, st.Size())
	require.NoError(t, err)
	r := parquet.NewGenericReader[map[string]any](f, pf.Schema())
	defer r.Close()
	var out []map[string]any
	buf := make([]map[string]any, 128)
	for {
		for i := range buf {
			buf[i] = map[string]any{}
		}
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			break
		}
	}
	require.EqualValues(t, pf.NumRows(), len(out), path)
	return out
}

// jsonForm turns a parquet-go row into the form ocsfschema.Decode gives a
// JSON event: nulls dropped, integers as json.Number, time_dt (a
// TIMESTAMP(MILLIS) read as milliseconds) as OCSF's datetime text.
func jsonForm(name string, v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			if b, ok := e.(*[]byte); ok { // parquet-go's reading of a map's values
				e = string(*b)
			}
			if e != nil {
				out[k] = jsonForm(k, e)
			}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonForm("", e)
		}
		return out
	case int32:
		return json.Number(strconv.FormatInt(int64(x), 10))
	case int64:
		if name == "time_dt" {
			return time.UnixMilli(x).UTC().Format("2006-01-02T15:04:05.000Z")
		}
		return json.Number(strconv.FormatInt(x, 10))
	}
	return v
}
