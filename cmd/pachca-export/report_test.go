package main

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/report/reporttest"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/filesink"
	"github.com/pachca-export/pachca-export/sinks/ndjson"
	"github.com/pachca-export/pachca-export/sinks/parquetfmt"
	"github.com/pachca-export/pachca-export/sinks/s3sink"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
	"github.com/pachca-export/pachca-export/testkit/miniotest"
)

// runReport runs `pachca-export report args...`.
func runReport(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runMain(t, append([]string{"report"}, args...)...)
}

// runMain runs the command with args and returns its exit status and output.
func runMain(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(t.Context(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// eventsOnPage reads the events card of a report.
func eventsOnPage(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	m := regexp.MustCompile(`id="card-events"><div class="label">events</div><div class="value">([0-9,]+)<`).FindSubmatch(b)
	require.NotNil(t, m, "no events card in %s", path)
	return string(m[1])
}

// TestReportCommand: the command line, with a directory or a configuration,
// and its exit statuses on bad input (one line, naming what is wrong).
func TestReportCommand(t *testing.T) {
	recs := reporttest.Dataset()
	d := func(n int) string { return reporttest.Day0.AddDate(0, 0, n).Format("2006-01-02") }
	root := t.TempDir()
	pq, nd := filepath.Join(root, "parquet"), filepath.Join(root, "ndjson")
	reporttest.Write(t, reporttest.FileSink(t, pq, "parquet"), reporttest.Day0, reporttest.Day0.AddDate(0, 0, 6), recs)
	reporttest.Write(t, reporttest.FileSink(t, nd, "ndjson.gz"), reporttest.Day0, reporttest.Day0.AddDate(0, 0, 6), recs)
	want := 0
	for _, r := range recs {
		if r.CreatedAt >= reporttest.Day0.AddDate(0, 0, 3).UnixMilli() {
			want++
		}
	}
	// An OCSF sink, first of the file sinks: the report passes it by.
	ocsfDir := filepath.Join(root, "ocsf")
	ocsfFormat, err := ndjson.OCSFFormat("none")
	require.NoError(t, err)
	reporttest.Write(t, filesink.New(ocsfDir, ocsfFormat), reporttest.Day0, reporttest.Day0.AddDate(0, 0, 6), recs)
	onlyOCSF := writeConfig(t, "http://127.0.0.1:1", "x", fmt.Sprintf(`source:
  base_url: %%BASE%%
  token: %%TOKEN%%
sinks:
  - type: ndjson
    dir: %s
    schema: ocsf
`, ocsfDir))
	cfg := writeConfig(t, "http://127.0.0.1:1", "x", fmt.Sprintf(`source:
  base_url: %%BASE%%
  token: %%TOKEN%%
sinks:
  - type: kafka
    brokers: [127.0.0.1:1]
    topic: t
  - type: ndjson
    dir: %s
    schema: ocsf
  - type: parquet
    dir: %s
  - type: ndjson
    dir: %s
    compression: gzip
alerts:
  rules:
    - name: Two failures
      kind: threshold
      event_keys: [user_2fa_fail]
      threshold: 2
      window: 1m
      recipients: ["10001"]
`, ocsfDir, pq, nd))

	// The report only reads: the outputs are as they were after all of it.
	before := map[string]string{pq: tree(t, pq), nd: tree(t, nd)}
	t.Cleanup(func() {
		for dir, was := range before {
			require.Equal(t, was, tree(t, dir), "the report changed %s", dir)
		}
	})

	t.Run("directory", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "r.html")
		code, _, stderr := runReport(t, pq, "--from", d(3), "--to", d(6), "-o", out)
		require.Equal(t, 0, code, stderr)
		require.Contains(t, stderr, "compared with the previous period")
		require.Contains(t, stderr, fmt.Sprintf("report: %s events of %sT00:00:00Z .. %sT00:00:00Z from ", group3(int64(want)), d(3), d(6)))
		require.Equal(t, group3(int64(want)), eventsOnPage(t, out))
		fi, err := os.Stat(out)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "it names people and their addresses")
	})
	t.Run("-o on a full disk", func(t *testing.T) {
		dir := t.TempDir()
		exporttest.MountTmpfs(t, dir, "size=8k")
		out := filepath.Join(dir, "r.html")
		code, _, stderr := runReport(t, pq, "--from", d(3), "--to", d(6), "-o", out)
		require.Equal(t, 1, code, stderr)
		require.Contains(t, stderr, "pachca-export: report: write "+out+": no space left on device")
		require.NotContains(t, stderr, ".tmp-", "the temporary file is not what the user knows")
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		require.Empty(t, entries, "no page, partial or temporary")
	})
	t.Run("-o in a directory that does not exist", func(t *testing.T) {
		// was: exit 1, "report: open DIR/nope/r.html: no such file or
		// directory", as if the report had failed
		out := filepath.Join(t.TempDir(), "nope", "r.html")
		code, _, stderr := runReport(t, pq, "--from", d(3), "--to", d(6), "-o", out)
		require.Equal(t, 2, code, stderr)
		require.Equal(t, "pachca-export: report: -o "+out+": the directory "+filepath.Dir(out)+" does not exist: create it, or write the page elsewhere\n", stderr)
	})
	t.Run("config, first file sink, rules from it", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "r.html")
		code, _, stderr := runReport(t, "-c", cfg, "--from", d(3), "--to", d(6), "-o", out)
		require.Equal(t, 0, code, stderr)
		b, err := os.ReadFile(out)
		require.NoError(t, err)
		require.Contains(t, string(b), "from pipeline.yaml: Two failures (2 of user_2fa_fail per actor within 1m0s)")
		require.Contains(t, string(b), "<strong id=\"period\">2026-11-04 00:00:00Z .. 2026-11-07 00:00:00Z</strong>")
	})
	t.Run("-o inside an output", func(t *testing.T) {
		// was: written there, a file verify then fails the output on
		for _, tc := range []struct {
			args []string
			dir  string
		}{{[]string{pq}, pq}, {[]string{"-c", cfg}, pq}, {[]string{"-c", cfg}, nd}} {
			for _, out := range []string{filepath.Join(tc.dir, "r.html"), filepath.Join(tc.dir, "dt="+d(4), "r.html")} {
				code, _, stderr := runReport(t, append(tc.args, "--from", d(3), "--to", d(6), "-o", out)...)
				require.Equal(t, 2, code, stderr)
				require.Contains(t, stderr, "-o "+out+" is inside "+tc.dir+", an output of the export")
				require.NoFileExists(t, out)
			}
		}
	})
	t.Run("config, --sink picks the ndjson sink", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "r.html")
		code, _, stderr := runReport(t, "-c", cfg, "--sink", "3", "--from", d(3), "--to", d(6), "-o", out)
		require.Equal(t, 0, code, stderr)
		require.Contains(t, stderr, "-> "+out)
		require.Equal(t, group3(int64(want)), eventsOnPage(t, out))
	})

	t.Run("--time-zone Europe/Moscow", func(t *testing.T) {
		// Dates are Moscow's midnights, 21:00 UTC the day before: the
		// period reads the end of the UTC day before d(3) and counts only
		// its events from 21:00 (was: no such flag, every day UTC).
		msk, err := time.LoadLocation("Europe/Moscow")
		require.NoError(t, err)
		lo, hi := reporttest.Day0.AddDate(0, 0, 3).Add(-3*time.Hour), reporttest.Day0.AddDate(0, 0, 5).Add(-3*time.Hour)
		n := 0
		for _, r := range recs {
			if r.CreatedAt >= lo.UnixMilli() && r.CreatedAt < hi.UnixMilli() {
				n++
			}
		}
		out := filepath.Join(t.TempDir(), "r.html")
		code, _, stderr := runReport(t, pq, "--time-zone", "Europe/Moscow", "--from", d(3), "--to", d(5), "-o", out)
		require.Equal(t, 0, code, stderr)
		require.Contains(t, stderr, fmt.Sprintf("report: %s events of %sT00:00:00+03:00 .. %sT00:00:00+03:00 from 3 file(s)", group3(int64(n)), d(3), d(5)))
		require.Equal(t, group3(int64(n)), eventsOnPage(t, out))
		b, err := os.ReadFile(out)
		require.NoError(t, err)
		page := html.UnescapeString(string(b))
		require.Contains(t, page, `<strong id="period">`+d(3)+` 00:00:00+03:00 .. `+d(5)+` 00:00:00+03:00</strong> (end exclusive); days, hours and times in <strong id="zone">Europe/Moscow</strong>`)
		require.Contains(t, page, `<tr data-day="`+d(4)+`">`)
		require.NotContains(t, page, `<tr data-day="`+d(5)+`">`, "the period's last day is d(4) in Moscow")
		// A time with an offset keeps its meaning: the same period.
		out2 := filepath.Join(t.TempDir(), "r.html")
		code, _, stderr = runReport(t, pq, "--time-zone", "Europe/Moscow", "--from", lo.In(msk).Format(time.RFC3339), "--to", hi.UTC().Format(time.RFC3339), "-o", out2)
		require.Equal(t, 0, code, stderr)
		require.Equal(t, group3(int64(n)), eventsOnPage(t, out2))
	})
	t.Run("--time-zone defaults: the zone's midnights, the UTC days read named", func(t *testing.T) {
		// The output ends in November: the default week is not in it, and
		// the error names the UTC day folders the Moscow week needs: the
		// first from 21:00, the last to 21:00.
		msk, err := time.LoadLocation("Europe/Moscow")
		require.NoError(t, err)
		want := func() string {
			y, m, dd := time.Now().In(msk).Date()
			to := time.Date(y, m, dd, 0, 0, 0, 0, msk)
			from := to.AddDate(0, 0, -7)
			day := func(t time.Time) string { return t.UTC().Format(time.DateOnly) }
			return fmt.Sprintf("does not cover %s .. %s: missing %s (21:00:00Z-24:00), %s..%s, %s (00:00:00Z-21:00:00Z) (it holds",
				from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339),
				day(from), day(from.AddDate(0, 0, 1)), day(to.AddDate(0, 0, -1)), day(to))
		}
		before := want()
		code, _, stderr := runReport(t, pq, "--time-zone", "Europe/Moscow", "-o", filepath.Join(t.TempDir(), "r.html"))
		require.Equal(t, 2, code, stderr)
		if after := want(); !strings.Contains(stderr, before) { // Moscow's midnight passed meanwhile
			require.Contains(t, stderr, after)
		}
	})

	// Damage one file of day 5 in a copy of the parquet output.
	damaged := filepath.Join(t.TempDir(), "damaged")
	require.NoError(t, os.CopyFS(damaged, os.DirFS(pq)))
	victim := filepath.Join(damaged, "dt="+d(4), "pachca-audit-"+d(4)+".parquet")
	b, err := os.ReadFile(victim)
	require.NoError(t, err)
	b[len(b)/3] ^= 0xff
	require.NoError(t, os.WriteFile(victim, b, 0o600))
	// A copy whose file of day 5 is one arrow-go panics on (an invalid
	// logical type in its footer, found by report/reader's FuzzReadParquet),
	// put there with its manifest entry (bytes, sha256).
	panicky := filepath.Join(t.TempDir(), "panicky")
	require.NoError(t, os.CopyFS(panicky, os.DirFS(pq)))
	panicVictim := filepath.Join(panicky, "dt="+d(4), "pachca-audit-"+d(4)+".parquet")
	replaceWithManifest(t, panicVictim, fuzzInput(t, "../../report/reader/testdata/fuzz/FuzzReadParquet/da739e14c3f04b09"))
	// An output that holds only some days.
	partial := filepath.Join(t.TempDir(), "partial")
	reporttest.Write(t, reporttest.FileSink(t, partial, "parquet"), reporttest.Day0.AddDate(0, 0, 3), reporttest.Day0.AddDate(0, 0, 4), recs)

	lake := t.TempDir() // the Security Lake layout: no dt= folder at the root
	require.NoError(t, os.MkdirAll(filepath.Join(lake, "ext", "pachca-auth"), 0o700))
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"security lake directory", []string{lake, "--from", d(3), "--to", d(6)}, 2, "holds the Security Lake layout (ext/): OCSF events, which the report does not read"},
		{"no data", []string{t.TempDir(), "--from", d(3), "--to", d(6)}, 2, "no exported data"},
		{"no such directory", []string{filepath.Join(root, "nope"), "--from", d(3), "--to", d(6)}, 2, "no such directory"},
		{"period not covered", []string{partial, "--from", d(2), "--to", d(7)}, 2,
			"missing 2026-11-03, 2026-11-05..2026-11-07 (it holds 2026-11-04)"},
		{"damaged file", []string{damaged, "--from", d(3), "--to", d(6)}, 1, victim + ": damaged: sha256"},
		{"file arrow-go panics on", []string{panicky, "--from", d(3), "--to", d(6)}, 1, panicVictim + ": damaged: not a readable Parquet file (arrow-go: invalid logical type)"},
		{"no output given", []string{"--from", d(3), "--to", d(6)}, 2, "give -c pipeline.yaml or the directory"},
		{"both", []string{pq, "-c", cfg}, 2, "not both"},
		{"bad time", []string{pq, "--from", "yesterday-ish"}, 2, "--from"},
		{"empty period", []string{pq, "--from", d(3), "--to", d(3)}, 2, "is not before"},
		{"period of Moscow days not covered", []string{partial, "--time-zone", "Europe/Moscow", "--from", d(3), "--to", d(4)}, 2,
			"does not cover 2026-11-03T21:00:00Z .. 2026-11-04T21:00:00Z: missing 2026-11-03 (21:00:00Z-24:00) (it holds 2026-11-04)"},
		{"unknown zone", []string{pq, "--time-zone", "Europe/Moskva", "--from", d(3), "--to", d(6)}, 2,
			"pachca-export: report: --time-zone Europe/Moskva: unknown zone: give an IANA zone name such as Europe/Moscow, or UTC\n"},
		{"host's zone", []string{pq, "--time-zone", "Local", "--from", d(3), "--to", d(6)}, 2,
			`report: --time-zone "Local": give an IANA zone name such as Europe/Moscow, or UTC`},
		{"today without --to", []string{pq, "--from", time.Now().UTC().Format(time.DateOnly)}, 2,
			"is not before today 00:00 UTC, where the period ends without --to: give --to (an RFC 3339 time) to report on today so far"},
		{"sink out of range", []string{"-c", cfg, "--sink", "7", "--from", d(3), "--to", d(6)}, 2, "--sink 7"},
		{"negative sink", []string{"-c", cfg, "--sink", "-2", "--from", d(3), "--to", d(6)}, 2, "--sink -2"},
		{"sink -1", []string{"-c", cfg, "--sink", "-1", "--from", d(3), "--to", d(6)}, 2, "--sink -1"},
		{"unknown flag after the directory", []string{pq, "--frm", d(3)}, 2, "unknown flag --frm (did you mean --from?)"},
		{"kafka sink", []string{"-c", cfg, "--sink", "0", "--from", d(3), "--to", d(6)}, 2, "sinks[0] is kafka"},
		{"ocsf sink", []string{"-c", cfg, "--sink", "1", "--from", d(3), "--to", d(6)}, 2,
			"sinks[1] writes OCSF events (schema: ocsf): the report reads only pachca.audit.v1 output"},
		{"only ocsf sinks", []string{"-c", onlyOCSF, "--from", d(3), "--to", d(6)}, 2,
			"has no parquet, ndjson or s3 sink of schema pachca.audit.v1 to read: the report cannot read OCSF events"},
		{"ocsf directory", []string{ocsfDir, "--from", d(3), "--to", d(6)}, 2,
			`schema_version "ocsf.1.3.0": the report reads only pachca.audit.v1 output`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "r.html")
			code, _, stderr := runReport(t, append(tc.args, "-o", out)...)
			require.Equal(t, tc.code, code, stderr)
			require.Contains(t, stderr, tc.msg)
			require.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %s", stderr)
			require.NotContains(t, stderr, "goroutine")
			_, err := os.Stat(out)
			require.ErrorIs(t, err, os.ErrNotExist, "no page after a failure")
			entries, _ := os.ReadDir(filepath.Dir(out))
			require.Empty(t, entries, "no temporary file left")
		})
	}
}

