package s3sink_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/internal/failure"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/ndjson"
	"github.com/pachca-export/pachca-export/sinks/s3sink"
	"github.com/pachca-export/pachca-export/testkit/miniotest"
	"github.com/pachca-export/pachca-export/transform"
)

// TestSink runs the cases that share one MinIO server; each uses its own bucket.
func TestSink(t *testing.T) {
	srv := miniotest.Start(t)

	t.Run("round trip", func(t *testing.T) {
		for _, comp := range []string{"none", "gzip", "zstd"} {
			t.Run(comp, func(t *testing.T) {
				bucket := "rt-" + comp
				srv.CreateBucket(bucket)
				c := config(t, srv, bucket, "ndjson", comp)
				s := newSink(t, c)
				require.Equal(t, "s3 s3://"+bucket+"/audit/", s.Name())

				full := sinks.NewPartition(day, day, day.Add(48*time.Hour), "run-1")
				part := sinks.NewPartition(day.Add(24*time.Hour), day, day.Add(36*time.Hour), "run-1")
				recs1, recs2 := records(t, full, 500, "a"), records(t, part, 300, "b")
				res1 := commit(t, s, full, recs1)
				res2 := commit(t, s, part, recs2)

				f, _ := ndjson.Format(comp)
				key1 := "audit/dt=2026-11-01/pachca-audit-2026-11-01" + f.Ext
				key2 := "audit/dt=2026-11-02/pachca-audit-20261102T000000.000Z-20261102T120000.000Z" + f.Ext
				require.Equal(t, []string{key1}, res1.Files)
				require.Equal(t, int64(500), res1.Records)
				require.Equal(t, []string{key2}, res2.Files)
				require.Equal(t, []string{
					"audit/dt=2026-11-01/_manifest.json", key1,
					"audit/dt=2026-11-02/_manifest.json", key2,
				}, keys(t, srv, bucket))

				body, meta := get(t, srv, bucket, key1)
				requireNDJSON(t, key1, body, recs1)
				sum := sha256.Sum256(body)
				require.Equal(t, int64(len(body)), res1.Bytes)
				require.Equal(t, map[string]string{
					"schema-version": transform.SchemaVersion, "run-id": "run-1",
					"sha256": hex.EncodeToString(sum[:]), "records": "500",
				}, meta)
				body2, _ := get(t, srv, bucket, key2)
				requireNDJSON(t, key2, body2, recs2)

				m := manifest(t, srv, bucket, "audit/dt=2026-11-01/_manifest.json")
				require.Equal(t, transform.SchemaVersion, m.SchemaVersion)
				require.Equal(t, "2026-11-01", m.Day)
				require.Equal(t, int64(500), m.Records)
				require.Len(t, m.Files, 1)
				require.Equal(t, "pachca-audit-2026-11-01"+f.Ext, m.Files[0].Name)
				require.Equal(t, hex.EncodeToString(sum[:]), m.Files[0].SHA256)
				require.Equal(t, int64(500), m.Files[0].Records)
				require.Equal(t, int64(len(body)), m.Files[0].Bytes)
				require.Equal(t, "run-1", m.Files[0].RunID)
				require.True(t, m.Files[0].From.Equal(day) && m.Files[0].To.Equal(day.Add(24*time.Hour)))
				require.Equal(t, "SHA256:"+base64.StdEncoding.EncodeToString(sum[:]), m.Files[0].S3Checksum)
				require.Equal(t, m.Files[0].S3Checksum, storedChecksum(t, srv, bucket, key1), "S3 keeps the checksum it verified")

				// A rerun of the same partition replaces the object and its entry.
				full.RunID = "run-2"
				recs3 := records(t, full, 420, "c")
				commit(t, s, full, recs3)
				require.Len(t, keys(t, srv, bucket), 4)
				body, _ = get(t, srv, bucket, key1)
				requireNDJSON(t, key1, body, recs3)
				sum = sha256.Sum256(body)
				m = manifest(t, srv, bucket, "audit/dt=2026-11-01/_manifest.json")
				require.Len(t, m.Files, 1)
				require.Equal(t, int64(420), m.Records)
				require.Equal(t, hex.EncodeToString(sum[:]), m.Files[0].SHA256)
				require.Equal(t, "run-2", m.Files[0].RunID)
				requireNoTemp(t, c.TempDir)
			})
		}
	})

	t.Run("multipart", func(t *testing.T) {
		srv.CreateBucket("multipart")
		c := config(t, srv, "multipart", "ndjson", "none")
		c.PartSize = s3sink.MinPartSize
		s := newSink(t, c)
		p := sinks.NewPartition(day, day, day.Add(24*time.Hour), "run-mp")
		recs := records(t, p, 15000, "mp") // about 6 MiB: two parts
		res := commit(t, s, p, recs)
		require.Greater(t, res.Bytes, s3sink.MinPartSize)

		// Byte for byte what the encoder writes (the NDJSON decoding of the
		// round trip is too slow at this size under -race).
		body, meta := get(t, srv, "multipart", res.Files[0])
		want := localNDJSON(t, recs)
		require.Equal(t, len(want), len(body))
		require.True(t, bytes.Equal(want, body), "the object differs from the local encoding")
		sum := sha256.Sum256(body)
		require.Equal(t, hex.EncodeToString(sum[:]), meta["sha256"])
		m := manifest(t, srv, "multipart", "audit/dt=2026-11-01/_manifest.json")
		require.Equal(t, hex.EncodeToString(sum[:]), m.Files[0].SHA256)
		require.Regexp(t, `^SHA256-COMPOSITE:[A-Za-z0-9+/]{43}=-2$`, m.Files[0].S3Checksum)
		require.Equal(t, m.Files[0].S3Checksum, storedChecksum(t, srv, "multipart", res.Files[0]), "S3 keeps the checksum it verified")
		requireNoUploads(t, srv, "multipart", res.Files[0])
		requireNoTemp(t, c.TempDir)
	})

	t.Run("concurrent writers share the manifest", func(t *testing.T) {
		// Sinks of several formats, and several ranges of one day, commit at
		// once: the conditional manifest writes keep every entry.
		srv.CreateBucket("shared")
		var wg sync.WaitGroup
		for i := range 9 {
			comp := []string{"none", "gzip", "zstd"}[i%3]
			from := day.Add(time.Duration(i/3) * 8 * time.Hour)
			p := sinks.NewPartition(day, from, from.Add(8*time.Hour), "run-sh")
			recs := records(t, p, 50, "sh")
			s := newSink(t, config(t, srv, "shared", "ndjson", comp))
			wg.Go(func() {
				_, err := tryCommit(t.Context(), s, p, recs)
				assert.NoError(t, err)
			})
		}
		wg.Wait()
		m := manifest(t, srv, "shared", "audit/dt=2026-11-01/_manifest.json")
		require.Len(t, m.Files, 9)
		require.Equal(t, int64(450), m.Records)
		require.Len(t, keys(t, srv, "shared"), 10)
	})

	t.Run("missing bucket", func(t *testing.T) {
		s := newSink(t, config(t, srv, "no-such-bucket", "ndjson", "none"))
		require.EqualError(t, s.Check(t.Context()), `s3: bucket "no-such-bucket" does not exist`)

		p := sinks.NewPartition(day, day, day.Add(24*time.Hour), "run-x")
		w, err := s.Open(t.Context(), p)
		require.NoError(t, err)
		require.NoError(t, w.Write(t.Context(), records(t, p, 10, "x")))
		_, err = w.Commit(t.Context())
		require.EqualError(t, err, `s3: upload s3://no-such-bucket/audit/dt=2026-11-01/pachca-audit-2026-11-01.ndjson: bucket "no-such-bucket" does not exist`)
		require.NoError(t, w.Abort(context.Background()))
	})

	t.Run("wrong credentials", func(t *testing.T) {
		srv.CreateBucket("creds")
		c := config(t, srv, "creds", "ndjson", "none")
		c.SecretAccessKey = "wrong-secret"
		s := newSink(t, c)
		err := s.Check(t.Context())
		require.Error(t, err)
		require.True(t, strings.HasPrefix(err.Error(), `s3: access denied to bucket "creds" (check credentials)`), err.Error())

		p := sinks.NewPartition(day, day, day.Add(24*time.Hour), "run-x")
		w, err := s.Open(t.Context(), p)
		require.NoError(t, err)
		_, err = w.Commit(t.Context())
		require.Error(t, err)
		require.True(t, strings.HasPrefix(err.Error(),
			`s3: upload s3://creds/audit/dt=2026-11-01/pachca-audit-2026-11-01.ndjson: access denied to bucket "creds" (check credentials): SignatureDoesNotMatch`), err.Error())
		require.Empty(t, keys(t, srv, "creds"))
	})

	t.Run("days are day directories only", func(t *testing.T) {
		srv.CreateBucket("days")
		for _, key := range []string{"audit/dt=2026-11-02/a", "audit/dt=2026-11-01/a", "audit/dt=garbage/a",
			"audit/dt=2026-13-01/a", "audit/dt=2026-11-03x/a", "audit/other/a", "elsewhere/dt=2026-11-04/a"} {
			_, err := srv.Client().PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String("days"), Key: aws.String(key), Body: strings.NewReader("x")})
			require.NoError(t, err)
		}
		days, err := newSink(t, config(t, srv, "days", "ndjson", "none")).Root().Days(t.Context(), "")
		require.NoError(t, err)
		require.Equal(t, []string{"dt=2026-11-01", "dt=2026-11-02"}, days)
	})

	t.Run("check", func(t *testing.T) {
		srv.CreateBucket("check")
		s := newSink(t, config(t, srv, "check", "ndjson", "none"))
		require.NoError(t, s.Check(t.Context()))
		require.Empty(t, keys(t, srv, "check"), "the probe object is deleted")
	})

	t.Run("cancelled multipart upload", func(t *testing.T) {
		srv.CreateBucket("cancel-mp")
		c := config(t, srv, "cancel-mp", "ndjson", "none")
		c.PartSize = s3sink.MinPartSize
		s := newSink(t, c)
		p := sinks.NewPartition(day, day, day.Add(24*time.Hour), "run-c")
		w, err := s.Open(t.Context(), p)
		require.NoError(t, err)
		require.NoError(t, w.Write(t.Context(), records(t, p, 15000, "c")))
		// Cancel once the multipart upload exists: its parts are in flight.
		key := "audit/dt=2026-11-01/pachca-audit-2026-11-01.ndjson"
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			for ctx.Err() == nil && !hasUploads(t, srv, "cancel-mp", key) {
				time.Sleep(time.Millisecond)
			}
			cancel()
		}()
		_, err = w.Commit(ctx)
		cancel()
		<-watched
		if err == nil {
			t.Skip("the upload finished before the cancellation reached it")
		}
		require.ErrorIs(t, err, context.Canceled)
		require.Empty(t, keys(t, srv, "cancel-mp"))
		requireNoUploads(t, srv, "cancel-mp", key)
		require.NoError(t, w.Abort(context.Background()))
		requireNoTemp(t, c.TempDir)
	})

}

