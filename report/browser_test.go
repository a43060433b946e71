package report_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/alerts"
	"github.com/pachca-export/pachca-export/report"
	"github.com/pachca-export/pachca-export/report/reporttest"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/filesink"
	"github.com/pachca-export/pachca-export/transform"
)

// chromium is Debian's package, installed by `make browser`.
const chromium = "/usr/bin/chromium"

// browser opens a tab for one test in the package's headless Chromium, in
// a browser context of its own: cookies, cache and storage as fresh as a
// new profile's, none of another test's. The tab closes with the test.
// (Was: a Chromium started for each test, 15 of them, 2-3 s each.)
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s: %v (CI=true: run `make browser` first)", chromium, err)
		}
		t.Skipf("%s missing; `make browser` installs Debian's chromium", chromium)
	}
	shared.once.Do(func() { shared.ctx, shared.err = startChromium(browserDeadline(t)) })
	require.NoError(t, shared.err, "starting %s", chromium)
	ctx, cancelCtx := chromedp.NewContext(shared.ctx, chromedp.WithNewBrowserContext())
	ctx, cancelTimeout := context.WithDeadline(ctx, browserDeadline(t))
	t.Cleanup(func() { cancelTimeout(); cancelCtx() })
	return ctx
}

// shared is the package's Chromium, started by the first test that needs
// one and stopped by TestMain.
var shared struct {
	once sync.Once
	ctx  context.Context
	err  error
	stop func()
}

// startChromium starts a headless Chromium with a fresh profile and no
// background traffic of its own, stopped at deadline at the latest.
func startChromium(deadline time.Time) (context.Context, error) {
	profile, err := os.MkdirTemp("", "report-chromium-")
	if err != nil {
		return nil, err
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(profile),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
	}
	ctx, cancelDeadline := context.WithDeadline(context.Background(), deadline)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	shared.stop = func() { cancelCtx(); cancelAlloc(); cancelDeadline(); os.RemoveAll(profile) }
	return ctx, chromedp.Do(ctx) // the first run starts the browser
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.stop != nil {
		shared.stop()
	}
	if parquetReport.dir != "" {
		os.RemoveAll(parquetReport.dir)
	}
	os.Exit(code)
}

// browserDeadline is when a test stops waiting for the browser: shortly
// before go test's own deadline (-timeout), so that a browser that hangs
// fails the test with the step it hung in, Chromium stopped, rather than
// go test's panic; 10 minutes on without -timeout. (Was: 90 s, which a
// busy 2-core machine overran under -race: TestReportInBrowser took up to
// 84 s there from Chromium's start, 28 of them decoding the screenshot.)
func browserDeadline(t *testing.T) time.Time {
	if d, ok := t.Deadline(); ok {
		return d.Add(-30 * time.Second)
	}
	return time.Now().Add(10 * time.Minute)
}

// period of the dataset the tests report on, and the previous one.
var (
	from = reporttest.Day0.AddDate(0, 0, 3)
	to   = reporttest.Day0.AddDate(0, 0, 6)
)

// openPage opens the report at file in a new browser tab and waits for its
// charts to be drawn.
func openPage(t *testing.T, file string) context.Context {
	t.Helper()
	ctx := browser(t)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate("file://"+file),
		chromedp.WaitVisible(chromedp.CSS(`html[data-charts]`)),
	))
	return ctx
}

// writeReport is the report of [from, to) of the dataset exported to
// format. The one in Parquet, which most tests read and none changes, is
// written once for them all, in a directory TestMain removes.
func writeReport(t *testing.T, format string) string {
	t.Helper()
	if format != "parquet" {
		return writeReportOf(t, format, reporttest.Dataset())
	}
	parquetReport.once.Do(func() {
		dir, err := os.MkdirTemp("", "report-test-")
		require.NoError(t, err)
		parquetReport.dir = dir
		parquetReport.file = writeReportIn(t, dir, format, reporttest.Dataset())
	})
	require.NotEmpty(t, parquetReport.file, "the report of the dataset in Parquet was not written: see the first test that wrote it")
	return parquetReport.file
}

// parquetReport is the report of the dataset in Parquet, shared.
var parquetReport struct {
	once      sync.Once
	dir, file string
}

// writeReportOf exports recs to format under a temporary dir and writes
// the report of [from, to) to report.html there.
func writeReportOf(t *testing.T, format string, recs []transform.Record) string {
	t.Helper()
	return writeReportIn(t, t.TempDir(), format, recs)
}

// writeReportIn is writeReportOf under dir.
func writeReportIn(t *testing.T, dir, format string, recs []transform.Record) string {
	t.Helper()
	return writeZoneReportIn(t, dir, format, recs, time.UTC)
}

// writeZoneReportIn is writeReportIn of the same days of loc,
// [from, to) on its clock. In a zone other than UTC the output starts a
// UTC day before the dataset, empty, so that it holds the previous period
// of a zone east of UTC too.
func writeZoneReportIn(t *testing.T, dir, format string, recs []transform.Record, loc *time.Location) string {
	t.Helper()
	start := reporttest.Day0
	if loc != time.UTC {
		start = start.AddDate(0, 0, -1)
	}
	reporttest.Write(t, reporttest.FileSink(t, filepath.Join(dir, "out"), format), start, to, recs)
	f, err := os.Create(filepath.Join(dir, "report.html"))
	require.NoError(t, err)
	defer f.Close()
	lo, hi := inZone(from, loc), inZone(to, loc)
	_, err = report.Write(t.Context(), report.Options{Store: filesink.ReadOnly(filepath.Join(dir, "out")), From: lo, To: hi, Location: loc,
		Version: "test", Now: func() time.Time { return hi }}, f)
	require.NoError(t, err)
	return f.Name()
}

