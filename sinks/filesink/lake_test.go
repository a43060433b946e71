package filesink_test

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/filesink"
	"github.com/pachca-export/pachca-export/sinks/parquetfmt"
	"github.com/pachca-export/pachca-export/sinks/shape"
	"github.com/pachca-export/pachca-export/sinkset"
	"github.com/pachca-export/pachca-export/testkit/ocsftest"
	"github.com/pachca-export/pachca-export/transform"
	"github.com/pachca-export/pachca-export/transform/ocsf"
)

// lakeSink is a file sink in the Security Lake layout, as sinkset builds it.
func lakeSink(t *testing.T, dir string, opts ...filesink.Option) *filesink.Sink {
	t.Helper()
	keys := shape.Keys{Schema: shape.SchemaOCSF, Layout: shape.LayoutSecurityLake,
		SecurityLake: &shape.SecurityLake{AccountID: "123456789012", Region: "eu-central-1"}}
	require.NoError(t, keys.Validate("parquet", ""))
	f, err := sinkset.Format("parquet", "zstd", keys.Schema)
	require.NoError(t, err)
	l, err := sinkset.Layout(keys, "zstd", "")
	require.NoError(t, err)
	return filesink.New(dir, f, append(opts, filesink.WithLayout(l))...)
}

// files lists every file under dir, relative, with "/".
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return err
	}))
	slices.Sort(out)
	return out
}

func deliver(t *testing.T, s sinks.Sink, p sinks.Partition, recs []transform.Record) sinks.Result {
	t.Helper()
	w, err := s.Open(t.Context(), p)
	require.NoError(t, err)
	for i := 0; i < len(recs); i += 100 {
		require.NoError(t, w.Write(t.Context(), recs[i:min(i+100, len(recs))]))
	}
	res, err := w.Commit(t.Context())
	require.NoError(t, err)
	return res
}

func lakeManifest(t *testing.T, path string) sinks.Manifest {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var m sinks.Manifest
	require.NoError(t, json.Unmarshal(b, &m))
	return m
}

// lakePath is where the layout puts a class's file of the day.
func lakePath(class int32, day time.Time, name string) string {
	src := shape.SecurityLake{}.SourceOf()[class]
	return "ext/" + src + "/region=eu-central-1/accountId=123456789012/eventDay=" + day.Format("20060102") + "/" + name
}

// TestSecurityLakeModes: every directory of the layout, the manifest
// folder and the sink's own directory included, gets output.dir_mode
// whatever the umask (was: the folder of the marker and manifests, and the
// sink's directory when claimed first, were made with the umask applied:
// 0700 under a umask of 077, shutting out the group granted read access).
func TestSecurityLakeModes(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "lake")
	s := lakeSink(t, dir, filesink.WithModes(0o640, 0o750))
	_, err := s.Claim(t.Context(), sinks.Claim{Identity: sinks.Identity{BaseURL: "https://x"}, Create: true})
	require.NoError(t, err)
	recs := ocsftest.Many(t, 50)
	day := time.UnixMilli(recs[0].CreatedAt).UTC().Truncate(24 * time.Hour)
	for i := range recs {
		recs[i].CreatedAt = day.Add(time.Duration(i) * time.Second).UnixMilli()
	}
	deliver(t, s, sinks.NewPartition(day, day, day.Add(24*time.Hour), "run-1"), recs)
	n := 0
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		fi, err := d.Info()
		require.NoError(t, err)
		want := os.FileMode(0o640)
		if d.IsDir() {
			want = 0o750
		}
		require.Equal(t, want, fi.Mode().Perm(), p)
		n++
		return nil
	}))
	require.Greater(t, n, 10)
}