// TestServerStopped stops MinIO between Write and Commit: Commit fails in
// bounded time and leaves nothing; after a restart the redo delivers one
// object with every record.
func TestServerStopped(t *testing.T) {
	srv := miniotest.Start(t)
	srv.CreateBucket("fault")
	c := config(t, srv, "fault", "ndjson", "zstd")
	s := newSink(t, c)
	p := sinks.NewPartition(day, day, day.Add(24*time.Hour), "run-f")
	recs := records(t, p, 1000, "f")

	// Touch the server first, so that the client holds a live connection.
	require.NoError(t, s.Check(t.Context()))
	w, err := s.Open(t.Context(), p)
	require.NoError(t, err)
	require.NoError(t, w.Write(t.Context(), recs))
	srv.Stop()
	start := time.Now()
	_, err = w.Commit(t.Context())
	require.Error(t, err)
	t.Logf("Commit with the server down, after %s: %v", time.Since(start), err)
	require.Less(t, time.Since(start), 15*time.Second)
	require.Contains(t, err.Error(), fmt.Sprintf("s3: upload s3://fault/audit/dt=2026-11-01/pachca-audit-2026-11-01.ndjson.zst: endpoint %s unreachable: ", srv.Endpoint))
	require.NoError(t, w.Abort(context.Background()))
	requireNoTemp(t, c.TempDir)

	srv.Restart()
	require.Empty(t, keys(t, srv, "fault"))
	res := commit(t, s, p, recs)
	require.Equal(t, []string{"audit/dt=2026-11-01/_manifest.json", res.Files[0]}, keys(t, srv, "fault"))
	body, _ := get(t, srv, "fault", res.Files[0])
	requireNDJSON(t, res.Files[0], body, recs)
}

func TestCheckUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	endpoint := "http://" + l.Addr().String()
	require.NoError(t, l.Close())

	s := sinkAt(t, endpoint, 2)
	err = s.Check(t.Context())
	require.Error(t, err)
	require.Regexp(t, `^s3: endpoint `+endpoint+` unreachable: dial tcp [0-9.:]+: connect: connection refused \(after 2 attempts\)$`, err.Error())
}

// TestCheckNotAnS3Endpoint: an endpoint of another web service, which
// answers 404 without a body and without S3's headers, is not reported as a
// missing bucket only.
func TestCheckNotAnS3Endpoint(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	s := sinkAt(t, srv.URL, 1)
	require.EqualError(t, s.Check(t.Context()), `s3: bucket "b-1" does not exist, or endpoint `+srv.URL+` is not an S3 API (its 404 carried no x-amz-request-id): check the bucket and the sink's endpoint`)
}

// TestServerTextOnOneLine: the message of an S3 error goes into the error
// on one line, without what a terminal acts on: a server's line break must
// not start a line that reads as the exporter's own.
func TestServerTextOnOneLine(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s3Error(w, http.StatusForbidden, "AccessDenied", "denied&#xA;pachca-export: check OK&#xD;\u202e")
	}))
	t.Cleanup(srv.Close)
	s := sinkAt(t, srv.URL, 1)
	_, err := s.Claim(t.Context(), sinks.Claim{Identity: sinks.Identity{BaseURL: "https://x"}, Create: true})
	require.EqualError(t, err, `s3: get s3://b-1/_pachca-export.json: access denied to bucket "b-1" (check credentials): AccessDenied: denied pachca-export: check OK \u202e`)
}