// fuzzInput is the []byte input of a file of a fuzz target's corpus
// (testdata/fuzz/FuzzXxx/..., as go test writes it).
func fuzzInput(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := strings.Split(string(b), "\n")
	require.Equal(t, "go test fuzz v1", lines[0])
	in, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	require.NoError(t, err)
	return []byte(in)
}

// replaceWithManifest writes b over the data file at path and records its
// size and sha256 in the day's manifest, as a tool that rewrote both would.
func replaceWithManifest(t *testing.T, path string, b []byte) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, b, 0o600))
	mpath := filepath.Join(filepath.Dir(path), sinks.ManifestName)
	mb, err := os.ReadFile(mpath)
	require.NoError(t, err)
	m, err := sinks.DecodeManifest(mb)
	require.NoError(t, err)
	f, ok := m.File(filepath.Base(path))
	require.True(t, ok)
	f.Bytes, f.SHA256 = int64(len(b)), sinks.Sum(b)
	m.Put(f)
	require.NoError(t, os.WriteFile(mpath, m.Encode(), 0o600))
}

// tree lists every file and directory under dir with its size, mode and
// modification time.
func tree(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	require.NoError(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %d %s %s\n", path, fi.Size(), fi.Mode(), fi.ModTime().Format(time.RFC3339Nano))
		return nil
	}))
	return b.String()
}

