package s3sink_test

import (
	"bytes"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/internal/failure"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/s3sink"
	"github.com/pachca-export/pachca-export/sinks/shape"
	"github.com/pachca-export/pachca-export/sinkset"
	"github.com/pachca-export/pachca-export/testkit/miniotest"
	"github.com/pachca-export/pachca-export/transform/ocsf"
)

// TestCompact: a Compact partition replaces the objects a follow loop wrote
// for the day, and a run's full day those of partial ranges: the manifest
// lists the day object (one per OCSF class in the Security Lake layout)
// alone and the others are deleted.
func TestCompact(t *testing.T) {
	srv := miniotest.Start(t)
	t.Run("daily", func(t *testing.T) {
		srv.CreateBucket("compact")
		s := newSink(t, config(t, srv, "compact", "ndjson", "gzip"))
		for i := range 3 {
			p := sinks.NewPartition(day, day.Add(time.Duration(i)*time.Hour), day.Add(time.Duration(i+1)*time.Hour), "run-c")
			p.Part = true
			commit(t, s, p, records(t, p, 20, "c"))
		}
		require.Len(t, keys(t, srv, "compact"), 4)

		p := sinks.NewPartition(day, day, day.Add(24*time.Hour), "run-seal")
		p.Compact = true
		recs := records(t, p, 60, "s")
		res := commit(t, s, p, recs)
		require.Equal(t, []string{"audit/dt=2026-11-01/_manifest.json", "audit/dt=2026-11-01/pachca-audit-2026-11-01.ndjson.gz"}, keys(t, srv, "compact"))
		m := manifest(t, srv, "compact", "audit/dt=2026-11-01/_manifest.json")
		require.Len(t, m.Files, 1)
		require.EqualValues(t, 60, m.Records)
		body, _ := get(t, srv, "compact", res.Files[0])
		requireNDJSON(t, res.Files[0], body, recs)
	})
	t.Run("a run's full day after partial ranges", func(t *testing.T) {
		srv.CreateBucket("partial")
		s := newSink(t, config(t, srv, "partial", "ndjson", "gzip"))
		for _, h := range []int{0, 12} {
			p := sinks.NewPartition(day, day.Add(time.Duration(h)*time.Hour), day.Add(time.Duration(h+12)*time.Hour), "run-p")
			commit(t, s, p, records(t, p, 20, "p"))
		}
		require.Len(t, keys(t, srv, "partial"), 3)

		p := sinks.NewPartition(day, day, day.Add(24*time.Hour), "run-day")
		recs := records(t, p, 60, "d")
		commit(t, s, p, recs)
		require.Equal(t, []string{"audit/dt=2026-11-01/_manifest.json", "audit/dt=2026-11-01/pachca-audit-2026-11-01.ndjson.gz"}, keys(t, srv, "partial"))
		m := manifest(t, srv, "partial", "audit/dt=2026-11-01/_manifest.json")
		require.Len(t, m.Files, 1)
		require.EqualValues(t, 60, m.Records)
	})
	t.Run("security lake", func(t *testing.T) {
		srv.CreateBucket("lake")
		c := config(t, srv, "lake", "parquet", "zstd")
		c.Prefix = ""
		c.Keys = shape.Keys{Schema: shape.SchemaOCSF, Layout: shape.LayoutSecurityLake,
			SecurityLake: &shape.SecurityLake{AccountID: "123456789012"}}
		require.NoError(t, c.Validate())
		f, err := sinkset.Format(c.Format, c.Compression, c.Schema)
		require.NoError(t, err)
		l, err := sinkset.Layout(c.Keys, c.Compression, c.Region)
		require.NoError(t, err)
		s, err := s3sink.New(t.Context(), c, f, s3sink.WithLayout(l))
		require.NoError(t, err)
		for i := range 2 {
			p := sinks.NewPartition(day, day.Add(time.Duration(i)*time.Hour), day.Add(time.Duration(i+1)*time.Hour), "run-c")
			p.Part = true
			commit(t, s, p, records(t, p, 20, "c"))
		}
		require.Len(t, keys(t, srv, "lake"), 2*4+1, "two objects for each of the 4 classes, one manifest")

		p := sinks.NewPartition(day, day, day.Add(24*time.Hour), "run-seal")
		p.Compact = true
		res := commit(t, s, p, records(t, p, 60, "s"))
		dir := func(src string) string {
			return "ext/" + src + "/region=" + srv.Region + "/accountId=123456789012/eventDay=20261101/pachca-audit-2026-11-01.parquet"
		}
		want := []string{dir("pachca-auth"), dir("pachca-entity-mgmt"), dir("pachca-group-mgmt"), dir("pachca-other"),
			"pachca-export/dt=2026-11-01/_manifest.json"}
		require.Equal(t, want, keys(t, srv, "lake"))
		require.ElementsMatch(t, want[:4], res.Files)
		m := manifest(t, srv, "lake", "pachca-export/dt=2026-11-01/_manifest.json")
		require.Equal(t, ocsf.SchemaVersion, m.SchemaVersion)
		require.Len(t, m.Files, 4)
		require.EqualValues(t, 60, m.Records)
		for _, e := range m.Files {
			require.Regexp(t, `^SHA256:`, e.S3Checksum, e.Name)
		}
		head, err := srv.Client().HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String("lake"), Key: aws.String(want[0])})
		require.NoError(t, err)
		require.Equal(t, ocsf.SchemaVersion, head.Metadata["schema-version"])
		require.Equal(t, "application/vnd.apache.parquet", aws.ToString(head.ContentType))
	})
}

