package verify_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/s3sink"
	"github.com/pachca-export/pachca-export/sinks/shape"
	"github.com/pachca-export/pachca-export/state"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
	"github.com/pachca-export/pachca-export/testkit/miniotest"
	"github.com/pachca-export/pachca-export/verify"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
}

func day0() time.Time { return time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -10) }

func date(n int) string { return day0().AddDate(0, 0, n).Format(time.DateOnly) }

// startSim starts the simulator of the exports here: 900 events over three
// days from day0, seed 7; closed with the test.
func startSim(t *testing.T) (*simulator.Server, string) { return startSimOf(t, 900, 3) }

// startSimOf starts a simulator of events over days from day0, seed 7;
// closed with the test.
func startSimOf(t *testing.T, events, days int) (*simulator.Server, string) {
	t.Helper()
	sc := simulator.DefaultConfig()
	sc.Events, sc.From, sc.To, sc.Seed = events, day0(), day0().AddDate(0, 0, days), 7
	sim, err := simulator.New(sc)
	require.NoError(t, err)
	base, err := sim.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { sim.Close() })
	return sim, base
}

// export runs a three-day export of a simulated workspace to an NDJSON and
// a Parquet directory, manifests signed, and returns the configuration, the
// simulator and the public key.
func export(t *testing.T) (*config.Config, *simulator.Server, ed25519.PublicKey) {
	t.Helper()
	return exportUntil(t, day0().AddDate(0, 0, 3))
}

// exportUntil is export of the simulated workspace from day0 up to to.
func exportUntil(t *testing.T, to time.Time) (*config.Config, *simulator.Server, ed25519.PublicKey) {
	t.Helper()
	sim, base := startSim(t)
	cfg, pub := exportFrom(t, base, to)
	return cfg, sim, pub
}

// exportFrom is export of the API at base from day0 up to to.
func exportFrom(t *testing.T, base string, to time.Time) (*config.Config, ed25519.PublicKey) {
	t.Helper()
	dir := t.TempDir()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	keyFile := filepath.Join(dir, "signing.pem")
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))

	cfg := config.Default()
	cfg.File = "test.yaml"
	cfg.Source.BaseURL, cfg.Source.Token, cfg.Source.Workspace = base, "sim-token", "acme"
	cfg.Source.RequestsPerSecond, cfg.Source.Timeout = 500, 5*time.Second
	cfg.State.Dir = filepath.Join(dir, "state")
	cfg.Signing.PrivateKeyFile = keyFile
	cfg.Sinks = []config.Sink{
		{Type: "ndjson", File: &config.FileSink{Dir: filepath.Join(dir, "ndjson"), Compression: "gzip"}},
		{Type: "parquet", File: &config.FileSink{Dir: filepath.Join(dir, "parquet")}},
	}
	require.NoError(t, cfg.Validate())
	_, err = pipeline.Run(t.Context(), pipeline.Options{Config: &cfg}, pipeline.Range{From: day0(), To: to}, false)
	require.NoError(t, err)
	return &cfg, pub
}

// verdicts maps "day sink-index" to the line, for the lines of rep.
// requireVerdicts checks that the lines of got named in want (by "day
// sinks[i]") failed with its words in their detail, and every other one is OK.
func requireVerdicts(t *testing.T, got map[string]verify.Line, want map[string]string) {
	t.Helper()
	for k, l := range got {
		if w, bad := want[k]; bad {
			require.Equal(t, verify.Fail, l.Status, k)
			require.Contains(t, l.Detail, w, k)
		} else {
			require.Equal(t, verify.OK, l.Status, "%s: %s", k, l.Detail)
		}
	}
}

func verdicts(t *testing.T, lines []verify.Line) map[string]verify.Line {
	t.Helper()
	out := map[string]verify.Line{}
	for _, l := range lines {
		idx := l.Sink[:strings.Index(l.Sink, "]")+1]
		out[l.Day+" "+idx] = l
	}
	return out
}

// TestCleanExport: every day of both sinks verifies, signatures included.
func TestCleanExport(t *testing.T) {
	cfg, _, pub := export(t)
	rep, err := verify.Run(t.Context(), verify.Options{Config: cfg, PublicKey: pub})
	require.NoError(t, err)
	require.False(t, rep.Failed(), "%v", rep.Lines)
	require.Len(t, rep.Lines, 6, "three days, two sinks")
	for _, l := range rep.Lines {
		require.Equal(t, verify.OK, l.Status, "%+v", l)
		require.Contains(t, l.Detail, "signature good")
	}
	// Another key: every manifest is reported.
	other, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	rep, err = verify.Run(t.Context(), verify.Options{Config: cfg, PublicKey: other})
	require.NoError(t, err)
	require.True(t, rep.Failed())
	for _, l := range rep.Lines {
		require.Contains(t, l.Detail, "not by the given key")
	}
}

// TestDamageIsReported: each kind of damage is reported on its day and
// sink, and only there.
func TestDamageIsReported(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, nd, pq string)
		want   map[string]string // "day sinks[i]" -> a substring of its FAIL line
	}{
		{"deleted file", func(t *testing.T, nd, pq string) {
			require.NoError(t, os.Remove(dataFile(nd, 1, ".ndjson.gz")))
		}, map[string]string{date(1) + " sinks[0]": "pachca-audit-" + date(1) + ".ndjson.gz is missing"}},
		{"edited byte", func(t *testing.T, nd, pq string) {
			flipByte(t, dataFile(pq, 2, ".parquet"))
		}, map[string]string{date(2) + " sinks[1]": "sha256"}},
		{"edited byte of a compressed file", func(t *testing.T, nd, pq string) {
			flipByte(t, dataFile(nd, 0, ".ndjson.gz"))
		}, map[string]string{date(0) + " sinks[0]": "(edited or damaged)"}},
		{"removed manifest", func(t *testing.T, nd, pq string) {
			require.NoError(t, os.Remove(filepath.Join(nd, "dt="+date(1), sinks.ManifestName)))
		}, map[string]string{
			date(1) + " sinks[0]": "no _manifest.json",
			// A run rewriting day 1 shows the same meanwhile.
			date(2) + " sinks[0]": "(a day deleted, edited or reordered, or a run rewriting the days before it: verify again once it ends, or, if it was killed, after the next run, which links the days again)",
		}},
		{"manifest a directory", func(t *testing.T, nd, pq string) {
			path := filepath.Join(nd, "dt="+date(1), sinks.ManifestName)
			require.NoError(t, os.Remove(path))
			require.NoError(t, os.Mkdir(path, 0o700))
		}, map[string]string{
			date(1) + " sinks[0]": "_manifest.json cannot be read",
			date(2) + " sinks[0]": "chain broken",
		}},
		{"reordered chain", func(t *testing.T, nd, pq string) {
			swapFiles(t, filepath.Join(pq, "dt="+date(0), sinks.ManifestName), filepath.Join(pq, "dt="+date(1), sinks.ManifestName))
		}, map[string]string{
			date(0) + " sinks[1]": "is the manifest of " + date(1),
			date(1) + " sinks[1]": "chain broken",
			date(2) + " sinks[1]": "chain broken",
		}},
		{"manifest edited", func(t *testing.T, nd, pq string) {
			path := filepath.Join(nd, "dt="+date(0), sinks.ManifestName)
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(path, bytes.Replace(b, []byte(`"run_id": "`), []byte(`"run_id": "x`), 1), 0o600))
		}, map[string]string{
			date(0) + " sinks[0]": "signature: the signature does not match its content",
			date(1) + " sinks[0]": "chain broken",
		}},
		{"key added to a signed manifest", func(t *testing.T, nd, pq string) {
			path := filepath.Join(nd, "dt="+date(2), sinks.ManifestName)
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(path, bytes.Replace(b, []byte(`"day": `), []byte(`"note": "reviewed", "Records": 1, "day": `), 1), 0o600))
		}, map[string]string{date(2) + " sinks[0]": "_manifest.json is not as the exporter writes it"}},
		{"deleted day", func(t *testing.T, nd, pq string) {
			require.NoError(t, os.RemoveAll(filepath.Join(pq, "dt="+date(2))))
		}, map[string]string{date(2) + " sinks[1]": "the state records the day as exported"}},
		// Was: no line for the day, and OK for the last one.
		{"emptied day, its directory left", func(t *testing.T, nd, pq string) {
			for _, day := range []int{1, 2} {
				dir := filepath.Join(nd, "dt="+date(day))
				require.NoError(t, os.RemoveAll(dir))
				require.NoError(t, os.Mkdir(dir, 0o750))
			}
		}, map[string]string{
			date(1) + " sinks[0]": "nothing here, but the state records the day as exported",
			date(2) + " sinks[0]": "nothing here, but the state records the day as exported",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, pub := export(t)
			testCfg = cfg
			tc.damage(t, cfg.Sinks[0].File.Dir, cfg.Sinks[1].File.Dir)
			rep, err := verify.Run(t.Context(), verify.Options{Config: cfg, PublicKey: pub})
			require.NoError(t, err)
			require.True(t, rep.Failed())
			got := verdicts(t, rep.Lines)
			require.Len(t, got, 6, "one line per day and sink: %v", rep.Lines)
			for k, l := range got {
				if want, bad := tc.want[k]; bad {
					require.Equal(t, verify.Fail, l.Status, k)
					require.Contains(t, l.Detail, want, k)
				} else {
					require.Equal(t, verify.OK, l.Status, "%s: %s", k, l.Detail)
				}
			}
		})
	}
}