// inZone is 00:00 in loc of the UTC date of day.
func inZone(day time.Time, loc *time.Location) time.Time {
	y, m, d := day.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, loc)
}

// truth is what the page must show, computed here from the records alone.
type truth struct {
	events, fails, failActors, noIP int64
	days                            map[string]map[string]int64 // day -> category -> events
	categories, keys                map[string]int64
	actors, ips                     []kv
	failByActor                     []kv
	groups                          map[string]int64
	bursts                          []alerts.Finding
}

type kv struct {
	k string
	n int64
}

func sorted(m map[string]int64) []kv {
	var out []kv
	for k, n := range m {
		out = append(out, kv{k, n})
	}
	slices.SortFunc(out, func(a, b kv) int {
		if c := cmp.Compare(b.n, a.n); c != 0 {
			return c
		}
		return strings.Compare(a.k, b.k)
	})
	return out
}

// groupOf is the README's list of sensitive changes.
func groupOf(key string) string {
	switch {
	case key == "user_role_changed":
		return "Role changes"
	case strings.HasPrefix(key, "access_token_"):
		return "API tokens created, changed or destroyed"
	case strings.HasPrefix(key, "bot_"):
		return "Bot changes"
	case key == "dlp_violation_detected":
		return "DLP violations"
	case strings.HasPrefix(key, "kms_"):
		return "KMS use"
	case key == "audit_events_accessed":
		return "Audit log reads"
	case transform.Category(key) == "other":
		return "Event keys schema v1 does not know (category other)"
	}
	return ""
}

// compute is the truth of [from, to), its days those of from's zone.
func compute(t *testing.T, from, to time.Time) truth {
	tr := truth{days: map[string]map[string]int64{}, categories: map[string]int64{}, keys: map[string]int64{}, groups: map[string]int64{}}
	actors, ips, fails := map[string]int64{}, map[string]int64{}, map[string]int64{}
	engine, err := alerts.New(alerts.Config{Rules: []alerts.Rule{report.DefaultRule()}})
	require.NoError(t, err)
	for _, r := range reporttest.Dataset() {
		if r.CreatedAt < from.UnixMilli() || r.CreatedAt >= to.UnixMilli() {
			continue
		}
		tr.events++
		day := r.Time().In(from.Location()).Format(time.DateOnly)
		if tr.days[day] == nil {
			tr.days[day] = map[string]int64{}
		}
		tr.days[day][r.EventCategory]++
		tr.categories[r.EventCategory]++
		tr.keys[r.EventKey]++
		actors[r.ActorType+" "+r.ActorID]++
		if r.IPAddress.Valid {
			ips[r.IPAddress.Str]++
		} else {
			tr.noIP++
		}
		if r.EventKey == "user_2fa_fail" {
			tr.fails++
			fails[r.ActorType+" "+r.ActorID]++
		}
		if g := groupOf(r.EventKey); g != "" {
			tr.groups[g]++
		}
		engine.Observe(&r)
	}
	tr.actors, tr.ips, tr.failByActor = sorted(actors), sorted(ips), sorted(fails)
	tr.failActors = int64(len(fails))
	tr.bursts = engine.Findings()
	return tr
}

// number reads "1,234" or "1,234 ±5" as 1234.
func number(t *testing.T, s string) int64 {
	t.Helper()
	s, _, _ = strings.Cut(strings.TrimSpace(s), " ")
	n, err := strconv.ParseInt(strings.ReplaceAll(s, ",", ""), 10, 64)
	require.NoError(t, err, "%q is not a number", s)
	return n
}

const tableJS = `(id) => Array.from(document.querySelectorAll('#' + id + ' tbody tr')).map(tr => Array.from(tr.cells).map(td => td.textContent.trim()))`

