package pipeline_test

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
	"github.com/pachca-export/pachca-export/testkit/miniotest"
)

// TestManifestAccountsForEveryEvent: a day's manifest, in a file sink of
// each format and in S3, says how many of the day's events went to no file
// and why, so that records + dead letters + dropped is every event the API
// gave for the day (was: only the records; an auditor holding the files
// could not tell events excluded from events lost). A range inside the day
// says its own, beside the whole day's after it.
func TestManifestAccountsForEveryEvent(t *testing.T) {
	m := miniotest.Start(t)
	m.CreateBucket("audit")
	sim, _ := startSim(t, func(c *simulator.Config) { c.Events = 1000 })
	at := day0().Add(6 * time.Hour).Format("2006-01-02T15:04:05.000Z")
	injected := []string{
		// Two that cannot be exported (no usable id), and two events
		// with one id: one of them goes to the dead letters.
		`{"id":"","created_at":"` + at + `","event_key":"user_login","entity_id":"1","entity_type":"user","actor_id":"1","actor_type":"user","details":{}}`,
		`{"created_at":"` + at + `","event_key":"user_logout","entity_id":"1","entity_type":"user","actor_id":"1","actor_type":"user","details":{}}`,
		`{"id":"same-id","created_at":"` + at + `","event_key":"user_logout","entity_id":"2","entity_type":"user","actor_id":"1","actor_type":"user","details":{}}`,
		`{"id":"same-id","created_at":"` + at + `","event_key":"user_logout","entity_id":"1","entity_type":"user","actor_id":"1","actor_type":"user","details":{}}`,
	}
	const deadLetters = 3
	url, served := prependToFirstPage(t, sim, injected...)
	cfg := testConfig(t, url+simulator.BasePath)
	cfg.Source.Concurrency = 1
	cfg.Transform.DropEventKeys = []string{"user_login"}
	withParquet(t, cfg)
	cfg.Sinks = append(cfg.Sinks, s3Sink(m, "audit", "lake", "ndjson"))
	require.NoError(t, cfg.Validate())

	from, to := day0(), day0().AddDate(0, 0, 1)
	api := len(exporttest.Expected(sim, from, to)) + len(injected)
	dropped := len(exporttest.Expected(sim, from, to)) - len(exporttest.Expected(sim, from, to, "user_login"))
	require.Positive(t, dropped)

	manifests := func() map[string]sinks.Manifest {
		t.Helper()
		day := "dt=" + from.Format(time.DateOnly)
		out := map[string]sinks.Manifest{}
		for _, s := range cfg.Sinks[:2] {
			b, err := os.ReadFile(filepath.Join(s.File.Dir, day, sinks.ManifestName))
			require.NoError(t, err)
			out[s.Type], err = sinks.DecodeManifest(b)
			require.NoError(t, err)
		}
		obj, err := m.Client().GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String("audit"), Key: aws.String("lake/" + day + "/" + sinks.ManifestName)})
		require.NoError(t, err)
		defer obj.Body.Close()
		b, err := io.ReadAll(obj.Body)
		require.NoError(t, err)
		out["s3"], err = sinks.DecodeManifest(b)
		require.NoError(t, err)
		return out
	}

	// The morning first, as a range: its file says what of it went to no file.
	_, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: from, To: from.Add(12 * time.Hour)}, false)
	require.NoError(t, err)
	require.True(t, served.Load())
	for name, mf := range manifests() {
		require.EqualValues(t, deadLetters, mf.DeadLetters, name)
		require.Len(t, mf.Files, 1, name)
		require.EqualValues(t, deadLetters, mf.Files[0].DeadLetters, name)
		require.Positive(t, mf.Dropped, name)
		require.Less(t, mf.Dropped, int64(dropped), name)
	}

	// Then the whole day, which replaces it.
	served.Store(false)
	sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: from, To: to}, false)
	require.NoError(t, err)
	require.True(t, served.Load())
	require.EqualValues(t, deadLetters, sum.DeadLetters)
	for name, mf := range manifests() {
		require.EqualValues(t, deadLetters, mf.DeadLetters, name)
		require.EqualValues(t, dropped, mf.Dropped, name)
		require.EqualValues(t, api, mf.Records+mf.DeadLetters+mf.Dropped, "%s: every event the API gave is in a file, a dead letter or dropped", name)
	}
}