// TestWholeDayRemovesUnlistedObjects: a run killed between putting a whole
// day's manifest and deleting the partial-range objects it replaced leaves
// an object no manifest lists (tour a, finding 2); the next whole-day run
// deletes it.
func TestWholeDayRemovesUnlistedObjects(t *testing.T) {
	srv := miniotest.Start(t)
	srv.CreateBucket("orphan")
	s := newSink(t, config(t, srv, "orphan", "ndjson", "gzip"))
	part := sinks.NewPartition(day, day.Add(6*time.Hour), day.Add(12*time.Hour), "run-part")
	res := commit(t, s, part, records(t, part, 20, "p"))
	require.Len(t, res.Files, 1)
	orphan := res.Files[0]
	body, _ := get(t, srv, "orphan", orphan)

	whole := sinks.NewPartition(day, day, day.Add(24*time.Hour), "run-day")
	recs := records(t, whole, 60, "d")
	commit(t, s, whole, recs)
	want := []string{"audit/dt=2026-11-01/_manifest.json", "audit/dt=2026-11-01/pachca-audit-2026-11-01.ndjson.gz"}
	require.Equal(t, want, keys(t, srv, "orphan"))
	// The crash state: the manifest lists the whole day, the partial-range
	// object is still there.
	_, err := srv.Client().PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String("orphan"), Key: aws.String(orphan), Body: bytes.NewReader(body)})
	require.NoError(t, err)
	require.Len(t, keys(t, srv, "orphan"), 3)
	m := manifest(t, srv, "orphan", want[0])
	require.Len(t, m.Files, 1)

	commit(t, newSink(t, config(t, srv, "orphan", "ndjson", "gzip")), whole, recs)
	require.Equal(t, want, keys(t, srv, "orphan"), "the unlisted partial-range object is deleted")
	m = manifest(t, srv, "orphan", want[0])
	require.Len(t, m.Files, 1)
	require.EqualValues(t, 60, m.Records)
}

// TestCompactDeleteDenied: a bucket whose policy denies s3:DeleteObject on
// the data objects (beside Object Lock, as a WORM bucket of evidence may
// have; check's probe, beside the marker, is let through) would refuse
// the deletes a commit that replaces objects ends with. A follow's seal
// asks first and fails before it uploads anything (was: the day object
// and its manifest were put, the deletes refused, and the cycle objects
// stayed beside the day's, listed by no manifest, every event there twice
// for readers); a whole day replacing partial-day objects, which does not
// ask, fails when refused. Both errors are permanent and say what to do
// (was: a transient 'AccessDenied Access Denied.', which a follow loop
// retried for follow.give_up_after, uploading the day object again at each
// try: one more version the locked bucket keeps for its retention).
func TestCompactDeleteDenied(t *testing.T) {
	srv := miniotest.Start(t)
	srv.CreateBucket("deny")
	s := restrictedSink(t, srv, "deny", `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":["s3:*"],"Resource":["arn:aws:s3:::deny","arn:aws:s3:::deny/*"]},
		{"Effect":"Deny","Action":["s3:DeleteObject"],"Resource":["arn:aws:s3:::deny/audit/dt=*"]}]}`)
	require.NoError(t, s.Check(t.Context()))
	var cycles []string
	for i := range 2 {
		p := sinks.NewPartition(day, day.Add(time.Duration(i)*time.Hour), day.Add(time.Duration(i+1)*time.Hour), "run-c")
		p.Part = true
		cycles = append(cycles, commit(t, s, p, records(t, p, 20, "c")).Files...)
	}
	before := keys(t, srv, "deny")
	p := sinks.NewPartition(day, day, day.Add(24*time.Hour), "run-seal")
	p.Compact = true
	_, err := tryCommit(t.Context(), s, p, records(t, p, 40, "s"))
	require.Error(t, err)
	require.True(t, failure.IsPermanent(err), "permanent: %v", err)
	require.Regexp(t, `^s3: delete s3://deny/audit/dt=2026-11-01/\.pachca-export-check-[0-9a-f]{16}: access denied to bucket "deny" \(check credentials\): AccessDenied: Access Denied\.: `+
		`the seal of a day deletes the cycle objects it replaces, and uploaded nothing; allow s3:DeleteObject under the prefix, or set follow\.keep_cycle_files: true`, err.Error())
	require.Equal(t, before, keys(t, srv, "deny"), "nothing uploaded")
	require.Len(t, manifest(t, srv, "deny", "audit/dt=2026-11-01/_manifest.json").Files, 2)

	whole := sinks.NewPartition(day, day, day.Add(24*time.Hour), "run-day")
	_, err = tryCommit(t.Context(), s, whole, records(t, whole, 40, "s"))
	require.True(t, failure.IsPermanent(err), "permanent: %v", err)
	require.Regexp(t, `^s3: delete s3://deny/audit/dt=2026-11-01/pachca-audit-20261101T000000\.000Z-20261101T010000\.000Z\.ndjson\.zst: AccessDenied: Access Denied\.: `+
		`the objects stay beside the day's, listed by no manifest; allow s3:DeleteObject under the prefix, or for follow set follow\.keep_cycle_files: true`, err.Error())
	require.Subset(t, keys(t, srv, "deny"), cycles)
}

