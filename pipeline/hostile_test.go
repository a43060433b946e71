package pipeline_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/internal/timestamp"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/shape"
	"github.com/pachca-export/pachca-export/sinkset"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
	"github.com/pachca-export/pachca-export/transform"
)

// craftedAPI serves events, raw JSON objects, as GET /audit_events: those
// whose created_at (the member of that exact name) lies in [start_time,
// end_time], newest first, on one page. It returns the base URL.
func craftedAPI(t *testing.T, events ...string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		start, err1 := time.Parse(time.RFC3339Nano, q.Get("start_time"))
		end, err2 := time.Parse(time.RFC3339Nano, q.Get("end_time"))
		if err1 != nil || err2 != nil {
			http.Error(w, `{"errors":[{"key":"start_time","code":"invalid"}]}`, http.StatusBadRequest)
			return
		}
		type event struct {
			at  int64
			raw string
		}
		var page []event
		for _, raw := range events {
			var members map[string]json.RawMessage
			var created string
			if json.Unmarshal([]byte(raw), &members) != nil || json.Unmarshal(members["created_at"], &created) != nil {
				continue
			}
			if at, ok := timestamp.Parse([]byte(created)); ok && at >= start.UnixMilli() && at <= end.UnixMilli() {
				page = append(page, event{at, raw})
			}
		}
		slices.SortStableFunc(page, func(a, b event) int { return int(b.at - a.at) })
		raws := make([]string, len(page))
		for i, ev := range page {
			raws[i] = ev.raw
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"data":[` + strings.Join(raws, ",") + `],"meta":{"paginate":{"has_next":false,"has_prev":false,"next_page":null,"prev_page":null}}}`))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestMemberNamesDifferingInCase: an event that also carries "CREATED_AT"
// (or "ID") beside created_at is placed by its created_at, as the transform
// reads it, and exported (was: the fetcher read the other spelling, as
// encoding/json matches names without regard to case, placed the event in
// the window of the next day, and the run left it out of that day without
// a word: exit 0, no dead letter).
func TestMemberNamesDifferingInCase(t *testing.T) {
	d := day0()
	at := func(days int) string {
		return d.AddDate(0, 0, days).Add(10 * time.Hour).Format("2006-01-02T15:04:05.000Z")
	}
	cfg := testConfig(t, craftedAPI(t,
		`{"id":"plain","created_at":"`+at(0)+`","event_key":"user_login","entity_id":"1","entity_type":"user","actor_id":"1","actor_type":"user","details":{}}`,
		`{"id":"upper","created_at":"`+at(0)+`","CREATED_AT":"`+at(1)+`","event_key":"user_login","entity_id":"1","entity_type":"user","actor_id":"1","actor_type":"user","details":{}}`,
		`{"id":"later","ID":"other","created_at":"`+at(1)+`","Created_At":"`+at(0)+`","event_key":"user_logout","entity_id":"1","entity_type":"user","actor_id":"1","actor_type":"user","details":{}}`,
	))
	sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: d, To: d.AddDate(0, 0, 2)}, false)
	require.NoError(t, err)
	require.Zero(t, sum.DeadLetters)
	got := map[string]string{}
	for _, l := range exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir) {
		got[l.Fields["id"].(string)] = l.Fields["created_at"].(string)
	}
	require.Equal(t, map[string]string{"plain": at(0), "upper": at(0), "later": at(1)}, got)
}

// unicodeLines splits text as Python's str.splitlines does (Java's
// Scanner.nextLine ends a line on a subset of these): on \n, \r, \v, \f,
// \x1c-\x1e, U+0085, U+2028 and U+2029. Empty lines are left out.
func unicodeLines(text string) []string {
	return strings.FieldsFunc(text, func(r rune) bool {
		return strings.ContainsRune("\n\r\v\f\x1c\x1d\x1e\u0085\u2028\u2029", r)
	})
}

// TestLineBreaksInValuesKeepOneLine: a chat name and a user agent holding
// U+0085, U+2028 and U+2029 (a member of the workspace chooses both) leave
// each event on one line of the schema v1 and OCSF NDJSON files and of the
// dead-letter file, for readers that end lines where Unicode does, with
// the values read back whole (was: OCSF lines and dead letters carried
// them raw, and schema v1 lines U+0085: such a reader cut the event into
// pieces that are not JSON, and lost it).
func TestLineBreaksInValuesKeepOneLine(t *testing.T) {
	d := day0()
	at := d.Add(10 * time.Hour).Format("2006-01-02T15:04:05.000Z")
	const name = "q1\u0085{\"id\":\"forged\"}\u2028x\u2029y" // the breaks raw, as JSON lets them stand
	quoted := strings.ReplaceAll(name, `"`, `\"`)
	cfg := testConfig(t, craftedAPI(t,
		`{"id":"ev-1","created_at":"`+at+`","event_key":"chat_created","entity_id":"7","entity_type":"Chat","actor_id":"5","actor_type":"User","details":{"name":"`+quoted+`","public_access":false},"ip_address":"10.0.0.1","user_agent":"ua`+quoted+`"}`,
		`{"id":null,"created_at":"`+at+`","event_key":"chat_created","details":{"name":"`+quoted+`"}}`,
	))
	dir := filepath.Dir(cfg.Sinks[0].File.Dir)
	cfg.Sinks = []config.Sink{
		{Type: "ndjson", File: &config.FileSink{Dir: filepath.Join(dir, "v1")}},
		{Type: "ndjson", File: &config.FileSink{Dir: filepath.Join(dir, "ocsf"), Keys: shape.Keys{Schema: shape.SchemaOCSF}}},
	}
	require.NoError(t, cfg.Validate())
	sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: d, To: d.AddDate(0, 0, 1)}, false)
	require.NoError(t, err)
	require.EqualValues(t, 1, sum.Events)
	require.EqualValues(t, 1, sum.DeadLetters)

	read := func(glob string) []string {
		files, err := filepath.Glob(glob)
		require.NoError(t, err)
		require.Len(t, files, 1, glob)
		b, err := os.ReadFile(files[0])
		require.NoError(t, err)
		lines := unicodeLines(string(b))
		require.Len(t, lines, 1, "%s: one event, one line: %q", files[0], b)
		return lines
	}
	day := "dt=" + d.Format(time.DateOnly)
	var v1 struct {
		UserAgent   string `json:"user_agent"`
		DetailsJSON string `json:"details_json"`
		DetailsName string `json:"details_name"`
	}
	require.NoError(t, json.Unmarshal([]byte(read(filepath.Join(dir, "v1", day, "*.ndjson"))[0]), &v1))
	require.Equal(t, "ua"+name, v1.UserAgent)
	require.Equal(t, name, v1.DetailsName)
	require.Equal(t, `{"name":"`+quoted+`","public_access":false}`, v1.DetailsJSON)

	var ev struct {
		HTTPRequest struct {
			UserAgent string `json:"user_agent"`
		} `json:"http_request"`
		Unmapped struct {
			Details json.RawMessage `json:"details"`
		} `json:"unmapped"`
	}
	require.NoError(t, json.Unmarshal([]byte(read(filepath.Join(dir, "ocsf", day, "*.ndjson"))[0]), &ev))
	require.Equal(t, "ua"+name, ev.HTTPRequest.UserAgent)
	var details map[string]any
	require.NoError(t, json.Unmarshal(ev.Unmapped.Details, &details))
	require.Equal(t, map[string]any{"name": name, "public_access": false}, details)

	var dl struct{ Raw string }
	require.NoError(t, json.Unmarshal([]byte(read(filepath.Join(cfg.State.Dir, "*", "dead_letter", day, "*.ndjson"))[0]), &dl))
	require.Contains(t, dl.Raw, quoted, "the dead letter keeps the event as sent")
}