// testCfg is the configuration of the case running, for damages that run
// an export themselves.
var testCfg *config.Config

func dataFile(dir string, day int, ext string) string {
	return filepath.Join(dir, "dt="+date(day), "pachca-audit-"+date(day)+ext)
}

func flipByte(t *testing.T, path string) {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	b[len(b)/2] ^= 0x20
	require.NoError(t, os.WriteFile(path, b, 0o600))
}

// TestAgainstAPIAndRepair: events the API published after the export are
// found on their day, in both sinks; --repair delivers them, and the
// output then holds every event exactly once.
func TestAgainstAPIAndRepair(t *testing.T) {
	cfg, sim, pub := export(t)
	var late []simulator.Event // published after the export
	for i := range 5 {
		late = append(late, sim.WriteEvent("user_login", day0().AddDate(0, 0, 1).Add(time.Hour+time.Duration(i)*time.Minute), 0))
	}

	rep, err := verify.Run(t.Context(), verify.Options{Config: cfg, PublicKey: pub, AgainstAPI: true})
	require.NoError(t, err)
	require.True(t, rep.Failed())
	got := verdicts(t, rep.Lines)
	for k, l := range got {
		if strings.HasPrefix(k, date(1)) {
			require.Equal(t, verify.Fail, l.Status)
			require.Contains(t, l.Detail, "5 event(s) the API has are missing")
			require.True(t, slices.ContainsFunc(late, func(ev simulator.Event) bool { return strings.Contains(l.Detail, ev.ID) }),
				"the line names late events: %s", l.Detail)
		} else {
			require.Equal(t, verify.OK, l.Status, "%s: %s", k, l.Detail)
			require.Contains(t, l.Detail, "all the API has")
		}
	}

	rep, err = verify.Run(t.Context(), verify.Options{Config: cfg, PublicKey: pub, Repair: true})
	require.NoError(t, err)
	require.Equal(t, []string{date(1)}, rep.Repaired)
	require.False(t, rep.Failed(), "%v", rep.After)
	require.Len(t, rep.After, 2)
	want := exporttest.Expected(sim, day0(), day0().AddDate(0, 0, 3))
	exporttest.Compare(t, want, exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir), "acme")
	exporttest.Compare(t, want, exporttest.ReadParquet(t, cfg.Sinks[1].File.Dir), "acme")

	rep, err = verify.Run(t.Context(), verify.Options{Config: cfg, PublicKey: pub, AgainstAPI: true})
	require.NoError(t, err)
	require.False(t, rep.Failed(), "%v", rep.Lines)
}

// restartWithout replaces sim, started by startSim at base, with the same
// API on the same address without the events written into it since.
func restartWithout(t *testing.T, sim *simulator.Server, base string) {
	t.Helper()
	u, err := url.Parse(base)
	require.NoError(t, err)
	require.NoError(t, sim.Close())
	sc := simulator.DefaultConfig()
	sc.Events, sc.From, sc.To, sc.Seed = 900, day0(), day0().AddDate(0, 0, 3), 7
	again, err := simulator.New(sc)
	require.NoError(t, err)
	_, err = again.Start(u.Host)
	require.NoError(t, err)
	t.Cleanup(func() { again.Close() })
}

// TestAgainstAPIEventsTheAPILacks: the API's log is immutable, so an event
// the output holds that the API does not return, on a day it holds whole,
// fails the day, naming it (was: OK, with "(1 no longer returned by it)");
// on the day straddling the retention edge, whose first events the API
// dropped, it is a note.
func TestAgainstAPIEventsTheAPILacks(t *testing.T) {
	sim, base := startSim(t)
	var extra []simulator.Event // exported, then no longer returned
	for d := 1; d <= 2; d++ {
		extra = append(extra, sim.WriteEvent("user_login", day0().AddDate(0, 0, d).Add(time.Hour), 0))
	}
	cfg, pub := exportFrom(t, base, day0().AddDate(0, 0, 3))
	restartWithout(t, sim, base)

	rep, err := verify.Run(t.Context(), verify.Options{Config: cfg, PublicKey: pub, AgainstAPI: true})
	require.NoError(t, err)
	require.True(t, rep.Failed())
	got := verdicts(t, rep.Lines)
	requireVerdicts(t, got, map[string]string{
		date(1) + " sinks[0]": "1 event(s) here the API does not return (" + extra[0].ID + ")",
		date(1) + " sinks[1]": "1 event(s) here the API does not return (" + extra[0].ID + ")",
		date(2) + " sinks[0]": "1 event(s) here the API does not return (" + extra[1].ID + ")",
		date(2) + " sinks[1]": "1 event(s) here the API does not return (" + extra[1].ID + ")",
	})

	// Day 2 straddles the retention edge: the API dropped its first hours.
	now := func() time.Time { return day0().AddDate(0, 0, 2).Add(2*time.Hour + cfg.Period.Retention) }
	rep, err = verify.Run(t.Context(), verify.Options{Config: cfg, PublicKey: pub, AgainstAPI: true, Now: now})
	require.NoError(t, err)
	require.False(t, rep.Failed(), "%v", rep.Lines)
	got = verdicts(t, rep.Lines)
	for _, sink := range []string{"sinks[0]", "sinks[1]"} {
		require.Contains(t, got[date(2)+" "+sink].Detail, "all the API has (1 no longer returned by it: the day straddles the API's retention edge)")
		// Day 1, past the edge, is not compared, and says so (was: its
		// line read as if --against-api had not been given).
		require.Contains(t, got[date(1)+" "+sink].Detail, "not compared with the API: the day is past period.retention")
	}
}

// TestAgainstAPIDeadLetters: a day the API returns an event of that
// cannot be parsed, and two different events with one id, which the run
// dead-lettered (one of the two), is OK, and its line says how many of the
// API's events are dead letters, why, and where (was: "all the API has",
// not a word of them: the analyst took it for every event).
func TestAgainstAPIDeadLetters(t *testing.T) {
	sim, _ := startSim(t)
	last := day0().AddDate(0, 0, 2).Add(-2 * time.Millisecond).Format("2006-01-02T15:04:05.000Z")
	twin := func(actor string) string {
		return `{"id":"twin","created_at":"` + last + `","event_key":"user_login","actor_id":"` + actor + `","actor_type":"user","entity_id":"1","entity_type":"user","details":{}}`
	}
	// Newest first, as the page they start.
	extra := `{"id":"broken-1","created_at":"not a time","event_key":"user_login"},` + twin("1") + `,` + twin("666") + `,`
	// On the first page of day 1's window as a whole (not of a part split
	// off it, which starts at its midnight too): the API returns them once.
	first := day0().AddDate(0, 0, 1).Format("2006-01-02T15:04:05.000Z")
	next := day0().AddDate(0, 0, 2).Format("2006-01-02T15:04:05.000Z")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		sim.Handler().ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		q := r.URL.Query()
		if rec.Code == 200 && q.Get("cursor") == "" && q.Get("start_time") == first && q.Get("end_time") == next && bytes.HasPrefix(body, []byte(`{"data":[{`)) {
			body = append([]byte(`{"data":[`+extra), body[len(`{"data":[`):]...)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rec.Code)
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	cfg, pub := exportFrom(t, srv.URL+simulator.BasePath, day0().AddDate(0, 0, 3))
	letters, err := filepath.Glob(filepath.Join(cfg.State.Dir, "*", "dead_letter", "dt="+date(1), "*.ndjson"))
	require.NoError(t, err)
	require.Len(t, letters, 1, "the run dead-lettered them")
	b, err := os.ReadFile(letters[0])
	require.NoError(t, err)
	require.Equal(t, 2, bytes.Count(b, []byte("\n")), "%s", b)

	rep, err := verify.Run(t.Context(), verify.Options{Config: cfg, PublicKey: pub, AgainstAPI: true})
	require.NoError(t, err)
	require.False(t, rep.Failed(), "%v", rep.Lines)
	for k, l := range verdicts(t, rep.Lines) {
		require.Contains(t, l.Detail, "all the API has", k)
		if strings.HasPrefix(k, date(1)) {
			require.Contains(t, l.Detail, "; 2 more event(s) the API returns are not exported, by design, but dead-lettered ("+filepath.Dir(letters[0])+
				"): 1 cannot be parsed, 1 with the id of another, different event", k)
		} else {
			require.NotContains(t, l.Detail, "dead-lettered", k)
		}
	}

	// The dead letters removed, the only copy of their events: the day's
	// manifests count them, signed, and verify fails the day (was: OK).
	require.NoError(t, os.Remove(letters[0]))
	rep, err = verify.Run(t.Context(), verify.Options{Config: cfg, PublicKey: pub})
	require.NoError(t, err)
	for k, l := range verdicts(t, rep.Lines) {
		if strings.HasPrefix(k, date(1)) {
			require.Equal(t, verify.Fail, l.Status, k)
			require.Contains(t, l.Detail, "the manifest counts 2 dead letter(s), but "+filepath.Dir(letters[0])+" holds 0: removed?", k)
		} else {
			require.Equal(t, verify.OK, l.Status, "%s: %s", k, l.Detail)
		}
	}
	// Verified where the dead letters are not kept at all: said, not failed.
	require.NoError(t, os.RemoveAll(filepath.Dir(filepath.Dir(letters[0]))))
	rep, err = verify.Run(t.Context(), verify.Options{Config: cfg, PublicKey: pub})
	require.NoError(t, err)
	require.False(t, rep.Failed(), "%v", rep.Lines)
	for k, l := range verdicts(t, rep.Lines) {
		if strings.HasPrefix(k, date(1)) {
			require.Contains(t, l.Detail, "the manifest counts 2 dead letter(s), kept in "+filepath.Dir(letters[0])+", which does not exist here", k)
		}
	}
}