// TestReportFromS3 reads what the s3 sink wrote to a real MinIO, copying
// each Parquet object to the sink's temp_dir and removing it once read.
func TestReportFromS3(t *testing.T) {
	srv := miniotest.Start(t)
	srv.CreateBucket("audit")
	cfg := s3sink.Config{Bucket: "audit", Prefix: "pachca", Region: srv.Region, Endpoint: srv.Endpoint, ForcePathStyle: true,
		AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey}
	f, err := parquetfmt.Format("zstd")
	require.NoError(t, err)
	cfg.SetDefaults()
	sink, err := s3sink.New(t.Context(), cfg, f)
	require.NoError(t, err)
	recs := reporttest.Dataset()
	reporttest.Write(t, sink, reporttest.Day0, reporttest.Day0.AddDate(0, 0, 3), recs)
	require.NoError(t, sink.Close(t.Context()))

	s3Config := func(tempDir string) string {
		return writeConfig(t, "http://127.0.0.1:1", "x", fmt.Sprintf(`source:
  base_url: %%BASE%%
  token: %%TOKEN%%
sinks:
  - type: s3
    bucket: audit
    prefix: pachca
    region: %s
    endpoint: %s
    force_path_style: true
    access_key_id: %s
    secret_access_key: %s
    temp_dir: %s
`, srv.Region, srv.Endpoint, srv.AccessKey, srv.SecretKey, tempDir))
	}
	tempDir := t.TempDir()
	path := s3Config(tempDir)
	out := filepath.Join(t.TempDir(), "r.html")
	code, _, stderr := runReport(t, "-c", path, "--from", "2026-11-01", "--to", "2026-11-04", "-o", out)
	require.Equal(t, 0, code, stderr)
	left, err := os.ReadDir(tempDir)
	require.NoError(t, err)
	require.Empty(t, left, "every copy removed")
	want := 0
	for _, r := range recs {
		if r.CreatedAt < reporttest.Day0.AddDate(0, 0, 3).UnixMilli() {
			want++
		}
	}
	require.Equal(t, group3(int64(want)), eventsOnPage(t, out))
	require.NotContains(t, stderr, srv.SecretKey)

	code, _, stderr = runReport(t, "-c", path, "--from", "2026-11-01", "--to", "2026-11-06", "-o", out)
	require.Equal(t, 2, code, stderr)
	require.Contains(t, stderr, "s3://audit/pachca/ does not cover")
	require.Contains(t, stderr, "missing 2026-11-04..2026-11-05")

	// The copies go to temp_dir: one that does not exist fails the report.
	noTemp := filepath.Join(t.TempDir(), "nope")
	code, _, stderr = runReport(t, "-c", s3Config(noTemp), "--from", "2026-11-01", "--to", "2026-11-04", "-o", out)
	require.Equal(t, 1, code, stderr)
	require.Contains(t, stderr, "s3://audit/pachca/dt=2026-11-01/pachca-audit-2026-11-01.parquet: read: temporary directory "+noTemp+" takes no copy to read: no such file or directory (set the S3 sink's temp_dir, or TMPDIR, to a writable directory)")
}

