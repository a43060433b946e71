package s3sink_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/ndjson"
	"github.com/pachca-export/pachca-export/sinks/s3sink"
	"github.com/pachca-export/pachca-export/testkit/miniotest"
	"github.com/pachca-export/pachca-export/transform"
)

var day = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// config is a sink configuration for srv with short timeouts, so that fault
// tests end quickly.
func config(t *testing.T, srv *miniotest.Server, bucket, format, compression string) s3sink.Config {
	c := s3sink.Config{
		Bucket:          bucket,
		Prefix:          "audit",
		Format:          format,
		Compression:     compression,
		Region:          srv.Region,
		Endpoint:        srv.Endpoint,
		ForcePathStyle:  true,
		AccessKeyID:     srv.AccessKey,
		SecretAccessKey: srv.SecretKey,
		MaxAttempts:     2,
		Timeout:         10 * time.Second,
		TempDir:         t.TempDir(),
	}
	c.SetDefaults()
	require.NoError(t, c.Validate())
	return c
}

// sinkAt is a sink of bucket b-1 at endpoint, a server that is not the
// tests' MinIO (one that fails, refuses or is not there), trying each
// request attempts times.
func sinkAt(t *testing.T, endpoint string, attempts int) *s3sink.Sink {
	t.Helper()
	return newSink(t, s3sink.Config{
		Bucket: "b-1", Format: "ndjson", Compression: "gzip", Region: "us-east-1", Endpoint: endpoint, ForcePathStyle: true,
		AccessKeyID: "k", SecretAccessKey: "s", MaxAttempts: attempts, TempDir: t.TempDir(),
	})
}

func newSink(t *testing.T, c s3sink.Config) *s3sink.Sink {
	t.Helper()
	f, err := ndjson.Format(c.Compression)
	require.NoError(t, err)
	s, err := s3sink.New(t.Context(), c, f)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close(context.Background())) })
	return s
}

var templates = []string{
	`{"id":"%s","created_at":"%s","event_key":"user_login","entity_id":"%d","entity_type":"User","actor_id":"%d","actor_type":"User","details":{},"ip_address":"10.0.0.%d","user_agent":"Mozilla/5.0 \"quoted\" \u2028"}`,
	`{"id":"%s","created_at":"%s","event_key":"user_chat_join","entity_id":"%d","entity_type":"Chat","actor_id":"%d","actor_type":"User","details":{"inviter_id":%d},"ip_address":null,"user_agent":null}`,
	`{"id":"%s","created_at":"%s","event_key":"access_token_created","entity_id":"%d","entity_type":"AccessToken","actor_id":"%d","actor_type":"User","details":{"scopes":["messages:read","chats:read","n%d"]},"ip_address":"192.168.1.1","user_agent":"curl/8"}`,
	`{"id":"%s","created_at":"%s","event_key":"some_future_key","entity_id":"%d","entity_type":"Thing","actor_id":"%d","actor_type":"Bot","details":{"new_field":{"x":[%d,12345678901234567890]}},"ip_address":"::1","user_agent":""}`,
}

// records returns n varied records of the partition's day, tagged so that two
// calls with different tags differ.
func records(t *testing.T, p sinks.Partition, n int, tag string) []transform.Record {
	t.Helper()
	recs := make([]transform.Record, n)
	step := p.To.Sub(p.From) / time.Duration(n+1)
	for i := range recs {
		at := p.From.Add(step * time.Duration(i)).Format("2006-01-02T15:04:05.000Z")
		raw := fmt.Sprintf(templates[i%len(templates)], fmt.Sprintf("%s-%06d", tag, i), at, i, i*7, i%250)
		r, err := transform.Normalize([]byte(raw), "acme")
		require.NoError(t, err, raw)
		recs[i] = r
	}
	return recs
}

// commit writes recs through a new writer in batches of 100 and commits.
func commit(t *testing.T, s *s3sink.Sink, p sinks.Partition, recs []transform.Record) sinks.Result {
	t.Helper()
	res, err := tryCommit(t.Context(), s, p, recs)
	require.NoError(t, err)
	return res
}

// tryCommit is commit for goroutines other than the test's.
func tryCommit(ctx context.Context, s *s3sink.Sink, p sinks.Partition, recs []transform.Record) (sinks.Result, error) {
	w, err := s.Open(ctx, p)
	if err != nil {
		return sinks.Result{}, err
	}
	for len(recs) > 0 {
		n := min(100, len(recs))
		if err := w.Write(ctx, recs[:n]); err != nil {
			return sinks.Result{}, errors.Join(err, w.Abort(context.Background()))
		}
		recs = recs[n:]
	}
	return w.Commit(ctx)
}

// keys lists every object of the bucket.
// restrictedSink is an NDJSON sink on bucket with credentials of srv that
// policy (an IAM policy document) restricts, given as AWS_* variables.
func restrictedSink(t *testing.T, srv *miniotest.Server, bucket, policy string) *s3sink.Sink {
	creds := srv.Restricted(policy)
	t.Setenv("AWS_ACCESS_KEY_ID", creds.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", creds.SecretAccessKey)
	t.Setenv("AWS_SESSION_TOKEN", creds.SessionToken)
	c := config(t, srv, bucket, "ndjson", "zstd")
	c.AccessKeyID, c.SecretAccessKey = "", "" // the environment's
	return newSink(t, c)
}

func keys(t *testing.T, srv *miniotest.Server, bucket string) []string {
	t.Helper()
	out, err := srv.Client().ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	require.NoError(t, err)
	ks := []string{}
	for _, o := range out.Contents {
		ks = append(ks, aws.ToString(o.Key))
	}
	return ks
}

func get(t *testing.T, srv *miniotest.Server, bucket, key string) ([]byte, map[string]string) {
	t.Helper()
	out, err := srv.Client().GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	require.NoError(t, err, key)
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	require.NoError(t, err)
	return b, out.Metadata
}

// requireNDJSON decodes an NDJSON object (compressed by its extension) and
// compares it, line by line, with ndjson.AppendRecord of recs.
func requireNDJSON(t *testing.T, key string, body []byte, recs []transform.Record) {
	t.Helper()
	r, err := ndjson.Decompress(key, bytes.NewReader(body))
	require.NoError(t, err)
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	var got, want []map[string]any
	for sc.Scan() {
		got = append(got, decode(t, sc.Bytes()))
	}
	require.NoError(t, sc.Err())
	for i := range recs {
		want = append(want, decode(t, ndjson.AppendRecord(nil, &recs[i])))
	}
	require.Len(t, got, len(want))
	require.Equal(t, want, got)
}

func decode(t *testing.T, line []byte) map[string]any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(line))
	d.UseNumber()
	var m map[string]any
	require.NoError(t, d.Decode(&m), string(line))
	return m
}

func manifest(t *testing.T, srv *miniotest.Server, bucket, key string) sinks.Manifest {
	t.Helper()
	b, _ := get(t, srv, bucket, key)
	var m sinks.Manifest
	require.NoError(t, json.Unmarshal(b, &m))
	return m
}

// requireNoTemp checks that the sink left nothing in its temporary directory.
func requireNoTemp(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries)
}

// localNDJSON is the uncompressed NDJSON encoding of recs.
func localNDJSON(t *testing.T, recs []transform.Record) []byte {
	t.Helper()
	var b []byte
	for i := range recs {
		b = ndjson.AppendRecord(b, &recs[i])
		b = append(b, '\n')
	}
	return b
}