// TestRepairLeavesAnotherSourcesDays: a configuration given another
// workspace's token (two clients' tokens swapped) reads an API that returns
// none of the events the output holds: verify says so, and --repair leaves
// those days as they are, naming them (was: "delivered again", every day's
// files replaced by the other workspace's events under this workspace's
// label, then OK and exit 0: the evidence of the first workspace gone).
func TestRepairLeavesAnotherSourcesDays(t *testing.T) {
	cfg, ours, pub := export(t)
	// The other workspace, behind the same base_url as ours.
	u, err := url.Parse(cfg.Source.BaseURL)
	require.NoError(t, err)
	require.NoError(t, ours.Close())
	other := simulator.DefaultConfig()
	other.Events, other.From, other.To, other.Seed = 1200, day0(), day0().AddDate(0, 0, 3), 8 // more events a day than ours
	sim, err := simulator.New(other)
	require.NoError(t, err)
	_, err = sim.Start(u.Host)
	require.NoError(t, err)
	t.Cleanup(func() { sim.Close() })
	before := dataFile(cfg.Sinks[0].File.Dir, 1, ".ndjson.gz")
	held, err := os.ReadFile(before)
	require.NoError(t, err)

	rep, err := verify.Run(t.Context(), verify.Options{Config: cfg, PublicKey: pub, Repair: true})
	for d := range 3 {
		require.ErrorContains(t, err, "--repair "+date(d)+": the output holds none of the events the API returns for the day")
	}
	require.ErrorContains(t, err, "another workspace's token?")
	require.Empty(t, rep.Repaired)
	got := verdicts(t, rep.Lines)
	for d := range 3 {
		for _, sink := range []string{"sinks[0]", "sinks[1]"} {
			require.Equal(t, verify.Fail, got[date(d)+" "+sink].Status)
			require.Contains(t, got[date(d)+" "+sink].Detail, "exported from another source (another workspace's token?); --repair leaves the day as it is")
		}
	}
	after, err := os.ReadFile(before)
	require.NoError(t, err)
	require.Equal(t, held, after, "the day's file left as it was")
}

// TestAgainstAPIUnreachable: an API that cannot be read fails
// --against-api, and the files are checked all the same: their lines come
// with the error (was: the error alone, nothing said of the files).
func TestAgainstAPIUnreachable(t *testing.T) {
	cfg, sim, pub := export(t)
	require.NoError(t, sim.Close())
	cfg.Source.MaxRetries = 0
	rep, err := verify.Run(t.Context(), verify.Options{Config: cfg, PublicKey: pub, AgainstAPI: true})
	require.ErrorContains(t, err, "--against-api: ")
	require.NotNil(t, rep)
	got := verdicts(t, rep.Lines)
	require.Len(t, got, 6, "every day of every sink: %v", rep.Lines)
	requireVerdicts(t, got, nil)
	for k, l := range got {
		require.NotContains(t, l.Detail, "the API", k)
	}
}

// TestRepairDayNotOver: a day not over yet is held in part (a follow
// loop's cycle files, a run of its first hours) and lacks what the API
// published since: --against-api compares only the part its files cover
// (TestAgainstAPIDayNotOver), and --repair
// writes no part of it beside its files, even when they fail (was: a
// FAIL, then a repair that wrote [day, now - lag) beside the files, every
// event of the day twice).
func TestRepairDayNotOver(t *testing.T) {
	noon := day0().AddDate(0, 0, 2).Add(12 * time.Hour)
	now := func() time.Time { return noon.Add(10 * time.Minute) }
	cfg, _, pub := exportUntil(t, noon)

	rep, err := verify.Run(t.Context(), verify.Options{Config: cfg, PublicKey: pub, Repair: true, Now: now})
	require.NoError(t, err)
	require.Empty(t, rep.Repaired)
	got := verdicts(t, rep.Lines)
	requireVerdicts(t, got, nil)
	for _, sink := range []string{"sinks[0]", "sinks[1]"} {
		require.Contains(t, got[date(2)+" "+sink].Detail, "the day is not over: compared with the API over what its files cover, 00:00:00Z-12:00:00Z")
		require.Contains(t, got[date(1)+" "+sink].Detail, "all the API has")
	}

	files, err := filepath.Glob(filepath.Join(cfg.Sinks[0].File.Dir, "dt="+date(2), "*.ndjson.gz"))
	require.NoError(t, err)
	require.Len(t, files, 1)
	flipByte(t, files[0])
	rep, err = verify.Run(t.Context(), verify.Options{Config: cfg, PublicKey: pub, Repair: true, Now: now})
	require.ErrorContains(t, err, "--repair "+date(2)+": the day is not over")
	require.Empty(t, rep.Repaired)
	after, err := filepath.Glob(filepath.Join(cfg.Sinks[0].File.Dir, "dt="+date(2), "*.ndjson.gz"))
	require.NoError(t, err)
	require.Equal(t, files, after, "no part written beside the day's file")
}

// TestAgainstAPIDayNotOver: a day not over, held by a run of its first
// hours (the hours of an incident, today), is compared with the API over
// the range its files cover: an event the API has there and the files
// lack fails the day, one after that range does not (was: "not compared
// with the API: the day is not over", OK, whatever the files missed).
func TestAgainstAPIDayNotOver(t *testing.T) {
	noon := day0().AddDate(0, 0, 2).Add(12 * time.Hour)
	now := func() time.Time { return noon.Add(10 * time.Minute) }
	cfg, sim, pub := exportUntil(t, noon)

	rep, err := verify.Run(t.Context(), verify.Options{Config: cfg, PublicKey: pub, AgainstAPI: true, Now: now})
	require.NoError(t, err)
	got := verdicts(t, rep.Lines)
	requireVerdicts(t, got, nil)
	for _, sink := range []string{"sinks[0]", "sinks[1]"} {
		require.Contains(t, got[date(2)+" "+sink].Detail, "all the API has")
		require.Contains(t, got[date(2)+" "+sink].Detail, "the day is not over: compared with the API over what its files cover, 00:00:00Z-12:00:00Z")
	}

	late := sim.WriteEvent("user_login", noon.Add(-3*time.Hour), 0) // published late, in the range the files cover
	after := sim.WriteEvent("user_login", noon.Add(5*time.Minute), 0)
	rep, err = verify.Run(t.Context(), verify.Options{Config: cfg, PublicKey: pub, AgainstAPI: true, Now: now})
	require.NoError(t, err)
	got = verdicts(t, rep.Lines)
	requireVerdicts(t, got, map[string]string{
		date(2) + " sinks[0]": "1 event(s) the API has are missing (" + late.ID + ")",
		date(2) + " sinks[1]": "1 event(s) the API has are missing (" + late.ID + ")",
	})
	for k, l := range got {
		require.NotContains(t, l.Detail, after.ID, k)
	}
}