func TestNew(t *testing.T) {
	f, err := ndjson.Format("gzip")
	require.NoError(t, err)
	_, err = s3sink.New(t.Context(), s3sink.Config{Bucket: "b-1", Region: "eu-west-1"}, f)
	require.EqualError(t, err, `s3: format "ndjson" given for a sink configured with format "parquet"`)
	_, err = s3sink.New(t.Context(), s3sink.Config{Format: "ndjson", Region: "eu-west-1"}, f)
	require.EqualError(t, err, "s3: bucket: required")
	s, err := s3sink.New(t.Context(), s3sink.Config{Bucket: "b-1", Prefix: "a/b/", Format: "ndjson", Region: "eu-west-1"}, f)
	require.NoError(t, err)
	require.Equal(t, "s3 s3://b-1/a/b/", s.Name())
	require.NoError(t, s.Close(context.Background()))
	require.NoError(t, s.Close(context.Background()))
}

func requireNoUploads(t *testing.T, srv *miniotest.Server, bucket, key string) {
	t.Helper()
	require.False(t, hasUploads(t, srv, bucket, key), "multipart uploads left for %s", key)
}

// hasUploads reports whether key has multipart uploads in progress (MinIO
// lists them per object name).
func hasUploads(t *testing.T, srv *miniotest.Server, bucket, key string) bool {
	out, err := srv.Client().ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{
		Bucket: aws.String(bucket), Prefix: aws.String(key),
	})
	if err != nil {
		t.Errorf("list multipart uploads: %v", err)
		return false
	}
	return len(out.Uploads) > 0
}