// TestReportInBrowser renders the report of a known dataset in Chromium,
// takes a screenshot, and reads every section's numbers from the DOM and
// from the charts' data.
//
// In Europe/Moscow (--time-zone) the days, the hours of the failed-2FA
// chart and the times are Moscow's, read from the UTC days they overlap,
// and the page names the zone.
func TestReportInBrowser(t *testing.T) {
	msk, err := time.LoadLocation("Europe/Moscow")
	require.NoError(t, err)
	for _, tc := range []struct {
		format string
		loc    *time.Location
	}{{"parquet", time.UTC}, {"ndjson.gz", time.UTC}, {"parquet", msk}} {
		format := tc.format
		t.Run(format+" "+tc.loc.String(), func(t *testing.T) {
			file := writeReport(t, format)
			if tc.loc != time.UTC {
				file = writeZoneReportIn(t, t.TempDir(), format, reporttest.Dataset(), tc.loc)
			}
			from, to := inZone(from, tc.loc), inZone(to, tc.loc)
			ctx := browser(t)
			exceptions := listenExceptions(t, ctx)
			require.NoError(t, chromedp.Do(ctx,
				chromedp.Navigate("file://"+file),
				chromedp.WaitVisible(chromedp.CSS(`html[data-charts]`)),
			))
			shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			require.NoError(t, err)
			shotPath := filepath.Join(cmp.Or(os.Getenv("REPORT_SCREENSHOT_DIR"), t.TempDir()), "report-"+format+".png")
			require.NoError(t, os.WriteFile(shotPath, shot, 0o644))
			t.Logf("screenshot: %s", shotPath)
			checkScreenshot(t, shot)
			require.Empty(t, exceptions(), "JavaScript errors on the page")

			tr := compute(t, from, to)
			table := func(id string) [][]string {
				return eval[[][]string](t, ctx, "("+tableJS+")("+strconv.Quote(id)+")")
			}
			text := func(sel string) string {
				s, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(sel)))
				require.NoError(t, err, sel)
				return s
			}

			// The zone, named; the failed-2FA chart's hours and the
			// tables' times on its clock.
			require.Equal(t, tc.loc.String(), text("#zone"))
			offset := from.Format("Z07:00")
			require.Equal(t, from.Format(time.DateOnly)+" 00:00:00"+offset+" .. "+to.Format(time.DateOnly)+" 00:00:00"+offset, text("#period"))
			hours := eval[[]string](t, ctx, `echarts.getInstanceByDom(document.getElementById('chart-fails')).getOption().xAxis[0].data`)
			require.Len(t, hours, 72)
			require.Equal(t, from.Format(time.DateOnly)+" 00:00"+offset, hours[0])
			require.Equal(t, from.AddDate(0, 0, 2).Format(time.DateOnly)+" 23:00"+offset, hours[71])

			// Summary cards.
			require.Equal(t, tr.events, number(t, text("#card-events .value")))
			require.Equal(t, tr.fails, number(t, text("#card-fails .value")))
			require.Equal(t, int64(len(tr.bursts)), number(t, text("#card-bursts .value")))
			require.Equal(t, int64(len(tr.actors)), number(t, text("#card-actors .value")))
			require.Equal(t, tr.categories["other"], number(t, text("#card-other .value")))

			// Events per day by category: the table and the chart.
			head := eval[[]string](t, ctx, `Array.from(document.querySelectorAll('#days-table thead th')).map(th => th.textContent)`)
			require.Equal(t, "day", head[0])
			require.Equal(t, "total", head[len(head)-1])
			require.Contains(t, head, "other")
			days := table("days-table")
			require.Len(t, days, 3)
			for i, row := range days {
				day := from.AddDate(0, 0, i).Format(time.DateOnly)
				require.Equal(t, day, row[0])
				var total int64
				for j, cat := range head[1 : len(head)-1] {
					require.Equal(t, tr.days[day][cat], number(t, row[j+1]), "%s %s", day, cat)
					total += tr.days[day][cat]
				}
				require.Equal(t, total, number(t, row[len(row)-1]))
			}
			for cat, n := range tr.categories {
				require.Contains(t, head, cat, "category %s with %d events has a column", cat, n)
			}
			daySeries := eval[[]struct {
				Name string  `json:"name"`
				Data []int64 `json:"data"`
			}](t, ctx, `echarts.getInstanceByDom(document.getElementById('chart-days')).getOption().series.map(s => ({name: s.name, data: s.data}))`)
			require.Len(t, daySeries, len(head)-2)
			for _, s := range daySeries {
				for i, n := range s.Data {
					require.Equal(t, tr.days[from.AddDate(0, 0, i).Format(time.DateOnly)][s.Name], n, "chart %s day %d", s.Name, i)
				}
			}

			// Failed 2FA: actors, bursts, the chart's hourly stacks.
			fa := table("fail-actors-table")
			for i, row := range fa {
				require.Equal(t, tr.failByActor[i].k, row[0])
				require.Equal(t, tr.failByActor[i].n, number(t, row[1]))
			}
			bursts := table("bursts-table")
			require.Len(t, bursts, len(tr.bursts))
			require.Len(t, tr.bursts, 2, "the planted burst and the one across midnight")
			for i, row := range bursts {
				require.Equal(t, "User "+tr.bursts[i].ActorID, row[1])
				require.Equal(t, int64(tr.bursts[i].Count), number(t, row[3]))
				require.Equal(t, tr.bursts[i].EventIDs[0], row[7])
				require.Equal(t, tr.bursts[i].First.In(tc.loc).Format("2006-01-02 15:04:05Z07:00"), row[4])
			}
			require.Equal(t, "User "+reporttest.BurstActor, bursts[0][1])
			require.Equal(t, "User "+reporttest.MidnightActor, bursts[1][1])
			failTotal := eval[int64](t, ctx, `echarts.getInstanceByDom(document.getElementById('chart-fails')).getOption().series.reduce((a, s) => a + s.data.reduce((x, y) => x + y, 0), 0)`)
			require.Equal(t, tr.fails, failTotal)
			areas := eval[int](t, ctx, `echarts.getInstanceByDom(document.getElementById('chart-fails')).getOption().series.find(s => s.name === 'bursts flagged').markArea.data.length`)
			require.Equal(t, 2, areas)

			// Top actors and addresses.
			for id, want := range map[string][]kv{"actors-table": tr.actors, "ips-table": tr.ips} {
				rows := table(id)
				require.Len(t, rows, min(15, len(want)), id)
				for i, row := range rows {
					name := row[1]
					if id == "actors-table" {
						name = row[1] + " " + row[2]
					}
					require.Equal(t, want[i].k, name, "%s row %d", id, i)
					require.Equal(t, want[i].n, number(t, row[len(row)-2]), "%s row %d", id, i)
				}
			}

			// Sensitive changes: counts per kind, and the latest rows.
			sens := table("sensitive-table")
			got := map[string]int64{}
			for _, row := range sens {
				got[row[0]] = number(t, row[2])
			}
			for g, n := range tr.groups {
				require.Equal(t, n, got[g], g)
			}
			require.NotZero(t, tr.groups["Event keys schema v1 does not know (category other)"])
			roles := table("changes-0")
			require.Len(t, roles, int(min(50, tr.groups["Role changes"])))
			require.Contains(t, roles[0][5], "user → admin")

			// Against the previous period.
			prev := compute(t, from.AddDate(0, 0, -3), from)
			cmpRows := map[string][]string{}
			for _, row := range table("compare-table") {
				cmpRows[row[0]] = row
			}
			require.Equal(t, prev.events, number(t, cmpRows["events"][1]))
			require.Equal(t, tr.events, number(t, cmpRows["events"][2]))
			require.Equal(t, tr.events-prev.events, number(t, strings.TrimPrefix(cmpRows["events"][3], "+")))
			for cat, n := range tr.categories {
				require.Equal(t, prev.categories[cat], number(t, cmpRows["category "+cat][1]), cat)
				require.Equal(t, n, number(t, cmpRows["category "+cat][2]), cat)
			}
			require.Equal(t, prev.fails, number(t, cmpRows["failed 2FA"][1]))

			// Every event key, the unknown one included.
			keys := table("keys-table")
			require.Len(t, keys, len(tr.keys))
			for _, row := range keys {
				require.Equal(t, tr.keys[row[0]], number(t, row[2]), row[0])
			}
			require.Equal(t, tr.keys[reporttest.UnknownKey], func() int64 {
				for _, row := range keys {
					if row[0] == reporttest.UnknownKey && row[1] == "other" {
						return number(t, row[2])
					}
				}
				return -1
			}())

			// Each chart drew SVG.
			drawn := eval[map[string]int](t, ctx, `Object.fromEntries(Array.from(document.querySelectorAll('.chart')).map(el => [el.id, el.querySelectorAll('svg path, svg rect').length]))`)
			require.Len(t, drawn, 6)
			for id, n := range drawn {
				require.Greater(t, n, 10, "chart %s drew nothing", id)
			}
		})
	}
}