// TestAgainstAPIDayNotOverEventsTheAPILacks: an event in the files of a
// day not over that the API does not return fails the day, saying the API
// holds what the files cover (was: "though it holds the day whole", of a
// day whose afternoon had not come).
func TestAgainstAPIDayNotOverEventsTheAPILacks(t *testing.T) {
	noon := day0().AddDate(0, 0, 2).Add(12 * time.Hour)
	now := func() time.Time { return noon.Add(10 * time.Minute) }
	sim, base := startSim(t)
	extra := sim.WriteEvent("user_login", noon.Add(-time.Hour), 0)
	cfg, pub := exportFrom(t, base, noon)
	restartWithout(t, sim, base)

	rep, err := verify.Run(t.Context(), verify.Options{Config: cfg, PublicKey: pub, AgainstAPI: true, Now: now})
	require.NoError(t, err)
	got := verdicts(t, rep.Lines)
	want := "1 event(s) here the API does not return (" + extra.ID + "), though it holds what the files cover (00:00:00Z-12:00:00Z)"
	requireVerdicts(t, got, map[string]string{date(2) + " sinks[0]": want, date(2) + " sinks[1]": want})
}

// TestAgainstAPIDayNotOverWrittenWhileChecked: a day not over whose files
// a run extends while verify reads them (00:00-12:00 asked of the API,
// then 00:00-13:00 written) is not compared, and says so, rather than
// call the events of 12:00-13:00 extra events the API does not return.
func TestAgainstAPIDayNotOverWrittenWhileChecked(t *testing.T) {
	noon := day0().AddDate(0, 0, 2).Add(12 * time.Hour)
	now := func() time.Time { return noon.Add(2 * time.Hour) }
	cfg, _, pub := exportUntil(t, noon)
	defer verify.Workers(1)() // sinks[1] is read after sinks[0]: both see the run's files
	var once sync.Once
	defer verify.Listed(func(root, dayDir string) {
		if strings.HasPrefix(root, "sinks[0]") && dayDir == "dt="+date(2) {
			once.Do(func() {
				_, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg}, pipeline.Range{From: noon.Add(-12 * time.Hour), To: noon.Add(time.Hour)}, false)
				require.NoError(t, err)
			})
		}
	})()

	rep, err := verify.Run(t.Context(), verify.Options{Config: cfg, PublicKey: pub, AgainstAPI: true, Now: now})
	require.NoError(t, err)
	got := verdicts(t, rep.Lines)
	requireVerdicts(t, got, nil)
	for _, sink := range []string{"sinks[0]", "sinks[1]"} {
		require.Contains(t, got[date(2)+" "+sink].Detail, "not compared with the API: the day, not over, was written while it was checked; verify again")
	}
}

// TestRepairWhileARunHoldsTheState: --repair while a run holds the state
// (at work, or stopped with SIGSTOP) is refused at once, naming the lock,
// before any request (was: every day of the range read from the API
// first, then the same refusal), and delivers nothing.
func TestRepairWhileARunHoldsTheState(t *testing.T) {
	cfg, sim, pub := export(t)
	require.NoError(t, os.Remove(dataFile(cfg.Sinks[0].File.Dir, 1, ".ndjson.gz")))
	run, err := pipeline.Open(t.Context(), pipeline.Options{Config: cfg})
	require.NoError(t, err)
	defer run.Close(context.Background())
	before := len(sim.Stats().Log)

	_, err = verify.Run(t.Context(), verify.Options{Config: cfg, PublicKey: pub, Repair: true})
	require.ErrorIs(t, err, state.ErrLocked)
	require.ErrorContains(t, err, "--repair: ")
	require.Equal(t, before, len(sim.Stats().Log), "no request to the API")
	require.NoFileExists(t, dataFile(cfg.Sinks[0].File.Dir, 1, ".ndjson.gz"))
}

// TestAgainstAPIUnreadDay: a day whose manifest is gone still holds its
// files: --against-api fails the day for the manifest, and does not call
// the events its unread files hold missing.
func TestAgainstAPIUnreadDay(t *testing.T) {
	cfg, _, pub := export(t)
	require.NoError(t, os.Remove(filepath.Join(cfg.Sinks[0].File.Dir, "dt="+date(1), "_manifest.json")))
	rep, err := verify.Run(t.Context(), verify.Options{Config: cfg, PublicKey: pub, AgainstAPI: true})
	require.NoError(t, err)
	got := verdicts(t, rep.Lines)
	found := false
	for k, l := range got {
		if strings.HasPrefix(k, date(1)) && strings.Contains(l.Detail, "no _manifest.json") {
			found = true
			require.Equal(t, verify.Fail, l.Status)
			require.NotContains(t, l.Detail, "the API has are missing")
			require.Contains(t, l.Detail, "not compared with the API")
		}
	}
	require.True(t, found, "the day without a manifest has its line: %v", rep.Lines)
}

// TestRepairRemovedSinkDirectory: a sink directory removed whole fails
// every day the state records, as an emptied one does, and --repair
// delivers them again.
func TestRepairRemovedSinkDirectory(t *testing.T) {
	cfg, sim, pub := export(t)
	require.NoError(t, os.RemoveAll(cfg.Sinks[1].File.Dir))
	rep, err := verify.Run(t.Context(), verify.Options{Config: cfg, PublicKey: pub})
	require.NoError(t, err)
	require.True(t, rep.Failed())
	failed := 0
	for _, l := range rep.Lines {
		if l.Day != "" && strings.HasPrefix(l.Sink, "sinks[1]") {
			require.Equal(t, verify.Fail, l.Status, "%v", l)
			require.Contains(t, l.Detail, "the state records the day as exported")
			failed++
		}
	}
	require.Equal(t, 3, failed, "a line per day: %v", rep.Lines)

	rep, err = verify.Run(t.Context(), verify.Options{Config: cfg, PublicKey: pub, Repair: true})
	require.NoError(t, err)
	require.Equal(t, []string{date(0), date(1), date(2)}, rep.Repaired)
	require.False(t, rep.Failed(), "%v", rep.After)
	want := exporttest.Expected(sim, day0(), day0().AddDate(0, 0, 3))
	exporttest.Compare(t, want, exporttest.ReadParquet(t, cfg.Sinks[1].File.Dir), "acme")
}

// exportToS3 exports three days to a Parquet S3 sink at s3://audit/pq/ on
// m, with a state of its own.
func exportToS3(t *testing.T, m *miniotest.Server) *config.Config {
	t.Helper()
	cfg, _, _ := export(t)
	c := &s3sink.Config{Bucket: "audit", Prefix: "pq/", Format: "parquet", Region: m.Region, Endpoint: m.Endpoint,
		ForcePathStyle: true, AccessKeyID: m.AccessKey, SecretAccessKey: m.SecretKey, MaxAttempts: 2, Timeout: 5 * time.Second}
	c.SetDefaults()
	cfg.Sinks = []config.Sink{{Type: "s3", S3: c}}
	cfg.State.Dir = t.TempDir()
	_, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg}, pipeline.Range{From: day0(), To: day0().AddDate(0, 0, 3)}, false)
	require.NoError(t, err)
	return cfg
}