// storedChecksum is the SHA-256 checksum MinIO keeps with an object, in the
// form manifests record it.
func storedChecksum(t *testing.T, srv *miniotest.Server, bucket, key string) string {
	t.Helper()
	out, err := srv.Client().HeadObject(t.Context(), &s3.HeadObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled,
	})
	require.NoError(t, err)
	v := aws.ToString(out.ChecksumSHA256)
	if out.ChecksumType == types.ChecksumTypeComposite {
		return "SHA256-COMPOSITE:" + v
	}
	return "SHA256:" + v
}

// TestServerChecksAChecksum: the checksum the sink sends is one the server
// verifies: a body that does not match it is refused and stores nothing.
func TestServerChecksAChecksum(t *testing.T) {
	srv := miniotest.Start(t)
	srv.CreateBucket("sums")
	wrong := sha256.Sum256([]byte("something else"))
	_, err := srv.Client().PutObject(t.Context(), &s3.PutObjectInput{
		Bucket: aws.String("sums"), Key: aws.String("k"), Body: strings.NewReader("the body"),
		ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(wrong[:])),
	})
	require.Error(t, err)
	require.Empty(t, keys(t, srv, "sums"))
}

// TestEndpointSilent: an endpoint that accepts connections but does not
// answer as S3 (another service's port, a hung server) is named, with the
// time waited and what to check, when the caller's deadline ends the call;
// "canceled: context deadline exceeded" said neither.
func TestEndpointSilent(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var conns sync.WaitGroup
	t.Cleanup(func() { l.Close(); conns.Wait() })
	conns.Add(1)
	go func() {
		defer conns.Done()
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c) // read nothing, answer nothing
		}
	}()
	endpoint := "http://" + l.Addr().String()
	s := sinkAt(t, endpoint, 2)

	const hint = " did not answer as S3 within 1s: check the sink's endpoint (the S3 API's http(s)://host:port, not another service's) and that the server is up"
	for _, tc := range []struct {
		name string
		call func(ctx context.Context) error
		want string
	}{
		{"check", s.Check, "s3: endpoint " + endpoint + hint},
		{"claim", func(ctx context.Context) error {
			_, err := s.Claim(ctx, sinks.Claim{Identity: sinks.Identity{BaseURL: "https://x"}, Create: true})
			return err
		}, "s3: get s3://b-1/_pachca-export.json: endpoint " + endpoint + hint},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			require.EqualError(t, tc.call(ctx), tc.want)
		})
	}
}

// TestCheckCannotDelete: credentials that may put objects but not delete
// them fail Check, naming the permission, and leave no probe object under
// the prefix (was: the probe was put, its delete refused, and every check
// and run left one more, which check and verify then reported as another's
// data at the sink's root).
func TestCheckCannotDelete(t *testing.T) {
	srv := miniotest.Start(t)
	srv.CreateBucket("perm")
	s := restrictedSink(t, srv, "perm", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",`+
		`"Action":["s3:GetObject","s3:PutObject","s3:ListBucket","s3:GetBucketLocation"],`+
		`"Resource":["arn:aws:s3:::perm","arn:aws:s3:::perm/*"]}]}`)

	for range 2 {
		err := s.Check(t.Context())
		require.Error(t, err)
		require.Regexp(t, `^s3: bucket "perm" is not writable: delete s3://perm/audit/\.pachca-export-check-[0-9a-f]{16}: `+
			`access denied to bucket "perm" \(check credentials\): AccessDenied: .* \(the sink puts and deletes objects under its prefix: s3:PutObject, s3:DeleteObject\)$`, err.Error())
	}
	require.Empty(t, keys(t, srv, "perm"), "no probe left behind")
}