// eval evaluates a JavaScript expression on the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	require.NoError(t, err, expr)
	return v
}

// checkScreenshot: a tall page with more than a few colours (charts drawn).
func checkScreenshot(t *testing.T, b []byte) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	require.NoError(t, err)
	require.Greater(t, img.Bounds().Dy(), 3000, "the page is long")
	colours := map[uint32]bool{}
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y += 7 {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x += 7 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colours[r>>11<<10|g>>11<<5|bl>>11] = true
		}
	}
	require.Greater(t, len(colours), 30, "the screenshot has the charts' colours")
}

// TestNoNetworkRequest opens the report and records every request the page
// makes and every load its Content-Security-Policy refuses: only the file
// itself may load. The same watch on a page with one remote image proves
// it sees requests.
func TestNoNetworkRequest(t *testing.T) {
	file := writeReport(t, "parquet")
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	probe := filepath.Join(t.TempDir(), "probe.html")
	require.NoError(t, os.WriteFile(probe, bytes.Replace(b, []byte("<main>"), []byte(`<main><img src="http://127.0.0.1:9/probe.png">`), 1), 0o644))

	for _, tc := range []struct {
		name   string
		file   string
		remote bool
	}{{"report", file, false}, {"page with a remote image", probe, true}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := browser(t)
			var mu sync.Mutex
			var requests []string
			require.NoError(t, chromedp.Listen(ctx, func(ev any) {
				if e, ok := ev.(*network.EventRequestWillBeSent); ok {
					mu.Lock()
					requests = append(requests, e.Request.URL)
					mu.Unlock()
				}
			}))
			_, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
				Source: `window.__blocked = []; document.addEventListener('securitypolicyviolation', e => window.__blocked.push(e.blockedURI));`})
			require.NoError(t, err)
			require.NoError(t, chromedp.Do(ctx,
				chromedp.Navigate("file://"+tc.file),
				chromedp.WaitVisible(chromedp.CSS(`html[data-charts]`)),
				chromedp.Sleep(500*time.Millisecond), // late loads (fonts, images) would show by now
			))
			blocked := eval[[]string](t, ctx, `window.__blocked`)
			mu.Lock()
			defer mu.Unlock()
			var other []string
			for _, u := range requests {
				if u != "file://"+tc.file {
					other = append(other, u)
				}
			}
			other = append(other, blocked...)
			require.Contains(t, requests, "file://"+tc.file, "the watch saw the page itself")
			if !tc.remote {
				require.Empty(t, other, "requests besides the page")
				return
			}
			require.NotEmpty(t, other)
			for _, u := range other {
				require.Contains(t, u, "127.0.0.1:9/probe.png")
			}
		})
	}
}

// TestReportWithoutFailed2FA: a period without a failed 2FA (a quiet
// week) draws every other chart, without a JavaScript error.
func TestReportWithoutFailed2FA(t *testing.T) {
	var recs []transform.Record
	for _, r := range reporttest.Dataset() {
		if r.EventKey != "user_2fa_fail" {
			recs = append(recs, r)
		}
	}
	file := writeReportOf(t, "parquet", recs)

	ctx := browser(t)
	exceptions := listenExceptions(t, ctx)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("file://"+file))) // app.js runs before the load event
	require.Empty(t, exceptions(), "JavaScript errors on the page")
	require.Equal(t, "5", eval[string](t, ctx, `document.documentElement.getAttribute('data-charts')`),
		"days, actors, addresses, sensitive changes, comparison")
	require.Equal(t, 0, eval[int](t, ctx, `document.getElementById('chart-fails') ? echarts.getInstanceByDom(document.getElementById('chart-fails')) ? 1 : 0 : 0`))
}

// listenExceptions collects the JavaScript exceptions thrown in the page of
// ctx from now on; the function returned gives those so far.
func listenExceptions(t *testing.T, ctx context.Context) func() []string {
	var mu sync.Mutex
	var exceptions []string
	require.NoError(t, chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok {
			mu.Lock()
			exceptions = append(exceptions, fmt.Sprintf("%s (line %d)", e.ExceptionDetails.Text, e.ExceptionDetails.LineNumber))
			mu.Unlock()
		}
	}))
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(exceptions)
	}
}