// TestS3: an export to MinIO verifies, S3 checksums included; an object
// replaced behind the exporter's back is reported.
func TestS3(t *testing.T) {
	m := miniotest.Start(t)
	m.CreateBucket("audit")
	cfg := exportToS3(t, m)

	rep, err := verify.Run(t.Context(), verify.Options{Config: cfg})
	require.NoError(t, err)
	require.False(t, rep.Failed(), "%v", rep.Lines)
	require.Len(t, rep.Lines, 3)

	// The same bytes put back by another client (a restore from backup)
	// with a checksum of its own: the content is the export's, so the day
	// passes, with a note naming the checksum S3 keeps now.
	key0 := "pq/dt=" + date(0) + "/pachca-audit-" + date(0) + ".parquet"
	body0 := getObject(t, m, "audit", key0)
	_, err = m.Client().PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String("audit"), Key: aws.String(key0),
		Body: bytes.NewReader(body0), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
	require.NoError(t, err)
	rep, err = verify.Run(t.Context(), verify.Options{Config: cfg})
	require.NoError(t, err)
	got := verdicts(t, rep.Lines)
	require.Equal(t, verify.OK, got[date(0)+" sinks[0]"].Status, "%v", rep.Lines)
	require.Regexp(t, `; pachca-audit-`+date(0)+`\.parquet: S3 keeps checksum CRC32 [A-Za-z0-9+/]{6}== with it, `+
		`not the SHA256 the manifest recorded \(SHA256 [A-Za-z0-9+/]{43}=\); its size and sha256 match the manifest: `+
		`the content is the export's \(put back by another client, as a restore from backup does\)$`, got[date(0)+" sinks[0]"].Detail)

	key := "pq/dt=" + date(1) + "/pachca-audit-" + date(1) + ".parquet"
	_, err = m.Client().PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String("audit"), Key: aws.String(key), Body: strings.NewReader("not the export")})
	require.NoError(t, err)
	rep, err = verify.Run(t.Context(), verify.Options{Config: cfg})
	require.NoError(t, err)
	got = verdicts(t, rep.Lines)
	require.Equal(t, verify.Fail, got[date(1)+" sinks[0]"].Status)
	require.Contains(t, got[date(1)+" sinks[0]"].Detail, "bytes, the manifest says")
	require.Regexp(t, `S3 keeps no checksum with it, not the SHA256 the manifest recorded \(SHA256 [A-Za-z0-9+/]{43}=\)$`, got[date(1)+" sinks[0]"].Detail)
	require.Equal(t, verify.OK, got[date(0)+" sinks[0]"].Status)

	// Stray objects, found by listing: a copy in a day's prefix, anything
	// under the prefix beside the marker and the days.
	for _, k := range []string{"pq/dt=" + date(2) + "/_copy.parquet", "pq/other/x.parquet", "pq/stray.ndjson.gz"} {
		_, err = m.Client().PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String("audit"), Key: aws.String(k), Body: strings.NewReader("x")})
		require.NoError(t, err)
	}
	rep, err = verify.Run(t.Context(), verify.Options{Config: cfg})
	require.NoError(t, err)
	got = verdicts(t, rep.Lines)
	require.Equal(t, verify.Fail, got[date(2)+" sinks[0]"].Status)
	require.Contains(t, got[date(2)+" sinks[0]"].Detail, "_copy.parquet is not in the manifest")
	require.Equal(t, verify.Fail, got[" sinks[0]"].Status)
	require.Contains(t, got[" sinks[0]"].Detail, "s3://audit/pq/other/ is not a day directory")
	require.Contains(t, got[" sinks[0]"].Detail, "s3://audit/pq/stray.ndjson.gz is not the export's")
}

// TestS3FolderPlaceholders: the zero-byte objects the S3 console's
// "Create folder" makes, for the prefix before the first export or for a
// day, are no files of the location (was: the prefix's own placeholder
// failed the sink, "s3://audit/pq/ is not the export's").
func TestS3FolderPlaceholders(t *testing.T) {
	m := miniotest.Start(t)
	m.CreateBucket("audit")
	put := func(key string) {
		_, err := m.Client().PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String("audit"), Key: aws.String(key), Body: strings.NewReader("")})
		require.NoError(t, err)
	}
	put("pq/")
	cfg := exportToS3(t, m)
	put("pq/dt=" + date(1) + "/")

	rep, err := verify.Run(t.Context(), verify.Options{Config: cfg})
	require.NoError(t, err)
	require.False(t, rep.Failed(), "%v", rep.Lines)
	require.Len(t, rep.Lines, 3)
}

func getObject(t *testing.T, m *miniotest.Server, bucket, key string) []byte {
	t.Helper()
	out, err := m.Client().GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	require.NoError(t, err)
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	require.NoError(t, err)
	return b
}

// TestRerunsKeepTheChain: rewriting an early day, or the whole range again,
// relinks the days after it: the export still verifies.
func TestRerunsKeepTheChain(t *testing.T) {
	cfg, _, pub := export(t)
	for _, rng := range []pipeline.Range{
		{From: day0(), To: day0().AddDate(0, 0, 1)},
		{From: day0(), To: day0().AddDate(0, 0, 3)},
	} {
		_, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg}, rng, false)
		require.NoError(t, err)
	}
	// A partial range of day 1, exported whole, from a state that does not
	// know it (a run of this state leaves such a range out): refused, as
	// its events are in the day's file already.
	before, err := os.ReadFile(filepath.Join(cfg.Sinks[0].File.Dir, "dt="+date(1), sinks.ManifestName))
	require.NoError(t, err)
	other := *cfg
	other.State.Dir = t.TempDir()
	sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: &other},
		pipeline.Range{From: day0().AddDate(0, 0, 1), To: day0().AddDate(0, 0, 1).Add(12 * time.Hour)}, false)
	var refused *pipeline.RefusedError
	require.ErrorAs(t, err, &refused)
	require.ErrorContains(t, err, date(1)+": ndjson "+cfg.Sinks[0].File.Dir+": the day is held whole here")
	require.Len(t, sum.Refused, 1)
	after, err := os.ReadFile(filepath.Join(cfg.Sinks[0].File.Dir, "dt="+date(1), sinks.ManifestName))
	require.NoError(t, err)
	require.Equal(t, before, after)
	rep, err := verify.Run(t.Context(), verify.Options{Config: cfg, PublicKey: pub})
	require.NoError(t, err)
	require.False(t, rep.Failed(), "%v", rep.Lines)
}

// TestOverlappingRanges: two different partial ranges that overlap inside
// a day not exported whole write two files; verify reports the ids they
// share, and exporting the whole day sets it right.
func TestOverlappingRanges(t *testing.T) {
	cfg, sim, pub := export(t)
	d := day0().AddDate(0, 0, 3)
	for _, h := range []int{1, 7, 8, 13} {
		sim.WriteEvent("user_login", d.Add(time.Duration(h)*time.Hour), 0)
	}
	other := *cfg
	other.State.Dir = t.TempDir()
	for _, rng := range []pipeline.Range{{From: d, To: d.Add(12 * time.Hour)}, {From: d.Add(6 * time.Hour), To: d.Add(18 * time.Hour)}} {
		_, err := pipeline.Run(t.Context(), pipeline.Options{Config: &other}, rng, false)
		require.NoError(t, err)
	}
	rep, err := verify.Run(t.Context(), verify.Options{Config: cfg, PublicKey: pub})
	require.NoError(t, err)
	requireVerdicts(t, verdicts(t, rep.Lines), map[string]string{date(3) + " sinks[0]": "twice in the day", date(3) + " sinks[1]": "twice in the day"})

	_, err = pipeline.Run(t.Context(), pipeline.Options{Config: cfg}, pipeline.Range{From: d, To: d.AddDate(0, 0, 1)}, false)
	require.NoError(t, err)
	rep, err = verify.Run(t.Context(), verify.Options{Config: cfg, PublicKey: pub})
	require.NoError(t, err)
	require.False(t, rep.Failed(), "%v", rep.Lines)
}

// TestStateOlderThanTheFiles: a state restored from a backup taken before
// a day was exported again with more events records fewer than its files
// hold: the FAIL line says so (was: "files removed, or the manifest
// edited?", which is the other way round).
func TestStateOlderThanTheFiles(t *testing.T) {
	cfg, _, pub := export(t)
	b, err := os.ReadFile(filepath.Join(cfg.Sinks[0].File.Dir, "dt="+date(1), sinks.ManifestName))
	require.NoError(t, err)
	m, err := sinks.DecodeManifest(b)
	require.NoError(t, err)
	st, err := state.Open(cfg.State.Dir, pipeline.Identity(cfg))
	require.NoError(t, err)
	require.NoError(t, st.MarkExported(state.Day{Day: date(1), RunID: "r", Records: m.Records - 1}))
	require.NoError(t, st.Close())

	rep, err := verify.Run(t.Context(), verify.Options{Config: cfg, PublicKey: pub})
	require.NoError(t, err)
	want := fmt.Sprintf("the state records %d events exported for the day, the day's file holds %d (events added, or the state is older than the files: restored from a backup?)", m.Records-1, m.Records)
	requireVerdicts(t, verdicts(t, rep.Lines), map[string]string{date(1) + " sinks[0]": want, date(1) + " sinks[1]": want})
}