// TestCheckCannotList: credentials whose policy grants the objects but not
// the bucket (no s3:ListBucket) fail Check on its HEAD of the bucket, whose
// 403 carries no code; the line names the permission (was: only "access
// denied to bucket (check credentials): Forbidden", though the credentials
// were right).
func TestCheckCannotList(t *testing.T) {
	srv := miniotest.Start(t)
	srv.CreateBucket("perm")
	s := restrictedSink(t, srv, "perm", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",`+
		`"Action":["s3:GetObject","s3:PutObject","s3:DeleteObject"],"Resource":["arn:aws:s3:::perm/*"]}]}`)

	err := s.Check(t.Context())
	require.Error(t, err)
	require.Equal(t, `s3: access denied to bucket "perm" (check credentials): Forbidden `+
		`(or the credentials lack s3:ListBucket on the bucket, which the sink needs)`, err.Error())
}

// TestCheckDeleteOfMissingKeyNotFound: a server that answers the delete of
// a key that does not exist with 404 NoSuchKey (Google Cloud Storage's XML
// API does; S3 and MinIO answer 204) passes Check, which deletes the
// probe's key before putting it, and is left with no probe.
func TestCheckDeleteOfMissingKeyNotFound(t *testing.T) {
	srv := miniotest.Start(t)
	srv.CreateBucket("gcs")
	var deletes atomic.Int32
	c := config(t, srv, "gcs", "ndjson", "zstd")
	c.Endpoint = front(t, srv, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodDelete && deletes.Add(1) == 1 { // the key does not exist yet
			s3Error(w, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
			return true
		}
		return false
	})
	s := newSink(t, c)

	require.NoError(t, s.Check(t.Context()))
	require.EqualValues(t, 2, deletes.Load(), "the probe's key deleted before the put and after")
	require.Empty(t, keys(t, srv, "gcs"))
}

// TestCheckStorageClass: a storage_class the server refuses for data objects
// fails Check, as the first upload would (was: the probe went up STANDARD,
// check said OK, and the run failed at its first upload, after fetching).
func TestCheckStorageClass(t *testing.T) {
	srv := miniotest.Start(t)
	srv.CreateBucket("class")
	c := config(t, srv, "class", "ndjson", "zstd")
	c.StorageClass = "GLACIER_IR" // MinIO without tiers takes STANDARD and REDUCED_REDUNDANCY only
	err := newSink(t, c).Check(t.Context())
	require.Error(t, err)
	require.Regexp(t, `^s3: bucket "class" is not writable: put s3://class/audit/\.pachca-export-check-[0-9a-f]{16}: InvalidStorageClass: `, err.Error())
	require.Empty(t, keys(t, srv, "class"))

	c.StorageClass = "REDUCED_REDUNDANCY"
	require.NoError(t, newSink(t, c).Check(t.Context()))
	require.Empty(t, keys(t, srv, "class"))
}