// TestDeadLetterKeepsBytesNotUTF8: a dead letter whose event holds bytes
// that are not UTF-8 keeps them, base64 in raw_base64, beside raw (where
// each reads U+FFFD); a dead letter of valid UTF-8 has no raw_base64, raw
// being its bytes (was: the bytes were lost, though a dead letter is the
// only copy of what the API sent).
func TestDeadLetterKeepsBytesNotUTF8(t *testing.T) {
	d := day0()
	at := d.Add(10 * time.Hour).Format("2006-01-02T15:04:05.000Z")
	notUTF8 := `{"id":"","created_at":"` + at + `","event_key":"user_login","details":{"note":"bad ` + "\xff\xfe\xc3" + ` bytes"}}`
	valid := `{"id":null,"created_at":"` + at + `","event_key":"user_logout","details":{"note":"ок"}}`
	cfg := testConfig(t, craftedAPI(t, notUTF8, valid))
	sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: d, To: d.AddDate(0, 0, 1)}, false)
	require.NoError(t, err)
	require.EqualValues(t, 2, sum.DeadLetters)

	files, err := filepath.Glob(filepath.Join(cfg.State.Dir, "*", "dead_letter", "dt="+d.Format(time.DateOnly), "*.ndjson"))
	require.NoError(t, err)
	require.Len(t, files, 1)
	b, err := os.ReadFile(files[0])
	require.NoError(t, err)
	require.True(t, utf8.Valid(b), "the dead-letter file is UTF-8")
	got := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var dl map[string]string
		require.NoError(t, json.Unmarshal([]byte(line), &dl))
		raw := []byte(dl["raw"])
		if enc, ok := dl["raw_base64"]; ok {
			raw, err = base64.StdEncoding.DecodeString(enc)
			require.NoError(t, err)
			require.Contains(t, dl["raw"], "bad \uFFFD", "raw reads U+FFFD for what is not UTF-8")
		}
		got[string(raw)] = true
	}
	require.Contains(t, got, notUTF8, "the bytes the API sent, exactly")
	require.Contains(t, got, valid)
	require.NotContains(t, string(b), `"raw_base64":"`+base64.StdEncoding.EncodeToString([]byte(valid)), "no raw_base64 for valid UTF-8")
	require.Equal(t, 1, strings.Count(string(b), `"raw_base64"`))
}