// TestDayCountsAgainstState: a day's manifest that lists fewer events than
// the state records for the day (its files removed with the manifest
// edited to match, where the chain has no successor to break) fails on that
// day and sink; the state decides, so the sink that holds the day whole is
// OK. Without a state record the sinks are compared with each other; a
// day a follow loop recorded holds at least what the state says.
func TestDayCountsAgainstState(t *testing.T) {
	cfg, _, _ := export(t)
	cfg.Signing.PrivateKeyFile = "" // the edited manifest is not signed again
	nd := cfg.Sinks[0].File.Dir
	path := filepath.Join(nd, "dt="+date(2), sinks.ManifestName)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	m, err := sinks.DecodeManifest(b)
	require.NoError(t, err)
	held := m.Records
	m.Files, m.Records, m.Signature, m.KeyID = []sinks.ManifestFile{}, 0, "", ""
	b, err = json.Marshal(m)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o600))
	require.NoError(t, os.Remove(dataFile(nd, 2, ".ndjson.gz")))

	check := func(t *testing.T, want map[string]string) {
		t.Helper()
		rep, err := verify.Run(t.Context(), verify.Options{Config: cfg})
		require.NoError(t, err)
		got := verdicts(t, rep.Lines)
		require.Len(t, got, 6, "%v", rep.Lines)
		requireVerdicts(t, got, want)
		require.Equal(t, len(want) > 0, rep.Failed())
	}
	check(t, map[string]string{date(2) + " sinks[0]": fmt.Sprintf("the state records %d events exported for the day, the manifest lists 0", held)})

	// Without the state, the sinks disagree: neither is trusted.
	saved := cfg.State.Dir
	cfg.State.Dir = t.TempDir()
	check(t, map[string]string{
		date(2) + " sinks[0]": fmt.Sprintf("sinks[1] parquet %s holds %d for the day (sinks of one configuration get the same events; "+
			"a sink added after the day was exported has none of them: --repair delivers the day to it)", cfg.Sinks[1].File.Dir, held),
		date(2) + " sinks[1]": fmt.Sprintf("sinks[0] ndjson %s holds 0", nd),
	})
	cfg.State.Dir = saved

	// Days a follow loop sealed: the state may record only the events new
	// at the seal (as versions before this one wrote it), a lower bound; more than the
	// files hold still fails.
	st, err := state.Open(cfg.State.Dir, pipeline.Identity(cfg))
	require.NoError(t, err)
	require.NoError(t, st.SetFollow(state.Follow{Start: day0(), Watermark: day0()}))
	require.NoError(t, st.MarkExported(state.Day{Day: date(1), RunID: "r", Records: 3}))
	require.NoError(t, st.MarkExported(state.Day{Day: date(0), RunID: "r", Records: 100000}))
	require.NoError(t, st.Close())
	check(t, map[string]string{
		date(0) + " sinks[0]": "the state records 100000 events",
		date(0) + " sinks[1]": "the state records 100000 events",
		date(2) + " sinks[0]": "the state records",
	})
}

// TestStrayFiles: a file that a day's manifest does not list fails its
// day, whatever its name (DuckDB's * matches names starting with _ and .
// too) or extension (Athena reads any other name); anything at the root but the marker and day
// directories fails the sink, named; a temporary file of a write is
// mentioned, not failed.
func TestStrayFiles(t *testing.T) {
	cfg, _, pub := export(t)
	nd, pq := cfg.Sinks[0].File.Dir, cfg.Sinks[1].File.Dir
	cp := func(from, to string) {
		b, err := os.ReadFile(from)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(to, b, 0o600))
	}
	cp(dataFile(nd, 1, ".ndjson.gz"), filepath.Join(nd, "dt="+date(1), "_copy.ndjson.gz"))
	cp(dataFile(pq, 0, ".parquet"), filepath.Join(pq, "dt="+date(0), ".copy.parquet"))
	// Athena, Hive and Spark read every name not starting with _ or .
	// (was: not reported, as it has no data extension).
	cp(dataFile(nd, 2, ".ndjson.gz"), filepath.Join(nd, "dt="+date(2), "more-events"))
	cp(dataFile(nd, 2, ".ndjson.gz"), filepath.Join(nd, "stray.ndjson.gz"))
	require.NoError(t, os.Mkdir(filepath.Join(nd, "dt=2026-13-45"), 0o700))
	require.NoError(t, os.MkdirAll(filepath.Join(pq, "other"), 0o700))
	tmp := filepath.Join(pq, "dt="+date(2), ".pachca-audit-"+date(2)+".parquet.tmp-123")
	require.NoError(t, os.WriteFile(tmp, []byte("half"), 0o600))

	rep, err := verify.Run(t.Context(), verify.Options{Config: cfg, PublicKey: pub})
	require.NoError(t, err)
	require.True(t, rep.Failed())
	got := verdicts(t, rep.Lines)
	require.Len(t, got, 8, "a line per day and sink, and one per sink for its root: %v", rep.Lines)
	want := map[string]string{
		date(1) + " sinks[0]": "_copy.ndjson.gz is not in the manifest",
		date(0) + " sinks[1]": ".copy.parquet is not in the manifest",
		date(2) + " sinks[0]": "more-events is not in the manifest",
		" sinks[0]":           "stray.ndjson.gz",
		" sinks[1]":           filepath.Join(pq, "other"),
	}
	requireVerdicts(t, got, want)
	require.Contains(t, got[" sinks[0]"].Detail, filepath.Join(nd, "dt=2026-13-45"))
	require.Contains(t, got[date(2)+" sinks[1]"].Detail, "temporary file "+filepath.Base(tmp))
}

// TestUnreachableSinkIsNotNothing: a sink that cannot be read has its FAIL
// line, and the verification is not reported as one of nothing.
func TestUnreachableSinkIsNotNothing(t *testing.T) {
	cfg, _, _ := export(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	c := &s3sink.Config{Bucket: "audit", Format: "parquet", Region: "us-east-1", Endpoint: "http://" + addr,
		ForcePathStyle: true, AccessKeyID: "k", SecretAccessKey: "s", MaxAttempts: 1, Timeout: 2 * time.Second}
	c.SetDefaults()
	cfg.Sinks = []config.Sink{{Type: "s3", S3: c}}
	rep, err := verify.Run(t.Context(), verify.Options{Config: cfg})
	require.NoError(t, err)
	require.True(t, rep.Failed())
	require.False(t, rep.Empty, "the sink's FAIL line says why nothing was checked: %v", rep.Lines)
	require.True(t, slices.ContainsFunc(rep.Lines, func(l verify.Line) bool {
		return l.Status == verify.Fail && strings.Contains(l.Detail, "unreachable")
	}), "%v", rep.Lines)
}

// TestRepairRemovesUnlistedFile: a file of part of a day beside a manifest
// that no longer lists it (a run killed between renaming the whole day's
// manifest into place and removing the file it replaced) fails the day;
// --repair leaves the day's file alone with its manifest.
func TestRepairRemovesUnlistedFile(t *testing.T) {
	cfg, _, pub := export(t)
	from := day0().AddDate(0, 0, 1)
	f := "20060102T150405.000Z"
	orphan := filepath.Join(cfg.Sinks[0].File.Dir, "dt="+date(1),
		"pachca-audit-"+from.Add(6*time.Hour).Format(f)+"-"+from.Add(12*time.Hour).Format(f)+".ndjson.gz")
	b, err := os.ReadFile(dataFile(cfg.Sinks[0].File.Dir, 1, ".ndjson.gz"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(orphan, b, 0o600))

	rep, err := verify.Run(t.Context(), verify.Options{Config: cfg, PublicKey: pub, Repair: true})
	require.NoError(t, err)
	requireVerdicts(t, verdicts(t, rep.Lines), map[string]string{date(1) + " sinks[0]": filepath.Base(orphan) + " is not in the manifest"})
	require.Equal(t, []string{date(1)}, rep.Repaired)
	require.False(t, rep.Failed(), "%v", rep.After)
	files, err := filepath.Glob(filepath.Join(cfg.Sinks[0].File.Dir, "dt="+date(1), "*"))
	require.NoError(t, err)
	require.Equal(t, []string{filepath.Join(cfg.Sinks[0].File.Dir, "dt="+date(1), sinks.ManifestName), dataFile(cfg.Sinks[0].File.Dir, 1, ".ndjson.gz")}, files)
}

// TestOneSinksDamageBreaksNoOther: a damaged manifest in one sink fails a
// rerun of an earlier day, but the other sink's chain is relinked all the
// same; --repair goes on after a day it cannot deliver and names it.
func TestOneSinksDamageBreaksNoOther(t *testing.T) {
	cfg, _, pub := export(t)
	nd := cfg.Sinks[0].File.Dir
	require.NoError(t, os.WriteFile(filepath.Join(nd, "dt="+date(2), sinks.ManifestName), []byte("garbage\n"), 0o600))
	_, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg}, pipeline.Range{From: day0(), To: day0().AddDate(0, 0, 1)}, false)
	require.ErrorContains(t, err, filepath.Join(nd, "dt="+date(2), sinks.ManifestName)+" is damaged")
	rep, err := verify.Run(t.Context(), verify.Options{Config: cfg, PublicKey: pub})
	require.NoError(t, err)
	requireVerdicts(t, verdicts(t, rep.Lines), map[string]string{date(2) + " sinks[0]": "_manifest.json cannot be read"})

	// Day 0's manifest damaged too, day 1's file edited: the repair of day
	// 0 fails, that of day 1 is done.
	require.NoError(t, os.WriteFile(filepath.Join(nd, "dt="+date(0), sinks.ManifestName), []byte("garbage\n"), 0o600))
	require.NoError(t, os.Rename(filepath.Join(nd, "dt="+date(2)), filepath.Join(t.TempDir(), "moved")))
	flipByte(t, dataFile(nd, 1, ".ndjson.gz"))
	rep, err = verify.Run(t.Context(), verify.Options{Config: cfg, PublicKey: pub, Repair: true})
	require.ErrorContains(t, err, "--repair "+date(0)+": ")
	require.NotContains(t, err.Error(), "--repair "+date(1))
	require.Contains(t, rep.Repaired, date(1))
	after := verdicts(t, rep.After)
	require.Equal(t, verify.OK, after[date(1)+" sinks[0]"].Status, "%v", rep.After)
}