// TestLongNamesKeepThePageWidth: an actor id of any length (here 1,500
// characters) shown in every chart's tooltip wraps inside the page rather
// than widening it.
func TestLongNamesKeepThePageWidth(t *testing.T) {
	long := strings.Repeat("very-long-actor-id-", 80)
	recs := reporttest.Dataset()
	for i := range 6 {
		recs = append(recs, reporttest.Rec(fmt.Sprint("long-", i), from.Add(time.Duration(i)*time.Minute), "user_2fa_fail", long, "203.0.113.9", ""))
	}
	file := writeReportOf(t, "parquet", recs)

	ctx := browser(t)
	exceptions := listenExceptions(t, ctx)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate("file://"+file),
		chromedp.WaitVisible(chromedp.CSS(`html[data-charts]`)),
	))
	width := eval[int](t, ctx, `window.innerWidth`)
	widths := eval[map[string]int](t, ctx, `(() => {
	  const out = {};
	  document.querySelectorAll('.chart').forEach(el => {
	    const c = echarts.getInstanceByDom(el);
	    let w = 0;
	    for (let i = 0; i < 3; i++) {
	      c.dispatchAction({type: 'showTip', seriesIndex: 0, dataIndex: i});
	      w = Math.max(w, document.documentElement.scrollWidth);
	    }
	    c.dispatchAction({type: 'hideTip'});
	    out[el.id] = w;
	  });
	  return out;
	})()`)
	require.Len(t, widths, 6)
	for id, w := range widths {
		require.LessOrEqual(t, w, width, "page width with the tooltip of %s shown", id)
	}
	require.Empty(t, exceptions(), "JavaScript errors on the page")
}

// TestUnbreakableValuesKeepThePageWidth: a value without a place to break
// it (an actor id, event key, address or detail of 40,000 characters, as
// any API field may be) wraps inside its table cell; the page stays as
// wide as the window.
func TestUnbreakableValuesKeepThePageWidth(t *testing.T) {
	long := strings.Repeat("A", 40000)
	recs := reporttest.Dataset()
	for i := range 6 {
		for _, key := range []string{"user_2fa_fail", "user_role_changed", long} {
			r := reporttest.Rec(fmt.Sprint("unbreakable-", key[:4], i), from.Add(time.Duration(i)*time.Minute), key, long, long,
				`{"new_company_role":"`+long+`","previous_company_role":"user"}`)
			r.EntityID = long
			recs = append(recs, r)
		}
	}
	file := writeReportOf(t, "parquet", recs)

	ctx := openPage(t, file)
	width := eval[int](t, ctx, `window.innerWidth`)
	wide := eval[[]string](t, ctx, `Array.from(document.querySelectorAll('table')).
	  filter(el => el.getBoundingClientRect().right > window.innerWidth).map(el => el.id)`)
	require.Empty(t, wide, "tables wider than the window")
	require.LessOrEqual(t, eval[int](t, ctx, `document.documentElement.scrollWidth`), width)
}

// TestChartsReadByScreenReader: each chart is an image whose accessible
// name says what it shows and where its numbers are, as the page wrote it;
// the charting library's generated description ("the data for 2026-11-04
// is 0, 39, 39, NaN") does not replace it.
func TestChartsReadByScreenReader(t *testing.T) {
	file := writeReport(t, "parquet")
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	ctx := openPage(t, file)
	written := map[string]string{}
	for _, m := range regexp.MustCompile(`id="(chart-[a-z]+)" role="img" aria-label="([^"]*)"`).FindAllStringSubmatch(string(b), -1) {
		written[m[1]] = m[2]
	}
	require.Len(t, written, 6)
	charts := eval[[][]string](t, ctx, `Array.from(document.querySelectorAll('.chart')).map(el => [el.id, el.getAttribute('role'), el.getAttribute('aria-label')])`)
	require.Len(t, charts, 6)
	for _, c := range charts {
		id, role, label := c[0], c[1], c[2]
		require.Equal(t, "img", role, id)
		require.Equal(t, written[id], label, "%s: the label the page wrote", id)
		require.Contains(t, label, "table", "%s: says where its numbers are", id)
	}
}

// TestNotExportedIsNotDrawn: a sensitive kind none of whose keys the output
// holds (audit-log reads, dropped by the shipped pipeline.yaml) is not
// drawn as a bar of 0 beside the table that says "not exported".
func TestNotExportedIsNotDrawn(t *testing.T) {
	dir := t.TempDir()
	sink := reporttest.FileSink(t, filepath.Join(dir, "out"), "parquet")
	_, err := sink.(sinks.Claimer).Claim(t.Context(), sinks.Claim{Identity: sinks.Identity{Workspace: "test",
		DropEventKeys: []string{"audit_events_accessed"}}, Create: true})
	require.NoError(t, err)
	recs := slices.DeleteFunc(reporttest.Dataset(), func(r transform.Record) bool { return r.EventKey == "audit_events_accessed" })
	reporttest.Write(t, sink, reporttest.Day0, to, recs)
	file := filepath.Join(dir, "report.html")
	f, err := os.Create(file)
	require.NoError(t, err)
	_, err = report.Write(t.Context(), report.Options{Store: filesink.ReadOnly(filepath.Join(dir, "out")), From: from, To: to, Version: "test"}, f)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	ctx := openPage(t, file)
	require.Equal(t, "not exported", eval[string](t, ctx, `document.querySelector('#sensitive-table tr[data-group="Audit log reads"] td.n').textContent`))
	kinds := eval[[]string](t, ctx, `echarts.getInstanceByDom(document.getElementById('chart-sensitive')).getOption().yAxis[0].data`)
	require.Contains(t, kinds, "Role changes")
	require.NotContains(t, kinds, "Audit log reads")
}