// TestObjectLockBucket: AWS refuses a PutObject or UploadPart without
// Content-MD5 or an x-amz-checksum-* header in a bucket with a default
// Object Lock retention, the usual setup of a bucket for audit logs (MinIO
// does not: the test puts a proxy that refuses them as AWS does before it).
// Check's probe carries its SHA-256 as the uploads and manifests do (was:
// it carried none, so check, and the run's check before fetching, failed
// on such a bucket with 'Content-MD5 OR x-amz-checksum- HTTP header is
// required' where every write of the run would have passed).
func TestObjectLockBucket(t *testing.T) {
	srv := miniotest.Start(t)
	srv.CreateBucket("locked")
	c := config(t, srv, "locked", "ndjson", "none")
	c.Endpoint = front(t, srv, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPut || r.Header.Get("Content-MD5") != "" {
			return false
		}
		for name := range r.Header {
			if strings.HasPrefix(strings.ToLower(name), "x-amz-checksum-") {
				return false
			}
		}
		s3Error(w, http.StatusBadRequest, "InvalidRequest", "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters")
		return true
	})
	c.PartSize = s3sink.MinPartSize
	s := newSink(t, c)
	require.NoError(t, s.Check(t.Context()))

	p := sinks.NewPartition(day, day, day.Add(24*time.Hour), "run-l")
	recs := records(t, p, 20000, "l") // more than a part: a multipart upload
	res := commit(t, s, p, recs)
	_, err := s.Claim(t.Context(), sinks.Claim{Identity: sinks.Identity{BaseURL: "https://x"}, Create: true})
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"audit/_pachca-export.json", "audit/dt=2026-11-01/_manifest.json", res.Files[0]}, keys(t, srv, "locked"))
}

// front starts a proxy before srv whose handle may answer a request itself
// (it returns true) instead of passing it on, as another S3 server would.
// It returns the proxy's endpoint.
func front(t *testing.T, srv *miniotest.Server, handle func(http.ResponseWriter, *http.Request) bool) string {
	t.Helper()
	target, err := url.Parse(srv.Endpoint)
	require.NoError(t, err)
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Host = r.In.Host // the signature covers the host the client addressed
	}}
	f := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !handle(w, r) {
			proxy.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(f.Close)
	return f.URL
}

// s3Error answers as S3 does when it refuses a request.
func s3Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message></Error>`, code, msg)
}

// TestWrongRegion: a sink configured for another region than the bucket's
// is told which region to set, by check (a HEAD, whose 400 has no body) and
// by a run (was: check said 's3: BadRequest: Bad Request (HTTP 400)').
func TestWrongRegion(t *testing.T) {
	srv := miniotest.Start(t)
	srv.CreateBucket("region")
	c := config(t, srv, "region", "ndjson", "none")
	c.Region = "eu-central-1"
	s := newSink(t, c)
	want := `bucket "region" is in region "us-east-1", not "eu-central-1": set the sink's region: us-east-1`
	require.EqualError(t, s.Check(t.Context()), "s3: "+want)
	_, err := s.Claim(t.Context(), sinks.Claim{Identity: sinks.Identity{BaseURL: "https://x"}, Create: true})
	require.EqualError(t, err, "s3: get s3://region/audit/_pachca-export.json: "+want)
}

// TestCheckVirtualHostedStyle: an endpoint whose server serves buckets as
// paths, reached without force_path_style, fails on the name
// <bucket>.<host>, which the message explains (was: only 'endpoint ...
// unreachable: ... lookup b-1.s3.invalid ...: no such host').
func TestCheckVirtualHostedStyle(t *testing.T) {
	c := s3sink.Config{
		Bucket: "b-1", Format: "ndjson", Region: "us-east-1", Endpoint: "http://s3.invalid:9000",
		AccessKeyID: "k", SecretAccessKey: "s", MaxAttempts: 1, Timeout: 10 * time.Second, TempDir: t.TempDir(),
	}
	f, err := ndjson.Format("gzip")
	require.NoError(t, err)
	s, err := s3sink.New(t.Context(), c, f)
	require.NoError(t, err)
	err = s.Check(t.Context())
	require.ErrorContains(t, err, "b-1.s3.invalid")
	require.ErrorContains(t, err, "(the bucket was addressed as a host name, virtual-hosted style: set force_path_style: true")
}