// TestRepairRefusedIsNotDelivered: a day the repair refuses (it would
// shrink) is neither logged nor counted as delivered again.
func TestRepairRefusedIsNotDelivered(t *testing.T) {
	cfg, _, pub := export(t)
	path := filepath.Join(cfg.Sinks[0].File.Dir, "dt="+date(1), sinks.ManifestName)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	m, err := sinks.DecodeManifest(b)
	require.NoError(t, err)
	m.Files[0].Records, m.Records = 5000, 5000
	require.NoError(t, os.WriteFile(path, m.Encode(), 0o600))

	var logs bytes.Buffer
	rep, err := verify.Run(t.Context(), verify.Options{Config: cfg, PublicKey: pub, Repair: true,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, err)
	require.Equal(t, []string{date(2)}, rep.Repaired, "day 2, whose link the edit broke, is; day 1 is not")
	require.True(t, rep.Failed())
	require.Contains(t, logs.String(), "repair refused")
	require.NotContains(t, logs.String(), "day delivered again day="+date(1))
}

// TestKeyRotation: after signing.private_key_file is replaced, with the old
// key's public half in signing.previous_public_key_files, a backfill of an
// older day relinks (and signs again with the new key) the days after it,
// and verify accepts the old key's signatures on the days not rewritten.
func TestKeyRotation(t *testing.T) {
	cfg, _, oldPub := export(t)
	dir := filepath.Dir(cfg.Signing.PrivateKeyFile)
	oldFile := filepath.Join(dir, "old.pub")
	require.NoError(t, os.WriteFile(oldFile, sinks.PublicKeyPEM(oldPub), 0o600))
	newPub, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	cfg.Signing.PrivateKeyFile = filepath.Join(dir, "new.pem")
	require.NoError(t, os.WriteFile(cfg.Signing.PrivateKeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))
	cfg.Signing.PreviousPublicKeyFiles = []string{oldFile}

	_, err = pipeline.Run(t.Context(), pipeline.Options{Config: cfg}, pipeline.Range{From: day0().AddDate(0, 0, 1), To: day0().AddDate(0, 0, 2)}, false)
	require.NoError(t, err, "a backfill after the rotation relinks the days after it")

	rep, err := verify.Run(t.Context(), verify.Options{Config: cfg})
	require.NoError(t, err)
	require.False(t, rep.Failed(), "%v", rep.Lines)
	for k, l := range verdicts(t, rep.Lines) {
		if strings.HasPrefix(k, date(0)) {
			require.Contains(t, l.Detail, "signature good (previous key "+sinks.KeyID(oldPub)+")", k)
		} else {
			require.Contains(t, l.Detail, "signature good", k)
			require.NotContains(t, l.Detail, "previous key", k)
		}
	}
	rep, err = verify.Run(t.Context(), verify.Options{Config: cfg, PublicKey: newPub})
	require.NoError(t, err)
	requireVerdicts(t, verdicts(t, rep.Lines), map[string]string{
		date(0) + " sinks[0]": "signed by key " + sinks.KeyID(oldPub), date(0) + " sinks[1]": "signed by key " + sinks.KeyID(oldPub)})
	rep, err = verify.Run(t.Context(), verify.Options{Config: cfg, PublicKey: newPub, PreviousKeys: []ed25519.PublicKey{oldPub}})
	require.NoError(t, err)
	require.False(t, rep.Failed(), "%v", rep.Lines)
}

// TestSecurityLakeSourceRenamed: after a class's custom source is renamed
// in the configuration, a rerun of a whole day or of a partial range
// removes its object from the old source (else the class's events would
// stay in both sources, doubled, and a whole day's listed by no manifest),
// and verify still finds, and checks, the objects that the manifests of the
// days not exported again list under the old source.
func TestSecurityLakeSourceRenamed(t *testing.T) {
	_, base := startSim(t)

	dir := t.TempDir()
	lake := &shape.SecurityLake{AccountID: "123456789012", Region: "eu-central-1"}
	cfg := config.Default()
	cfg.File = "test.yaml"
	cfg.Source.BaseURL, cfg.Source.Token, cfg.Source.Workspace = base, "sim-token", "acme"
	cfg.Source.RequestsPerSecond, cfg.Source.Timeout = 500, 5*time.Second
	cfg.State.Dir = filepath.Join(dir, "state")
	cfg.Sinks = []config.Sink{{Type: "parquet", File: &config.FileSink{Dir: filepath.Join(dir, "lake"),
		Keys: shape.Keys{Schema: shape.SchemaOCSF, Layout: shape.LayoutSecurityLake, SecurityLake: lake}}}}
	require.NoError(t, cfg.Validate())
	_, err := pipeline.Run(t.Context(), pipeline.Options{Config: &cfg}, pipeline.Range{From: day0(), To: day0().AddDate(0, 0, 2)}, false)
	require.NoError(t, err)
	part := pipeline.Range{From: day0().AddDate(0, 0, 2), To: day0().AddDate(0, 0, 2).Add(6 * time.Hour)}
	partName := "pachca-audit-" + day0().AddDate(0, 0, 2).Format("20060102T150405.000Z") + "-" + part.To.Format("20060102T150405.000Z") + ".parquet"
	_, err = pipeline.Run(t.Context(), pipeline.Options{Config: &cfg}, part, false)
	require.NoError(t, err)

	authDir := func(source string, day int) string {
		return filepath.Join(dir, "lake", "ext", source, "region=eu-central-1", "accountId=123456789012",
			"eventDay="+day0().AddDate(0, 0, day).Format("20060102"))
	}
	require.FileExists(t, filepath.Join(authDir("pachca-auth", 0), "pachca-audit-"+date(0)+".parquet"))

	lake.Sources = map[string]string{"authentication": "acme-auth"}
	require.NoError(t, cfg.Validate())
	_, err = pipeline.Run(t.Context(), pipeline.Options{Config: &cfg}, pipeline.Range{From: day0(), To: day0().AddDate(0, 0, 1)}, false)
	require.NoError(t, err)
	require.FileExists(t, filepath.Join(authDir("acme-auth", 0), "pachca-audit-"+date(0)+".parquet"))
	require.NoFileExists(t, filepath.Join(authDir("pachca-auth", 0), "pachca-audit-"+date(0)+".parquet"), "the old source's object of the rerun day")
	require.FileExists(t, filepath.Join(authDir("pachca-auth", 1), "pachca-audit-"+date(1)+".parquet"))
	require.FileExists(t, filepath.Join(authDir("pachca-auth", 2), partName))
	_, err = pipeline.Run(t.Context(), pipeline.Options{Config: &cfg}, part, false)
	require.NoError(t, err)
	require.FileExists(t, filepath.Join(authDir("acme-auth", 2), partName))
	require.NoFileExists(t, filepath.Join(authDir("pachca-auth", 2), partName), "the old source's object of the rerun range")

	rep, err := verify.Run(t.Context(), verify.Options{Config: &cfg})
	require.NoError(t, err)
	require.Len(t, rep.Lines, 3)
	requireVerdicts(t, verdicts(t, rep.Lines), nil)
}

// TestIDsOfOneDayAtATime: the ids read from a day's files are compared
// with the API's and dropped once the day is checked, so that a verify of
// 90 days of 2,000,000 events holds one day's ids, not 180,000,000 (was:
// every day's and every sink's ids kept until the last day was checked:
// 514 MB for one such day).
func TestIDsOfOneDayAtATime(t *testing.T) {
	cfg, _, pub := export(t)
	for _, againstAPI := range []bool{false, true} {
		held := -1
		restore := verify.IDsHeld(func(n int) { held = n })
		rep, err := verify.Run(t.Context(), verify.Options{Config: cfg, PublicKey: pub, AgainstAPI: againstAPI})
		restore()
		require.NoError(t, err)
		require.False(t, rep.Failed(), "%v", rep.Lines)
		require.Len(t, rep.Lines, 6)
		require.Equal(t, 0, held, "ids held once every day is checked (against the API: %v)", againstAPI)
		if againstAPI {
			for _, l := range rep.Lines {
				require.Contains(t, l.Detail, "all the API has")
			}
		}
	}
}

// TestStopsWhenCancelled: a verify stopped (SIGINT, SIGTERM: its context
// cancelled) checks no day after the stop and returns the context's error,
// which the command reports as "verify: interrupted", exit status 1 (was:
// the files of a local sink read to the last day, whatever the signal,
// and exit status 0).
func TestStopsWhenCancelled(t *testing.T) {
	cfg, _, pub := export(t)
	defer verify.Workers(1)()
	ctx, cancel := context.WithCancel(t.Context())
	checked := 0
	defer verify.DayChecks(func() {
		checked++
		cancel()
	})()
	_, err := verify.Run(ctx, verify.Options{Config: cfg, PublicKey: pub})
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, 1, checked, "days checked, of 3 days in 2 sinks")
}