// TestSecurityLakeLayout: a partition becomes one Parquet file per OCSF
// class under its source's directory, each holding its class's records
// only, listed together in one manifest outside ext/; a rerun replaces them
// (a class no longer present loses its file); an aborted partition leaves
// nothing; a Compact partition replaces a followed day's cycle files.
func TestSecurityLakeLayout(t *testing.T) {
	dir := t.TempDir()
	s := lakeSink(t, dir)
	recs := ocsftest.Many(t, 1200)
	day := time.UnixMilli(recs[0].CreatedAt).UTC().Truncate(24 * time.Hour)
	for i := range recs { // one day, in time order
		recs[i].CreatedAt = day.Add(time.Duration(i) * time.Second).UnixMilli()
	}
	claim, err := s.Claim(t.Context(), sinks.Claim{Identity: sinks.Identity{BaseURL: "https://x"}, Create: true})
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "pachca-export", sinks.MarkerName), claim.Location)
	require.Equal(t, ocsf.SchemaVersion, claim.Identity.Schema)
	require.Equal(t, shape.LayoutSecurityLake, claim.Identity.Layout)

	whole := sinks.NewPartition(day, day, day.Add(24*time.Hour), "run-1")
	name := "pachca-audit-" + day.Format(time.DateOnly) + ".parquet"
	manifestPath := filepath.Join(dir, "pachca-export", "dt="+day.Format(time.DateOnly), sinks.ManifestName)
	perClass := map[int32]int64{}
	for _, r := range recs {
		perClass[ocsf.ClassOf(r.EventKey)]++
	}
	require.Len(t, perClass, len(ocsf.Classes()), "the records cover every class")
	want := []string{"pachca-export/" + sinks.MarkerName, "pachca-export/dt=" + day.Format(time.DateOnly) + "/" + sinks.ManifestName}
	for class := range perClass {
		want = append(want, lakePath(class, day, name))
	}
	slices.Sort(want)

	res := deliver(t, s, whole, recs)
	require.EqualValues(t, len(recs), res.Records)
	require.Len(t, res.Files, len(perClass))
	require.Equal(t, want, files(t, dir))
	m := lakeManifest(t, manifestPath)
	require.Equal(t, ocsf.SchemaVersion, m.SchemaVersion)
	require.EqualValues(t, len(recs), m.Records)
	require.Len(t, m.Files, len(perClass))
	for class, n := range perClass {
		path := lakePath(class, day, name)
		e, ok := m.File(path)
		require.True(t, ok, "%s listed by its path", path)
		require.Equal(t, n, e.Records, path)
		rdr, err := file.OpenParquetFile(filepath.Join(dir, path), false)
		require.NoError(t, err)
		require.Equal(t, n, rdr.NumRows())
		require.Equal(t, strconv.Itoa(int(class)), *rdr.MetaData().KeyValueMetadata().FindValue(parquetfmt.MetaOCSFClasses), "one class per file")
		require.NoError(t, rdr.Close())
	}
	n, ok, err := s.Existing(t.Context(), whole)
	require.NoError(t, err)
	require.True(t, ok)
	require.EqualValues(t, len(recs), n, "the records of every class file")

	// A rerun with only logins: the other classes' files of the day go.
	var logins []transform.Record
	for _, r := range recs {
		if r.EventKey == "user_login" {
			logins = append(logins, r)
		}
	}
	deliver(t, s, whole, logins)
	require.Equal(t, []string{
		lakePath(ocsf.ClassAuthentication, day, name),
		"pachca-export/" + sinks.MarkerName, "pachca-export/dt=" + day.Format(time.DateOnly) + "/" + sinks.ManifestName,
	}, files(t, dir))
	m = lakeManifest(t, manifestPath)
	require.Len(t, m.Files, 1)
	require.EqualValues(t, len(logins), m.Records)

	// Aborted: nothing new, not even a temporary file.
	before := files(t, dir)
	w, err := s.Open(t.Context(), sinks.NewPartition(day, day, day.Add(time.Hour), "run-abort"))
	require.NoError(t, err)
	require.NoError(t, w.Write(t.Context(), recs))
	require.NoError(t, w.Abort(t.Context()))
	require.Equal(t, before, files(t, dir))

	// Follow cycles, then the seal.
	for i, span := range [][2]int{{0, 600}, {600, 1200}} {
		p := sinks.NewPartition(day, day.Add(time.Duration(i)*10*time.Minute), day.Add(time.Duration(i+1)*10*time.Minute), "run-cycle")
		p.Part = true
		deliver(t, s, p, recs[span[0]:span[1]])
	}
	require.Len(t, lakeManifest(t, manifestPath).Files, 1+2*len(perClass), "the day file of logins and two cycle files per class")
	seal := whole
	seal.Compact = true
	deliver(t, s, seal, recs)
	require.Equal(t, want, files(t, dir), "the cycle files and nothing else replaced")
	m = lakeManifest(t, manifestPath)
	require.Len(t, m.Files, len(perClass))
	require.EqualValues(t, len(recs), m.Records)
	for _, e := range m.Files {
		require.True(t, strings.HasSuffix(e.Name, "/"+name), e.Name)
	}
}