// TestClaimInsideAnotherLocation: a prefix inside another sink's (an
// investigation under the nightly export's prefix, or any prefix of a
// bucket whose root is one) is refused by the claim a run makes before it
// writes anything (was: its objects went under the nightly's prefix, whose
// verify then failed, and whose readers read them); a role granted only
// its own prefix, which may not read the folders above, is not refused.
func TestClaimInsideAnotherLocation(t *testing.T) {
	srv := miniotest.Start(t)
	srv.CreateBucket("nested")
	id := sinks.Claim{Identity: sinks.Identity{BaseURL: "https://x"}}
	claim := func(prefix string, create bool) (sinks.ClaimResult, error) {
		c := config(t, srv, "nested", "ndjson", "none")
		c.Prefix = prefix
		id.Create = create
		return newSink(t, c).Claim(t.Context(), id)
	}
	_, err := claim("audit", true)
	require.NoError(t, err)

	for _, prefix := range []string{"audit/investigation 42/", "audit/dt=2026-11-20/"} {
		_, err = claim(prefix, false)
		require.EqualError(t, err, "this location lies inside another sink's (s3://nested/audit/_pachca-export.json), whose readers and verify would read this configuration's files as its own: give this configuration a location outside it (dir, or S3 prefix)")
		require.Equal(t, failure.Usage, failure.KindOf(err))
	}
	require.Equal(t, []string{"audit/_pachca-export.json"}, keys(t, srv, "nested"))

	res, err := claim("other/audit", true)
	require.NoError(t, err)
	require.Empty(t, res.Within)

	// A location marked before: claimed, the enclosing marker named.
	_, err = claim("all/in/one", true)
	require.NoError(t, err)
	_, err = claim("", true)
	require.NoError(t, err)
	res, err = claim("all/in/one", true)
	require.NoError(t, err)
	require.Equal(t, "s3://nested/_pachca-export.json", res.Within)

	// A role that may read its own prefix only.
	creds := srv.Restricted(`{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":["s3:ListBucket"],"Resource":["arn:aws:s3:::nested"]},
		{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":["arn:aws:s3:::nested/mine/*"]}]}`)
	c := config(t, srv, "nested", "ndjson", "none")
	c.Prefix, c.AccessKeyID, c.SecretAccessKey = "mine/audit", "", ""
	t.Setenv("AWS_ACCESS_KEY_ID", creds.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", creds.SecretAccessKey)
	t.Setenv("AWS_SESSION_TOKEN", creds.SessionToken)
	id.Create = true
	res, err = newSink(t, c).Claim(t.Context(), id)
	require.NoError(t, err, "the marker at the bucket's root is not this role's to read")
	require.Empty(t, res.Within)
}

// TestNoCredentials: on a host where the SDK's default chain finds no
// credentials, the error says so, whatever the instance metadata service
// answered (here one that refuses tokens and has no role, as a proxy on a
// host off EC2 may), and the SDK writes nothing to stderr (was: 'access
// denied to bucket "b-1" (check credentials): (or the credentials lack
// s3:ListBucket ...)', the metadata service's 403 taken for S3's, after an
// 'SDK ... WARN falling back to IMDSv1' line among the JSON logs).
func TestNoCredentials(t *testing.T) {
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(imds.Close)
	home := t.TempDir()
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_EC2_METADATA_DISABLED"} {
		t.Setenv(k, "")
		require.NoError(t, os.Unsetenv(k))
	}
	t.Setenv("HOME", home)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(home, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(home, "credentials"))
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.URL)

	r, w, err := os.Pipe()
	require.NoError(t, err)
	stderr := os.Stderr
	os.Stderr = w
	t.Cleanup(func() { os.Stderr = stderr })

	srv := miniotest.Start(t)
	c := config(t, srv, "b-1", "ndjson", "none")
	c.AccessKeyID, c.SecretAccessKey = "", ""
	s := newSink(t, c)
	err = s.Check(t.Context())
	require.Error(t, err)
	require.Regexp(t, `^s3: no credentials for bucket "b-1": .*no EC2 IMDS role found.* \(set the sink's access_key_id and secret_access_key, or what the SDK's default chain reads: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, a web identity token, the host's role\)$`, err.Error())

	os.Stderr = stderr
	require.NoError(t, w.Close())
	written, err := io.ReadAll(r)
	require.NoError(t, err)
	require.Empty(t, string(written), "the SDK's own log lines")
}