// TestBurstsShadedAtTheirHours: each burst's span on the failed-2FA chart
// lies over the hours of its events (was: drawn hours away from them, as
// ECharts places a bar series' markArea by other coordinates than its
// axis: the planted burst of 10:00 at 13:00).
func TestBurstsShadedAtTheirHours(t *testing.T) {
	file := writeReport(t, "parquet")
	ctx := openPage(t, file)
	type span struct {
		Name             string
		From, To         float64 // pixels of the burst's first and last hour
		AreaLo, AreaHi   float64 // pixels the drawn area covers
		AreaFound, Hours int
	}
	spans := eval[[]span](t, ctx, `(() => {
	  const c = echarts.getInstanceByDom(document.getElementById('chart-fails'));
	  const data = JSON.parse(document.getElementById('report-data').textContent).fails;
	  const areas = [];
	  c.getZr().storage.getDisplayList().forEach(el => {
	    if (el.type === 'polygon' && String(el.style.fill).replace(/ /g, '').startsWith('rgba(192,57,43')) {
	      const m = el.getComputedTransform();
	      const xs = el.shape.points.map(p => m ? m[0] * p[0] + m[2] * p[1] + m[4] : p[0]);
	      areas.push([Math.min(...xs), Math.max(...xs)]);
	    }
	  });
	  return data.bursts.map((b, i) => {
	    const a = areas[i] || [NaN, NaN];
	    return {Name: b.name, From: c.convertToPixel({xAxisIndex: 0}, b.from), To: c.convertToPixel({xAxisIndex: 0}, b.to),
	      AreaLo: a[0], AreaHi: a[1], AreaFound: areas.length, Hours: data.labels.length};
	  });
	})()`)
	require.Len(t, spans, 2)
	for _, s := range spans {
		require.Equal(t, 2, s.AreaFound, "one drawn area per burst")
		require.InDelta(t, s.From, s.AreaLo, 8, "burst of %s starts at its first hour", s.Name)
		require.InDelta(t, s.To, s.AreaHi, 8, "burst of %s ends at its last hour", s.Name)
	}
}

// TestRightToLeftValuesStayInPlace: an actor id in a right-to-left script,
// or one that carries a right-to-left override, does not reorder the
// actors and counts listed after it: each count shows right of its own
// actor (was: "User (12) שלום, User 10001(10) …": the override in one id
// reversed the rest of the cell, a count beside another actor).
func TestRightToLeftValuesStayInPlace(t *testing.T) {
	recs := reporttest.Dataset()
	ids := []string{"שלום", "10001\u202e", "مرحبا 12"}
	for i, id := range ids {
		for k := range 12 - i {
			recs = append(recs, reporttest.Rec(fmt.Sprint("rtl-", i, "-", k), from.Add(5*time.Hour+time.Duration(k)*time.Minute),
				"user_role_changed", id, "203.0.113.5", `{"new_company_role":"admin","previous_company_role":"user"}`))
		}
	}
	file := writeReportOf(t, "parquet", recs)
	ctx := openPage(t, file)
	// Where each string shows, [top, left], in the order given, in the
	// cell of the role changes' most active actors.
	at := eval[[][2]float64](t, ctx, `((needles) => {
	  const cell = document.querySelector('#sensitive-table tr[data-group="Role changes"] td:last-child');
	  const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
	  const nodes = [];
	  for (let n = walker.nextNode(); n; n = walker.nextNode()) { nodes.push(n); }
	  return needles.map(s => {
	    for (const n of nodes) {
	      const i = n.textContent.indexOf(s);
	      if (i >= 0) { const r = document.createRange(); r.setStart(n, i); r.setEnd(n, i + s.length); const b = r.getBoundingClientRect(); return [b.top, b.left]; }
	    }
	    return [-1, -1];
	  });
	})(`+"[\"שלום\", \"(12)\", \"10001\", \"(11)\", \"مرحبا\", \"(10)\"]"+`)`)
	require.Len(t, at, 6)
	cell := eval[string](t, ctx, `document.querySelector('#sensitive-table tr[data-group="Role changes"] td:last-child').textContent`)
	for i := range at {
		require.GreaterOrEqual(t, at[i][0], 0.0, "string %d found in %q", i, cell)
		if i == 0 {
			continue
		}
		if sameLine := math.Abs(at[i][0]-at[i-1][0]) < 4; sameLine {
			require.Greater(t, at[i][1], at[i-1][1], "string %d shows right of string %d: %v", i, i-1, at)
		} else {
			require.Greater(t, at[i][0], at[i-1][0], "string %d shows on a line below string %d: %v", i, i-1, at)
		}
	}
}

// TestRowHeaders: in the tables whose first column names the row (the day,
// the actor, the kind, the measure, the event key), that cell is a row
// header, so a screen reader moving down a column says which row each
// number is of; the page keeps its look and width.
func TestRowHeaders(t *testing.T) {
	file := writeReport(t, "parquet")
	ctx := openPage(t, file)
	for _, id := range []string{"days-table", "fail-actors-table", "sensitive-table", "compare-table", "keys-table"} {
		first := eval[[]string](t, ctx, `Array.from(document.querySelectorAll('#`+id+` tbody tr')).map(tr => tr.cells[0].tagName + ' ' + tr.cells[0].scope + ' ' + getComputedStyle(tr.cells[0]).fontWeight)`)
		require.NotEmpty(t, first, id)
		for _, c := range first {
			require.Equal(t, "TH row 400", c, "%s: the first cell of each row", id)
		}
	}
	require.Equal(t, "new", eval[string](t, ctx, `getComputedStyle(document.querySelector('#keys-table tr.unknown > :first-child'), '::after').content.replaceAll('"', '').trim()`))
}

