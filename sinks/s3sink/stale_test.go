package s3sink_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/internal/atomicfile"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/s3sink"
	"github.com/pachca-export/pachca-export/testkit/miniotest"
)

// TestClaimAbortsStaleUploads: a claim to write aborts the multipart uploads
// of data objects under the prefix older than the age (an hour; here a
// second, MinIO's Initiated cannot be set back), which a process killed in
// the middle of an upload leaves; it leaves a fresh one (a concurrent run's
// at work), other writers' keys and other prefixes alone, and a claim that
// only reads (check, verify) aborts nothing.
func TestClaimAbortsStaleUploads(t *testing.T) {
	srv := miniotest.Start(t)
	srv.CreateBucket("stale")
	c := config(t, srv, "stale", "ndjson", "none")
	s := newSink(t, c)
	const age = time.Second
	s3sink.SetStaleUploadAge(s, age)

	const (
		killed  = "audit/dt=2026-11-01/pachca-audit-2026-11-01.ndjson"
		killed2 = "audit/dt=2026-11-02/pachca-audit-20261102T000000.000Z-20261102T060000.000Z.ndjson"
		foreign = "audit/backup/disk.img"
		outside = "other/dt=2026-11-01/pachca-audit-2026-11-01.ndjson"
		fresh   = "audit/dt=2026-11-03/pachca-audit-2026-11-03.ndjson"
	)
	for _, key := range []string{killed, killed2, foreign, outside} {
		startUpload(t, srv, "stale", key)
	}
	time.Sleep(age + time.Second)
	startUpload(t, srv, "stale", fresh)

	_, err := s.Claim(t.Context(), sinks.Claim{Identity: sinks.Identity{BaseURL: "https://x"}})
	require.NoError(t, err)
	require.ElementsMatch(t, []string{killed, killed2, foreign, outside, fresh}, uploads(t, srv, "stale"), "a claim that writes nothing aborts nothing")

	_, err = s.Claim(t.Context(), sinks.Claim{Identity: sinks.Identity{BaseURL: "https://x"}, Create: true})
	require.NoError(t, err)
	require.ElementsMatch(t, []string{foreign, outside, fresh}, uploads(t, srv, "stale"))
}

// startUpload begins a multipart upload of key with one part and never
// completes it, as a process killed in the middle of an upload does.
func startUpload(t *testing.T, srv *miniotest.Server, bucket, key string) {
	t.Helper()
	cl := srv.Client()
	out, err := cl.CreateMultipartUpload(t.Context(), &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	require.NoError(t, err)
	_, err = cl.UploadPart(t.Context(), &s3.UploadPartInput{
		Bucket: aws.String(bucket), Key: aws.String(key), UploadId: out.UploadId, PartNumber: aws.Int32(1),
		Body: bytes.NewReader(bytes.Repeat([]byte("x"), 1024)), ContentLength: aws.Int64(1024),
	})
	require.NoError(t, err)
}

// uploads lists the keys of the bucket's multipart uploads in progress.
func uploads(t *testing.T, srv *miniotest.Server, bucket string) []string {
	t.Helper()
	out, err := srv.Client().ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	require.NoError(t, err)
	ks := []string{}
	for _, u := range out.Uploads {
		ks = append(ks, aws.ToString(u.Key))
	}
	return ks
}

// TestClaimRemovesLeftProbes: a check killed between putting its probe
// object and deleting it (here: its delete fails) leaves the probe beside
// the marker. It is named as a temporary file, which verify and a claim's
// listing pass over (was: _pachca-export-check-*, which verify failed as
// "not the export's" for good), and the next claim to write removes it.
func TestClaimRemovesLeftProbes(t *testing.T) {
	srv := miniotest.Start(t)
	srv.CreateBucket("probe")
	target, err := url.Parse(srv.Endpoint)
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var put atomic.Bool
	noDelete := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		put.Store(put.Load() || r.Method == http.MethodPut)
		if r.Method == http.MethodDelete && put.Load() { // the delete after the put
			http.Error(w, "the process died here", http.StatusInternalServerError)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer noDelete.Close()
	c := config(t, srv, "probe", "ndjson", "none")
	c.Endpoint = noDelete.URL
	require.ErrorContains(t, newSink(t, c).Check(t.Context()), "delete probe")
	left := keys(t, srv, "probe")
	require.Len(t, left, 1)
	require.True(t, atomicfile.IsTemp(path.Base(left[0])), "%s is a temporary file", left[0])

	// One left by a version that named probes as data.
	old := "audit/_pachca-export-check-0123456789abcdef"
	_, err = srv.Client().PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String("probe"), Key: aws.String(old), Body: bytes.NewReader([]byte("pachca-export check\n"))})
	require.NoError(t, err)
	left = append(left, old)
	slices.Sort(left)

	s := newSink(t, config(t, srv, "probe", "ndjson", "none"))
	_, err = s.Claim(t.Context(), sinks.Claim{Identity: sinks.Identity{BaseURL: "https://x"}})
	require.NoError(t, err)
	require.Equal(t, left, keys(t, srv, "probe"), "a claim that writes nothing removes nothing")
	_, err = s.Claim(t.Context(), sinks.Claim{Identity: sinks.Identity{BaseURL: "https://x"}, Create: true})
	require.NoError(t, err)
	require.Equal(t, []string{"audit/" + sinks.MarkerName}, keys(t, srv, "probe"))
}
