package s3sink_test

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/ndjson"
	"github.com/pachca-export/pachca-export/sinks/s3sink"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
)

// TestCheckTempDir: Check fails, before any request, when the directory the
// sink encodes into cannot take a file (temp_dir, else TMPDIR), as on a
// read-only root file system without a writable /tmp; where it can, Check
// goes on to the bucket (here: a closed port) and leaves nothing behind.
func TestCheckTempDir(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	endpoint := "http://" + l.Addr().String()
	require.NoError(t, l.Close())
	f, err := ndjson.Format("none")
	require.NoError(t, err)
	const hint = " (set the sink's temp_dir, or TMPDIR, to a writable directory)"

	for _, tc := range []struct {
		name    string
		setup   func(t *testing.T) (tempDir, tmpdirEnv string) // the sink's temp_dir, $TMPDIR
		wantErr func(dir string) string
	}{
		{
			name: "temp_dir read-only",
			setup: func(t *testing.T) (string, string) {
				dir := t.TempDir()
				exporttest.MountTmpfs(t, dir, "ro,size=64k")
				return dir, ""
			},
			wantErr: func(dir string) string {
				return "s3: temporary directory " + dir + " is not writable: read-only file system" + hint
			},
		},
		{
			name: "TMPDIR read-only, no temp_dir",
			setup: func(t *testing.T) (string, string) {
				dir := t.TempDir()
				exporttest.MountTmpfs(t, dir, "ro,size=64k")
				return "", dir
			},
			wantErr: func(dir string) string {
				return "s3: temporary directory " + dir + " is not writable: read-only file system" + hint
			},
		},
		{
			name: "temp_dir missing",
			setup: func(t *testing.T) (string, string) {
				file := filepath.Join(t.TempDir(), "file")
				require.NoError(t, os.WriteFile(file, nil, 0o600))
				return filepath.Join(file, "tmp"), ""
			},
			wantErr: func(dir string) string {
				return "s3: temporary directory " + dir + " is not writable: not a directory" + hint
			},
		},
		{
			name: "writable",
			setup: func(t *testing.T) (string, string) {
				return t.TempDir(), ""
			},
			wantErr: func(string) string {
				return "s3: endpoint " + endpoint + " unreachable: dial tcp " + endpoint[len("http://"):] + ": connect: connection refused (after 1 attempts)"
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tempDir, env := tc.setup(t)
			if env != "" {
				t.Setenv("TMPDIR", env)
			}
			c := s3sink.Config{
				Bucket: "b-1", Format: "ndjson", Compression: "none", Region: "us-east-1", Endpoint: endpoint,
				ForcePathStyle: true, AccessKeyID: "k", SecretAccessKey: "s", MaxAttempts: 1, TempDir: tempDir,
			}
			s, err := s3sink.New(t.Context(), c, f)
			require.NoError(t, err)
			err = s.Check(t.Context())
			require.EqualError(t, err, tc.wantErr(tempDir+env))
			if tc.name == "writable" {
				requireNoTemp(t, tempDir)
			}
		})
	}
}

// TestTempFileUnlinked: the file a partition is encoded into has no name
// while the writer holds it, so a process killed before Commit (SIGKILL,
// OOM) leaves nothing in the temporary directory; the upload reads it
// through the open file. Nothing is sent before Commit: no server needed.
func TestTempFileUnlinked(t *testing.T) {
	f, err := ndjson.Format("none")
	require.NoError(t, err)
	dir := t.TempDir()
	c := s3sink.Config{
		Bucket: "b-1", Format: "ndjson", Compression: "none", Region: "us-east-1", Endpoint: "http://127.0.0.1:9",
		ForcePathStyle: true, AccessKeyID: "k", SecretAccessKey: "s", MaxAttempts: 1, TempDir: dir,
	}
	s, err := s3sink.New(t.Context(), c, f)
	require.NoError(t, err)
	p := sinks.NewPartition(day, day, day.Add(24*time.Hour), "run-unlinked")
	w, err := s.Open(t.Context(), p)
	require.NoError(t, err)
	require.NoError(t, w.Write(t.Context(), records(t, p, 100, "u")))
	requireNoTemp(t, dir)
	require.NoError(t, w.Abort(t.Context()))
	requireNoTemp(t, dir)
}