// TestDeadLettersOfAPartThenTheDay: a day exported in part (a range that
// ends within it), then whole, keeps each dead letter in one file: the
// part's file, all of whose events the day's holds, goes (was: it stayed,
// each of its dead letters twice in the day's directory). A part's file
// with an event the day's lacks stays.
func TestDeadLettersOfAPartThenTheDay(t *testing.T) {
	// The events of day n: two that cannot be parsed, one that can.
	events := func(n int) (kept, gone, ok string) {
		at := func(h int) string {
			return day0().AddDate(0, 0, n).Add(time.Duration(h) * time.Hour).Format("2006-01-02T15:04:05.000Z")
		}
		return `{"id":null,"created_at":"` + at(6) + `","event_key":"user_login"}`,
			`{"id":"","created_at":"` + at(7) + `","event_key":"user_login"}`,
			`{"id":"ev-` + at(8) + `","created_at":"` + at(8) + `","event_key":"user_login","entity_id":"1","entity_type":"user","actor_id":"1","actor_type":"user","details":{}}`
	}
	var api atomic.Value // the base URL of the API the front serves
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := http.Get(api.Load().(string) + r.URL.RequestURI())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	t.Cleanup(front.Close)
	cfg := testConfig(t, front.URL)
	// letters are the raw texts of day n's dead letters, by file.
	letters := func(n int) map[string][]string {
		files, err := filepath.Glob(filepath.Join(cfg.State.Dir, "*", "dead_letter", "dt="+day0().AddDate(0, 0, n).Format(time.DateOnly), "*.ndjson"))
		require.NoError(t, err)
		out := map[string][]string{}
		for _, f := range files {
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			for line := range strings.Lines(string(b)) {
				var dl struct{ Raw string }
				require.NoError(t, json.Unmarshal([]byte(line), &dl))
				out[filepath.Base(f)] = append(out[filepath.Base(f)], dl.Raw)
			}
		}
		return out
	}
	// run exports day n's first half, then the whole day.
	run := func(n int, first, then string) {
		t.Helper()
		d := day0().AddDate(0, 0, n)
		for i, to := range []time.Time{d.Add(12 * time.Hour), d.AddDate(0, 0, 1)} {
			api.Store([]string{first, then}[i])
			_, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: d, To: to}, false)
			require.NoError(t, err)
		}
	}

	kept, gone, ok := events(0)
	run(0, craftedAPI(t, kept, gone, ok), craftedAPI(t, kept, gone, ok))
	got := letters(0)
	require.Len(t, got, 1, "the part's file went: the day's holds its events: %v", got)
	require.ElementsMatch(t, []string{kept, gone}, got["pachca-audit-"+day0().Format(time.DateOnly)+".ndjson"])

	// The part holds one the API no longer returns: its file stays.
	kept, gone, ok = events(1)
	run(1, craftedAPI(t, kept, gone, ok), craftedAPI(t, kept, ok))
	got = letters(1)
	require.Len(t, got, 2, "the part's file stays: %v", got)
	require.Equal(t, []string{kept}, got["pachca-audit-"+day0().AddDate(0, 0, 1).Format(time.DateOnly)+".ndjson"])
}

