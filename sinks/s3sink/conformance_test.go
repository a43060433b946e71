package s3sink_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/ndjson"
	"github.com/pachca-export/pachca-export/sinks/parquetfmt"
	"github.com/pachca-export/pachca-export/sinks/s3sink"
	"github.com/pachca-export/pachca-export/sinks/sinktest"
	"github.com/pachca-export/pachca-export/testkit/miniotest"
)

// TestConformance runs the sink suite against a real MinIO, one bucket per
// case, for both formats: what a reader of the bucket sees, and that no
// temporary file or multipart upload is left behind.
func TestConformance(t *testing.T) {
	srv := miniotest.Start(t)
	for _, format := range []string{"ndjson", "parquet"} {
		t.Run(format, func(t *testing.T) {
			type made struct {
				cfg s3sink.Config
				f   sinks.Format
			}
			sinksMade := map[sinks.Sink]made{}
			n := 0
			sinktest.Run(t, sinktest.Harness{
				Replaces: true,
				New: func(t *testing.T) sinks.Sink {
					n++
					bucket := fmt.Sprintf("conf-%s-%d", format, n)
					srv.CreateBucket(bucket)
					c := config(t, srv, bucket, format, "")
					c.SetDefaults()
					f, err := formatOf(c)
					require.NoError(t, err)
					s, err := s3sink.New(t.Context(), c, f)
					require.NoError(t, err)
					sinksMade[s] = made{c, f}
					return s
				},
				Read: func(t *testing.T, s sinks.Sink, p sinks.Partition) []string {
					m := sinksMade[s]
					name := p.BaseName() + m.f.Ext
					key := "audit/" + p.Dir() + "/" + name
					out, err := srv.Client().GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(m.cfg.Bucket), Key: aws.String(key)})
					var missing *types.NoSuchKey
					if errors.As(err, &missing) {
						return nil
					}
					require.NoError(t, err, key)
					out.Body.Close()
					body, _ := get(t, srv, m.cfg.Bucket, key)
					mb, _ := get(t, srv, m.cfg.Bucket, "audit/"+p.Dir()+"/"+sinks.ManifestName)
					var man sinks.Manifest
					require.NoError(t, json.Unmarshal(mb, &man))
					require.Len(t, man.Files, 1)
					require.Equal(t, name, man.Files[0].Name)
					require.EqualValues(t, len(body), man.Files[0].Bytes)
					ids := sinktest.IDs(t, key, body)
					require.EqualValues(t, len(ids), man.Files[0].Records)
					return ids
				},
				After: func(t *testing.T, s sinks.Sink) {
					m := sinksMade[s]
					requireNoTemp(t, m.cfg.TempDir)
					requireNoUploads(t, srv, m.cfg.Bucket, "audit/")
				},
			})
		})
	}
}

func formatOf(c s3sink.Config) (sinks.Format, error) {
	if c.Format == "parquet" {
		return parquetfmt.Format(c.Compression)
	}
	return ndjson.Format(c.Compression)
}