// TestHeadings: every section of the page, the summary's cards included,
// starts with a heading, so a screen reader lists them all (was: the cards
// had none, and moving by headings passed them by).
func TestHeadings(t *testing.T) {
	file := writeReport(t, "parquet")
	ctx := openPage(t, file)
	require.Equal(t, []string{"Summary", "Events per day by category", "Failed 2FA by hour and actor", "Top actors and IP addresses",
		"Rare and sensitive changes", "Against the previous period", "Event keys"},
		eval[[]string](t, ctx, `Array.from(document.querySelectorAll('h2')).map(h => h.textContent)`))
	require.Empty(t, eval[[]string](t, ctx, `Array.from(document.querySelectorAll('section')).map(s => s.firstElementChild.tagName).filter(n => n !== 'H2')`),
		"each section starts with its heading")
	require.LessOrEqual(t, eval[int](t, ctx, `document.querySelector('#summary h2').getBoundingClientRect().height|0`), 1, "shown to screen readers only")
}

// TestHostileTextNeverRuns: markup in the events' values (an actor id, an
// address, an event key, a name in the details) shows as text in the
// tables and the charts' tooltips, and runs nothing; and markup that got
// into the page past that escaping (an edited report, a bug) runs nothing
// either: the Content-Security-Policy lets only the page's own two
// scripts run, by their hashes (was: script-src 'unsafe-inline', under
// which any inline script or event handler in the page ran).
func TestHostileTextNeverRuns(t *testing.T) {
	payloads := []string{`<script>window.__ran='script'</script>`, `"><img src=x onerror="window.__ran='img'">`,
		`</script><script>window.__ran='close'</script>`, `<svg onload="window.__ran='svg'">`, `<!--<script>`}
	recs := reporttest.Dataset()
	for i, p := range payloads {
		for k := range 6 {
			details, err := json.Marshal(map[string]string{"new_company_role": p, "previous_company_role": "user", "name": p})
			require.NoError(t, err)
			recs = append(recs,
				reporttest.Rec(fmt.Sprint("hostile-", i, "-", k), from.Add(time.Duration(10*i+k)*time.Minute), "user_role_changed", p, p, string(details)),
				reporttest.Rec(fmt.Sprint("hostile-key-", i, "-", k), from.Add(time.Duration(10*i+k)*time.Minute), "x_"+p, p, p, ""),
				reporttest.Rec(fmt.Sprint("hostile-2fa-", i, "-", k), from.Add(time.Duration(10*i+k)*time.Minute), "user_2fa_fail", p, p, ""))
		}
	}
	file := writeReportOf(t, "parquet", recs)
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	edited := filepath.Join(t.TempDir(), "edited.html")
	injected := `<main><script>window.__ran='injected'</script><img src="data:," onerror="window.__ran='injected-img'"><svg onload="window.__ran='injected-svg'"></svg>`
	require.NoError(t, os.WriteFile(edited, bytes.Replace(b, []byte("<main>"), []byte(injected), 1), 0o600))

	for _, f := range []string{file, edited} {
		t.Run(filepath.Base(f), func(t *testing.T) {
			ctx := browser(t)
			exceptions := listenExceptions(t, ctx)
			require.NoError(t, chromedp.Do(ctx,
				chromedp.Navigate("file://"+f),
				chromedp.WaitVisible(chromedp.CSS(`html[data-charts]`)),
			))
			// Every tooltip of every chart shown once, as a hover would.
			tips := eval[int](t, ctx, `(() => {
			  let n = 0;
			  document.querySelectorAll('.chart').forEach(el => {
			    const c = echarts.getInstanceByDom(el);
			    c.getOption().series.forEach((s, si) => {
			      for (let i = 0; i < 60; i++) { c.dispatchAction({type: 'showTip', seriesIndex: si, dataIndex: i}); n++; }
			    });
			    c.dispatchAction({type: 'hideTip'});
			  });
			  return n;
			})()`)
			require.Positive(t, tips)
			require.Equal(t, "", eval[string](t, ctx, `String(window.__ran || '')`), "a script in the page ran")
			require.Zero(t, eval[int](t, ctx, `document.querySelectorAll('main img:not([src^="data:"]), main iframe, main object, main embed').length`))
			text := eval[string](t, ctx, `document.querySelector('#sensitive-table').textContent + document.querySelector('#keys-table').textContent`)
			for _, p := range payloads {
				require.Contains(t, text, p, "shown as text")
			}
			require.Empty(t, exceptions(), "JavaScript errors on the page")
		})
	}
}

// TestTablesFitLaptopPaperAndPhone: a period with events of every category
// has 17 columns in its table of events per day; the table fits a laptop
// window, where it had its total column behind a scroll bar, and A4
// landscape paper, where that column was cut off the printed page. On a
// phone's width the page stays as wide as the window: a table wider than
// that scrolls in a box of its own (was: the bursts, the actors with most
// failures and the comparison widened the whole page to 716 px).
func TestTablesFitLaptopPaperAndPhone(t *testing.T) {
	file := writeReportOf(t, "parquet", everyCategory())
	ctx := browser(t)
	// A4 landscape, 297 mm less the page's two 12 mm margins, in CSS pixels.
	const paper = (297 - 2*12) * 96 * 10 / 254 // 1031.8, rounded down
	for _, tc := range []struct {
		name  string
		width int64
		media string
	}{{"laptop", 1280, "screen"}, {"paper", int64(paper), "print"}, {"phone", 375, "screen"}} {
		_, err := chromedp.Call(ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: tc.width, Height: 900, DeviceScaleFactor: 1})
		require.NoError(t, err)
		_, err = chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: tc.media})
		require.NoError(t, err)
		require.NoError(t, chromedp.Do(ctx,
			chromedp.Navigate("file://"+file),
			chromedp.WaitVisible(chromedp.CSS(`html[data-charts]`)),
		))
		require.Equal(t, 17, eval[int](t, ctx, `document.querySelectorAll('#days-table thead th').length`), tc.name)
		require.LessOrEqual(t, eval[int](t, ctx, `document.documentElement.scrollWidth`), int(tc.width), "%s: page width; wider: %v", tc.name,
			eval[[]string](t, ctx, `Array.from(document.querySelectorAll('main *')).filter(e => e instanceof HTMLElement &&
			  e.getBoundingClientRect().right > innerWidth && e.parentElement.getBoundingClientRect().right <= innerWidth).map(e => e.tagName + '#' + e.id)`))
		if tc.name != "phone" {
			require.LessOrEqual(t, eval[int](t, ctx, `document.querySelector('#days-table').scrollWidth`),
				eval[int](t, ctx, `document.querySelector('#days-table').parentElement.clientWidth`), "%s: the days table in its box", tc.name)
		}
	}
}

