package pipeline_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/sinks/shape"
	"github.com/pachca-export/pachca-export/testkit/miniotest"
)

// TestLakeSourcesShared: a second workspace sent to the same Security Lake
// bucket with its own manifest_prefix but the same sources is refused
// before it replaces the first one's objects (was: it replaced them, and
// the first one's verify failed on every object of the day); with sources
// of its own it is delivered.
func TestLakeSourcesShared(t *testing.T) {
	m := miniotest.Start(t)
	const bucket = "aws-security-data-lake-shared"
	m.CreateBucket(bucket)
	from, to := day0(), day0().AddDate(0, 0, 1)
	_, base := startSim(t, func(c *simulator.Config) { c.Events, c.From, c.To = 500, from, to })
	lakeConfig := func(workspace string, sl shape.SecurityLake) *config.Config {
		cfg := testConfig(t, base)
		cfg.Source.Workspace = workspace
		cfg.Sinks = []config.Sink{lakeSink(m, bucket, sl)}
		require.NoError(t, cfg.Validate())
		return cfg
	}
	objects := func() map[string]string {
		out, err := m.Client().ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
		require.NoError(t, err)
		etags := map[string]string{}
		for _, o := range out.Contents {
			etags[*o.Key] = *o.ETag
		}
		return etags
	}
	run := func(cfg *config.Config) (*pipeline.Summary, error) {
		return pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: from, To: to}, false)
	}

	_, err := run(lakeConfig("acme", shape.SecurityLake{}))
	require.NoError(t, err)
	before := objects()

	sum, err := run(lakeConfig("beta", shape.SecurityLake{ManifestPrefix: "beta-export/"}))
	var refused *pipeline.RefusedError
	require.ErrorAs(t, err, &refused)
	require.Len(t, sum.Refused, 1)
	require.Contains(t, sum.Refused[0].Reason, "the two configurations write the same Security Lake sources")
	after := objects()
	delete(after, "beta-export/_pachca-export.json") // beta's claim of its manifest folder
	require.Equal(t, before, after, "acme's objects are left as they were")

	sources := map[string]string{}
	for class, source := range shape.DefaultSources() {
		sources[class] = "beta-" + source[len("pachca-"):]
	}
	_, err = run(lakeConfig("beta", shape.SecurityLake{ManifestPrefix: "beta-export/", Sources: sources}))
	require.NoError(t, err)
}