// TestObjectLockMinIO: in a bucket with Object Lock, in either mode, a
// follow's cycles, its seal (a multipart upload, then the cycle objects
// deleted) and the day exported again all pass; the current objects are
// the marker, the manifest and the day object, and what was replaced or
// deleted stays as noncurrent versions behind delete markers, as the
// README says.
func TestObjectLockMinIO(t *testing.T) {
	srv := miniotest.Start(t)
	for _, mode := range []types.ObjectLockRetentionMode{types.ObjectLockRetentionModeGovernance, types.ObjectLockRetentionModeCompliance} {
		t.Run(string(mode), func(t *testing.T) {
			bucket := "lock-" + strings.ToLower(string(mode))
			srv.CreateLockedBucket(bucket, mode)
			c := config(t, srv, bucket, "ndjson", "none")
			c.PartSize = s3sink.MinPartSize
			s := newSink(t, c)
			require.NoError(t, s.Check(t.Context()))
			_, err := s.Claim(t.Context(), sinks.Claim{Identity: sinks.Identity{BaseURL: "https://x"}, Create: true})
			require.NoError(t, err)
			for i := range 2 {
				p := sinks.NewPartition(day, day.Add(time.Duration(i)*time.Hour), day.Add(time.Duration(i+1)*time.Hour), "run-c")
				p.Part = true
				commit(t, s, p, records(t, p, 20, "c"))
			}
			seal := sinks.NewPartition(day, day, day.Add(24*time.Hour), "run-seal")
			seal.Compact = true
			commit(t, s, seal, records(t, seal, 20000, "s")) // more than a part: a multipart upload
			again := sinks.NewPartition(day, day, day.Add(24*time.Hour), "run-again")
			commit(t, s, again, records(t, again, 20000, "s"))

			want := []string{"audit/_pachca-export.json", "audit/dt=2026-11-01/_manifest.json", "audit/dt=2026-11-01/pachca-audit-2026-11-01.ndjson"}
			require.Equal(t, want, keys(t, srv, bucket))
			m := manifest(t, srv, bucket, want[1])
			require.Len(t, m.Files, 1)
			require.EqualValues(t, 20000, m.Records)
			require.Regexp(t, `^SHA256-COMPOSITE:`, m.Files[0].S3Checksum)

			out, err := srv.Client().ListObjectVersions(t.Context(), &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String("audit/dt=")})
			require.NoError(t, err)
			noncurrent := map[string]int{}
			for _, v := range out.Versions {
				if !aws.ToBool(v.IsLatest) {
					noncurrent[path.Base(aws.ToString(v.Key))]++
				}
			}
			require.Equal(t, map[string]int{
				"_manifest.json":                 3, // the two cycles' and the seal's
				"pachca-audit-2026-11-01.ndjson": 1, // the seal's
				"pachca-audit-20261101T000000.000Z-20261101T010000.000Z.ndjson": 1,
				"pachca-audit-20261101T010000.000Z-20261101T020000.000Z.ndjson": 1,
			}, noncurrent)
			require.Len(t, out.DeleteMarkers, 2, "one for each cycle object")
		})
	}
}