// TestAPIIDsOfAFewDaysAtATime: --against-api reads the API's ids a few
// days at a time (max(2, concurrency)), and checks those days before the
// next read, so that a verify holds the API's ids of a few days, not of
// the whole range (was: every day's read first: 110 MB RSS for 500,000
// events over 30 days, past a 96 MB box, against 69 MB for their run).
func TestAPIIDsOfAFewDaysAtATime(t *testing.T) {
	cfg, _, pub := export(t)
	cfg.Source.Concurrency = 1
	var reads []int
	restore := verify.APIReads(func(days int) { reads = append(reads, days) })
	var logs bytes.Buffer
	rep, err := verify.Run(t.Context(), verify.Options{Config: cfg, PublicKey: pub, AgainstAPI: true,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	restore()
	require.NoError(t, err)
	// Each read says how far the verify got: a long range far from the
	// API is not minutes of silence.
	require.Regexp(t, `msg="verify: the API's events read" from=`+date(0)+` to=`+date(1)+` events=\d+ days_read=2 days=3 `, logs.String())
	require.Regexp(t, `msg="verify: the API's events read" from=`+date(2)+` to=`+date(2)+` events=\d+ days_read=3 days=3 `, logs.String())
	require.False(t, rep.Failed(), "%v", rep.Lines)
	require.Len(t, rep.Lines, 6)
	for _, l := range rep.Lines {
		require.Contains(t, l.Detail, "all the API has")
	}
	require.Equal(t, []int{2, 1}, reads, "days of each read of the API")
}

// TestDaysCheckedInParallel: the days are read two at a time (each day of
// each sink on its own, the ids of two held at once, never more), and the
// lines are those of a check of one day after another: the same, in the
// same order, a broken link of the chain found on its day and in its place
// among the day's failures, whatever the number of workers (was: one day
// after another on one core, whatever the machine's).
func TestDaysCheckedInParallel(t *testing.T) {
	_, base := startSimOf(t, 1200, 6)
	cfg, pub := exportFrom(t, base, day0().AddDate(0, 0, 6))
	nd, pq := cfg.Sinks[0].File.Dir, cfg.Sinks[1].File.Dir
	// Damage in the middle: a byte of day 2's NDJSON, and the manifests of
	// days 3 and 4 of the Parquet sink swapped.
	flipByte(t, dataFile(nd, 2, ".ndjson.gz"))
	swapFiles(t, filepath.Join(pq, "dt="+date(3), sinks.ManifestName), filepath.Join(pq, "dt="+date(4), sinks.ManifestName))

	run := func(workers int) []verify.Line {
		t.Helper()
		defer verify.Workers(workers)()
		rep, err := verify.Run(t.Context(), verify.Options{Config: cfg, PublicKey: pub})
		require.NoError(t, err)
		require.True(t, rep.Failed())
		return rep.Lines
	}
	one := run(1)
	require.Len(t, one, 12, "six days, two sinks: %v", one)
	for i, l := range one {
		require.Equal(t, date(i/2), l.Day, "line %d", i)
		require.True(t, strings.HasPrefix(l.Sink, fmt.Sprintf("sinks[%d] ", i%2)), "line %d: %s", i, l.Sink)
	}
	requireVerdicts(t, verdicts(t, one), map[string]string{
		date(2) + " sinks[0]": "(edited or damaged)",
		date(3) + " sinks[1]": "chain broken",
		date(4) + " sinks[1]": "chain broken",
		date(5) + " sinks[1]": "chain broken",
	})
	require.Regexp(t, `^_manifest.json is the manifest of `+date(4)+`, not of `+date(3)+` \(moved or swapped\); chain broken: [^;]*; pachca-audit-`+date(4)+`\.parquet is missing`, one[7].Detail)

	var mu sync.Mutex
	in, most, arrived := 0, 0, 0
	two := make(chan struct{}) // closed when two days are held at once
	restore := verify.DayChecks(func() {
		mu.Lock()
		in++
		most = max(most, in)
		if arrived++; arrived == 2 {
			close(two)
		}
		mu.Unlock()
		select { // the first waits for the second, a check at a time would never bring it
		case <-two:
		case <-time.After(10 * time.Second):
		}
		mu.Lock()
		in--
		mu.Unlock()
	})
	parallel := run(2)
	restore()
	require.Equal(t, 2, most, "days held at once by two workers")
	require.Equal(t, one, parallel)
	require.Equal(t, one, run(8))
}

// swapFiles swaps the contents of the files a and b.
func swapFiles(t *testing.T, a, b string) {
	t.Helper()
	ab, err := os.ReadFile(a)
	require.NoError(t, err)
	bb, err := os.ReadFile(b)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(a, bb, 0o600))
	require.NoError(t, os.WriteFile(b, ab, 0o600))
}

// TestDayWrittenWhileChecked: a day not recorded as exported whose files
// change while verify reads it (a follow cycle or a seal commits between
// the listing of its directory and the read of its manifest: here its file
// is renamed and the manifest rewritten to list the new name) is checked
// again, and OK (was: FAIL, `... is missing`, exit 1, for a verify that
// happened to run at that moment).
func TestDayWrittenWhileChecked(t *testing.T) {
	cfg, _, _ := export(t)
	cfg.Signing.PrivateKeyFile = "" // the manifest rewritten is not signed
	cfg.State.Dir = t.TempDir()     // no day recorded: the days may be in the writing
	nd := cfg.Sinks[0].File.Dir
	dayDir := "dt=" + date(2) // the last day: no manifest after it links to this one
	defer verify.Workers(1)() // sinks[1] is read after sinks[0]: both see the run's files
	var once sync.Once
	defer verify.Listed(func(root, dir string) {
		if dir != dayDir || !strings.HasPrefix(root, "sinks[0]") {
			return
		}
		once.Do(func() {
			path := filepath.Join(nd, dayDir, sinks.ManifestName)
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			m, err := sinks.DecodeManifest(b)
			require.NoError(t, err)
			m.Signature, m.KeyID = "", ""
			m.Files[0].Name = "pachca-audit-" + date(2) + "-moved.ndjson.gz"
			require.NoError(t, os.Rename(dataFile(nd, 2, ".ndjson.gz"), filepath.Join(nd, dayDir, m.Files[0].Name)))
			require.NoError(t, os.WriteFile(path, m.Encode(), 0o600))
		})
	})()
	rep, err := verify.Run(t.Context(), verify.Options{Config: cfg})
	require.NoError(t, err)
	require.False(t, rep.Failed(), "%v", rep.Lines)
}

// TestDayListedWhileCyclesCommit: cycles commit to a day between each of
// verify's listing of its directory and its read of the manifest, three
// times in a row (a follow loop of a short interval beside a verify of a
// large day, whose every check outlasts a cycle): the listing and the
// manifest are read again until they agree, and the day is OK (was: FAIL,
// `... is missing`, each check of the day overtaken by a cycle).
func TestDayListedWhileCyclesCommit(t *testing.T) {
	cfg, _, _ := export(t)
	cfg.Signing.PrivateKeyFile = ""
	cfg.State.Dir = t.TempDir()
	nd := cfg.Sinks[0].File.Dir
	dayDir := "dt=" + date(2)
	commits := 0
	defer verify.Listed(func(root, dir string) {
		if dir != dayDir || !strings.HasPrefix(root, "sinks[0]") || commits == 3 {
			return
		}
		commits++
		path := filepath.Join(nd, dayDir, sinks.ManifestName)
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		m, err := sinks.DecodeManifest(b)
		require.NoError(t, err)
		m.Signature, m.KeyID = "", ""
		was := m.Files[0].Name
		m.Files[0].Name = fmt.Sprintf("pachca-audit-%s-%d.ndjson.gz", date(2), commits)
		require.NoError(t, os.Rename(filepath.Join(nd, dayDir, was), filepath.Join(nd, dayDir, m.Files[0].Name)))
		require.NoError(t, os.WriteFile(path, m.Encode(), 0o600))
	})()
	rep, err := verify.Run(t.Context(), verify.Options{Config: cfg})
	require.NoError(t, err)
	require.Equal(t, 3, commits)
	require.False(t, rep.Failed(), "%v", rep.Lines)
}