// TestDemoWritesReport: make demo ends with the report of its week and says
// where it is.
func TestDemoWritesReport(t *testing.T) {
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := Main(t.Context(), []string{"demo", "--out", out, "--events", "3000"}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	page := filepath.Join(out, "report.html")
	require.Contains(t, stdout.String(), "demo: security digest of the week in "+page)
	require.Equal(t, "3,000", eventsOnPage(t, page))
}

// TestDemoAndReportJSONLogs: with --log-format json every line the demo
// and the report write on stderr is one JSON object, the report's line
// too (was: "report: N events from ..." as plain text in the demo, and the
// report took no --log-format).
func TestDemoAndReportJSONLogs(t *testing.T) {
	out := t.TempDir()
	code, _, stderr := runMain(t, "demo", "--out", out, "--events", "500", "--log-format", "json")
	require.Equal(t, 0, code, stderr)
	page := filepath.Join(out, "report.html")
	var written []map[string]any
	for _, r := range jsonLines(t, stderr) {
		if r["out"] == page {
			written = append(written, r)
		}
	}
	require.Len(t, written, 1, "the report's record: %s", stderr)
	require.EqualValues(t, 500, written[0]["events"])

	page2 := filepath.Join(t.TempDir(), "r.html")
	code, _, stderr = runReport(t, filepath.Join(out, "parquet"), "-o", page2, "--log-format", "json")
	require.Equal(t, 0, code, stderr)
	recs := jsonLines(t, stderr)
	require.Len(t, recs, 1, stderr)
	require.Equal(t, page2, recs[0]["out"])
	require.EqualValues(t, 500, recs[0]["events"])
	// The period the defaults made, the 7 days before today 00:00 UTC, is
	// named (was: only the events and files: today's absence unsaid).
	to, err := time.Parse(time.RFC3339, fmt.Sprint(recs[0]["to"]))
	require.NoError(t, err, "%v", recs[0])
	require.Equal(t, to.Truncate(24*time.Hour), to)
	require.WithinDuration(t, time.Now(), to, 24*time.Hour)
	require.Equal(t, to.AddDate(0, 0, -7).Format(time.RFC3339), recs[0]["from"])
}

// TestReportInterrupted: a report stopped by a signal says so, leaves no
// page, and does not speak of days left unexported, as it exports nothing
// (was: "interrupted; days not delivered stay unexported and the next run
// resumes them", the message of run).
func TestReportInterrupted(t *testing.T) {
	dir := t.TempDir()
	pq := filepath.Join(dir, "parquet")
	reporttest.Write(t, reporttest.FileSink(t, pq, "parquet"), reporttest.Day0, reporttest.Day0.AddDate(0, 0, 6), reporttest.Dataset())
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // as the signal handler does
	out := filepath.Join(dir, "report.html")
	var stdout, stderr bytes.Buffer
	code := Main(ctx, []string{"report", pq, "--from", "2026-11-04", "--to", "2026-11-07", "-o", out}, &stdout, &stderr)
	require.Equal(t, 1, code, stderr.String())
	require.Equal(t, "pachca-export: report: interrupted; no page written\n", stderr.String())
	require.NoFileExists(t, out)
}

// TestVerifyInterrupted: a verify --against-api stopped by a signal says that it was,
// naming itself, not that days stay unexported (was: run's message, which
// every command printed).
func TestVerifyInterrupted(t *testing.T) {
	path := writeConfig(t, startSim(t), secretToken, goodConfig)
	from := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -3)
	code, _, stderr := runMain(t, "run", "-c", path, "--from", from.Format(time.DateOnly), "--to", from.AddDate(0, 0, 1).Format(time.DateOnly))
	require.Equal(t, 0, code, stderr)
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // as the signal handler does
	var stdout, errOut bytes.Buffer
	code = Main(ctx, []string{"verify", "-c", path, "--against-api"}, &stdout, &errOut)
	require.Equal(t, 1, code, errOut.String())
	require.Equal(t, "pachca-export: verify: interrupted\n", errOut.String())
}