// TestDeadLettersStaleTempRemoved: the temporary file of a dead-letter
// file that a process killed while writing it left is removed when the
// day's dead letters are written again (was: kept for ever beside them).
func TestDeadLettersStaleTempRemoved(t *testing.T) {
	d := day0()
	at := d.Add(10 * time.Hour).Format("2006-01-02T15:04:05.000Z")
	cfg := testConfig(t, craftedAPI(t, `{"id":"","created_at":"`+at+`","event_key":"user_login"}`))
	cfg.Output.DeadLetterDir = filepath.Join(t.TempDir(), "dead")
	dir := filepath.Join(cfg.Output.DeadLetterDir, "dt="+d.Format(time.DateOnly))
	require.NoError(t, os.MkdirAll(dir, 0o700))
	stale := filepath.Join(dir, ".pachca-audit-"+d.Format(time.DateOnly)+".ndjson.tmp-1234")
	require.NoError(t, os.WriteFile(stale, []byte(`{"error":"transform: unparseable ev`), 0o600))
	sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: d, To: d.AddDate(0, 0, 1)}, false)
	require.NoError(t, err)
	require.EqualValues(t, 1, sum.DeadLetters)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "the dead-letter file alone")
	require.Equal(t, "pachca-audit-"+d.Format(time.DateOnly)+".ndjson", entries[0].Name())
}

