package s3sink_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/s3sink"
	"github.com/pachca-export/pachca-export/sinks/shape"
	"github.com/pachca-export/pachca-export/sinkset"
	"github.com/pachca-export/pachca-export/testkit/miniotest"
)

// lakePolicy is the policy README's "Amazon Security Lake layout" (What to
// do in AWS, step 2) tells to give the exporter, for the bucket BUCKET.
const lakePolicy = `{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["s3:PutObject","s3:GetObject","s3:DeleteObject","s3:AbortMultipartUpload"],
  "Resource":["arn:aws:s3:::BUCKET/ext/pachca-*/*","arn:aws:s3:::BUCKET/pachca-export/*"]},
 {"Effect":"Allow","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::BUCKET/*/dt=*/_manifest.json"]},
 {"Effect":"Allow","Action":["s3:ListBucket","s3:ListBucketMultipartUploads"],"Resource":["arn:aws:s3:::BUCKET"]}]}`

// TestSecurityLakePolicyOfTheREADME: with the README's policy, a Security
// Lake bucket that also holds Security Lake's own sources (aws/) takes a
// day of every class (was: the README granted s3:GetObject on ext/pachca-*
// and pachca-export/ only, and s3:ListBucket for their prefixes only, so
// check failed on its HEAD of the bucket, and each run on its first day,
// refused the read of aws/dt=.../_manifest.json that looks for another
// configuration writing the same sources).
func TestSecurityLakePolicyOfTheREADME(t *testing.T) {
	srv := miniotest.Start(t)
	srv.CreateBucket("lakeiam")
	native := "aws/ROUTE53/2.0/region=" + srv.Region + "/accountId=123456789012/eventDay=20261101/native.parquet"
	_, err := srv.Client().PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String("lakeiam"), Key: aws.String(native),
		Body: bytes.NewReader([]byte("Security Lake's own"))})
	require.NoError(t, err)

	creds := srv.Restricted(strings.ReplaceAll(lakePolicy, "BUCKET", "lakeiam"))
	t.Setenv("AWS_ACCESS_KEY_ID", creds.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", creds.SecretAccessKey)
	t.Setenv("AWS_SESSION_TOKEN", creds.SessionToken)
	c := config(t, srv, "lakeiam", "parquet", "zstd")
	c.Prefix, c.AccessKeyID, c.SecretAccessKey = "", "", "" // the environment's
	c.Keys = shape.Keys{Schema: shape.SchemaOCSF, Layout: shape.LayoutSecurityLake,
		SecurityLake: &shape.SecurityLake{AccountID: "123456789012"}}
	require.NoError(t, c.Validate())
	f, err := sinkset.Format(c.Format, c.Compression, c.Schema)
	require.NoError(t, err)
	l, err := sinkset.Layout(c.Keys, c.Compression, c.Region)
	require.NoError(t, err)
	s, err := s3sink.New(t.Context(), c, f, s3sink.WithLayout(l))
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close(t.Context())) }()

	require.NoError(t, s.Check(t.Context()))
	_, err = s.Claim(t.Context(), sinks.Claim{Identity: sinks.Identity{BaseURL: "https://x"}, Create: true})
	require.NoError(t, err)
	p := sinks.NewPartition(day, day, day.Add(24*time.Hour), "run-iam")
	res := commit(t, s, p, records(t, p, 40, "i"))
	require.Len(t, res.Files, 4, "one object per class")
	require.Contains(t, keys(t, srv, "lakeiam"), native, "Security Lake's own objects stay")
}