// TestOvercountNotDrawnAsEvents: past its counters (10,000 addresses) a
// top list's count is an upper bound, "175 ±174" in the table; its bar
// shows the events certain, with the possible overcount apart (was: bars
// of 175 for addresses of 1 or 2 events, in a 90-day report of random
// addresses).
func TestOvercountNotDrawnAsEvents(t *testing.T) {
	var recs []transform.Record
	for i := range 12000 {
		recs = append(recs, reporttest.Rec(fmt.Sprint("addr-", i), from.Add(time.Duration(i)*time.Second), "user_login", "5",
			fmt.Sprintf("10.9.%d.%d", i/250, i%250), ""))
	}
	file := writeReportOf(t, "parquet", recs)
	ctx := openPage(t, file)
	rows := eval[[]string](t, ctx, `Array.from(document.querySelectorAll('#ips-table tbody tr')).map(tr => tr.cells[2].textContent)`)
	require.NotEmpty(t, rows)
	var certain, over []int64
	for _, r := range rows {
		c, e := number(t, r), int64(0)
		if _, err, ok := strings.Cut(r, " ±"); ok {
			e = number(t, err)
		}
		certain, over = append(certain, c-e), append(over, e)
	}
	require.Positive(t, slices.Max(over), "counts past the counters are marked ±: %q", rows)
	drawn := eval[[]struct {
		Name string  `json:"name"`
		Data []int64 `json:"data"`
	}](t, ctx, `echarts.getInstanceByDom(document.getElementById('chart-ips')).getOption().series.map(s => ({name: s.name, data: s.data.slice().reverse()}))`)
	require.Len(t, drawn, 2)
	require.Equal(t, "events, at least", drawn[0].Name)
	require.Equal(t, certain, drawn[0].Data, "the bars' events are those certain")
	require.Equal(t, "possible overcount", drawn[1].Name)
	require.Equal(t, over, drawn[1].Data)
	require.Zero(t, eval[int](t, ctx, `document.querySelectorAll('#ips-tied').length`), "equal upper bounds are no tie")
}

// everyCategory is the dataset with 40 events of every key of schema v1 on
// each day of the period: every category has a column and a series.
func everyCategory() []transform.Record {
	recs := reporttest.Dataset()
	for i, key := range transform.EventKeys() {
		for d := range 3 {
			for k := range 40 {
				recs = append(recs, reporttest.Rec(fmt.Sprint("every-", i, "-", d, "-", k), from.Add(time.Duration(24*d)*time.Hour+time.Duration(k)*time.Minute),
					key, fmt.Sprint(10000+k), "198.51.100.7", ""))
			}
		}
	}
	return recs
}

// TestPrintedLegendsNameEverySeries: printed, the legend of the days chart
// lists all 15 categories within the chart, above its bars (was: its
// scrolling legend's first page only, "1/2", the colours of bots, oauth,
// video_calls and other named nowhere on paper).
func TestPrintedLegendsNameEverySeries(t *testing.T) {
	file := writeReportOf(t, "parquet", everyCategory())
	ctx := browser(t)
	const paper = (297 - 2*12) * 96 * 10 / 254
	_, err := chromedp.Call(ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: paper, Height: 900, DeviceScaleFactor: 1})
	require.NoError(t, err)
	_, err = chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: "print"})
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate("file://"+file),
		chromedp.WaitVisible(chromedp.CSS(`html[data-charts]`)),
	))
	// Printing lays the page out as soon as the beforeprint handlers
	// return: the legends are measured right then, in the same script.
	for _, id := range []string{"chart-days", "chart-fails"} {
		got := eval[struct {
			Names   []string `json:"names"`
			Outside []string `json:"outside"`
			Legend  float64  `json:"legend"`
			Grid    float64  `json:"grid"`
		}](t, ctx, `(() => {
		  window.dispatchEvent(new Event('beforeprint'));
		  const el = document.getElementById('`+id+`'), box = el.getBoundingClientRect(), c = echarts.getInstanceByDom(el);
		  const names = c.getOption().series.map(s => s.name);
		  const outside = Array.from(el.querySelectorAll('svg text')).filter(t => names.includes(t.textContent)).
		    filter(t => { const r = t.getBoundingClientRect(); return r.left < box.left || r.right > box.right; }).map(t => t.textContent);
		  return {names, outside,
		    legend: c.getViewOfComponentModel(c.getModel().getComponent('legend')).group.getBoundingRect().height,
		    grid: c.getModel().getComponent('grid').coordinateSystem.getRect().y};
		})()`)
		require.NotEmpty(t, got.Names, id)
		require.Empty(t, got.Outside, "%s: legend names off the printed chart", id)
		require.GreaterOrEqual(t, got.Grid, got.Legend, "%s: the bars start below the legend", id)
	}
}