// TestDeadLettersOfTwoConfigurations: two configurations (two workspaces)
// that share an output.dead_letter_dir write the same day's file: it keeps
// the dead letters of both, each once however often it is rerun (was: the
// later run replaced the file, the other's dead letters lost). A link
// planted at the file's name is not read into it.
func TestDeadLettersOfTwoConfigurations(t *testing.T) {
	d := day0()
	at := d.Add(10 * time.Hour).Format("2006-01-02T15:04:05.000Z")
	shared := filepath.Join(t.TempDir(), "dead")
	secret := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secret, []byte(`{"raw":"the secret"}`+"\n"), 0o600))
	require.NoError(t, os.MkdirAll(filepath.Join(shared, "dt="+d.Format(time.DateOnly)), 0o700))
	file := filepath.Join(shared, "dt="+d.Format(time.DateOnly), "pachca-audit-"+d.Format(time.DateOnly)+".ndjson")
	require.NoError(t, os.Symlink(secret, file))

	var raws []string
	run := func(cfg *config.Config) {
		t.Helper()
		sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: d, To: d.AddDate(0, 0, 1)}, false)
		require.NoError(t, err)
		require.EqualValues(t, 1, sum.DeadLetters)
	}
	var cfgs []*config.Config
	for _, ws := range []string{"acme", "globex"} {
		raw := `{"id":"","created_at":"` + at + `","event_key":"user_login","workspace":"` + ws + `"}`
		raws = append(raws, raw)
		cfg := testConfig(t, craftedAPI(t, raw))
		cfg.Output.DeadLetterDir = shared
		cfgs = append(cfgs, cfg)
	}
	for _, cfg := range []*config.Config{cfgs[0], cfgs[1], cfgs[0], cfgs[1]} {
		run(cfg)
	}
	fi, err := os.Lstat(file)
	require.NoError(t, err)
	require.True(t, fi.Mode().IsRegular(), "the link is replaced by the file")
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	require.NotContains(t, string(b), "the secret")
	var got []string
	for line := range strings.Lines(string(b)) {
		var dl struct{ Raw string }
		require.NoError(t, json.Unmarshal([]byte(line), &dl))
		got = append(got, dl.Raw)
	}
	require.ElementsMatch(t, raws, got, "each configuration's dead letter, once")
}

// TestDeadLettersWrittenAsFound: a dead letter goes to the disk (the
// temporary file of its day's dead-letter file) as it is found, before the
// sinks get the events read with it (was: every dead letter of the day
// held in memory until its end, 105 MB of RSS for 20,000 of 1 KB; a day
// whose every event cannot be parsed, an API that changed its created_at,
// would exhaust the memory).
func TestDeadLettersWrittenAsFound(t *testing.T) {
	d := day0()
	at := d.Add(10 * time.Hour).Format("2006-01-02T15:04:05.000Z")
	big := `{"id":"","created_at":"` + at + `","event_key":"user_login","details":{"pad":"` + strings.Repeat("x", 200<<10) + `"}}`
	ok := `{"id":"ev-1","created_at":"` + at + `","event_key":"user_login","entity_id":"1","entity_type":"user","actor_id":"1","actor_type":"user","details":{}}`
	cfg := testConfig(t, craftedAPI(t, big, ok))
	cfg.Output.DeadLetterDir = filepath.Join(t.TempDir(), "dead")
	set, err := sinkset.Build(t.Context(), cfg.Sinks, nil)
	require.NoError(t, err)
	var onDisk int64 = -1 // the dead letters' bytes on disk when the sink got its events
	sink := writeSink{set.Sinks[0], func() {
		if onDisk < 0 {
			onDisk = 0
			temps, err := filepath.Glob(filepath.Join(cfg.Output.DeadLetterDir, "dt=*", ".pachca-audit-*.tmp-*"))
			require.NoError(t, err)
			for _, p := range temps {
				fi, err := os.Stat(p)
				require.NoError(t, err)
				onDisk += fi.Size()
			}
		}
	}}
	sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t), Sinks: []sinks.Sink{sink}}, pipeline.Range{From: d, To: d.AddDate(0, 0, 1)}, false)
	require.NoError(t, err)
	require.EqualValues(t, 1, sum.DeadLetters)
	require.Greater(t, onDisk, int64(len(big)), "the dead letter was on disk")
}

// writeSink is a sink whose writers call before at each write.
type writeSink struct {
	sinks.Sink
	before func()
}

func (s writeSink) Open(ctx context.Context, p sinks.Partition) (sinks.Writer, error) {
	w, err := s.Sink.Open(ctx, p)
	if err != nil {
		return nil, err
	}
	return writeWriter{w, s.before}, nil
}

type writeWriter struct {
	sinks.Writer
	before func()
}

func (w writeWriter) Write(ctx context.Context, recs []transform.Record) error {
	w.before()
	return w.Writer.Write(ctx, recs)
}
