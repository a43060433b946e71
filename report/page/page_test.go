package page

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/internal/notices"
	"github.com/pachca-export/pachca-export/report/digest"
	"github.com/pachca-export/pachca-export/report/reader"
	"github.com/pachca-export/pachca-export/transform"
)

// TestVendoredECharts: the embedded build is the pinned version, with its
// license notice, and the release's notices and SBOM name that version.
func TestVendoredECharts(t *testing.T) {
	require.Contains(t, echartsJS, `version="`+EChartsVersion+`"`)
	require.Contains(t, echartsNotice, "Apache ECharts")
	e := notices.Embedded[0]
	require.Contains(t, e.Name, "Apache ECharts")
	require.Equal(t, []string{"echarts", EChartsVersion, "pkg:npm/echarts@" + EChartsVersion}, []string{e.Package, e.Version, e.PURL})
}

// TestSelfContained: the page refers to nothing outside itself, and
// user-controlled text is escaped.
func TestSelfContained(t *testing.T) {
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	b, err := digest.New(digest.Options{From: from, To: from.AddDate(0, 0, 1)})
	require.NoError(t, err)
	s := b.Finish()
	s.TopIPs = []digest.Top{{Key: `<script>alert(1)</script>`, Count: 1}}
	var out bytes.Buffer
	require.NoError(t, Render(&out, &Data{Title: "t", Source: "dir", Current: s, Generated: from}))
	html := out.String()
	require.NotContains(t, html, "<script>alert(1)")
	require.Contains(t, html, "&lt;script&gt;alert(1)")
	markup := regexp.MustCompile(`(?s)<script[^>]*>.*?</script>`).ReplaceAllString(html, "<script></script>")
	require.Equal(t, 3, strings.Count(markup, "<script></script>"), "data, library, app: all inline")
	for _, m := range regexp.MustCompile(`(?i)\s(src|href)\s*=\s*"([^"]*)"`).FindAllStringSubmatch(markup, -1) {
		require.True(t, strings.HasPrefix(m[2], "#"), "reference outside the page: %s", m[0])
	}
	require.Contains(t, html, "default-src 'none'")
}

// TestCompareLowerBounds: a distinct count past its counters' capacity is a
// lower bound; the comparison says so instead of a change of 0 between two
// capacities.
func TestCompareLowerBounds(t *testing.T) {
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	// summary of one day with n distinct addresses, at most 3 counted exactly.
	summary := func(day time.Time, n int) *digest.Summary {
		b, err := digest.New(digest.Options{From: day, To: day.AddDate(0, 0, 1), IPCapacity: 3})
		require.NoError(t, err)
		var rows []reader.Row
		for i := range n {
			rows = append(rows, reader.Row{ID: fmt.Sprint(i), CreatedAt: day.UnixMilli() + int64(i), EventKey: "user_login",
				EventCategory: "auth", ActorID: "1", ActorType: "User", IPAddress: transform.NullString{Valid: true, Str: fmt.Sprint("10.0.0.", i)}})
		}
		b.Add(rows)
		return b.Finish()
	}
	for _, tc := range []struct {
		name      string
		prev, cur int
		wantCells string
	}{
		{"both exact", 2, 3, `<td class="n">2</td><td class="n">3</td><td class="n up">&#43;1</td><td class="n">&#43;50.0%</td>`},
		{"this period past capacity", 2, 5, `<td class="n">2</td><td class="n">≥3</td><td class="n up">≥&#43;1</td><td class="n">≥&#43;50.0%</td>`},
		{"both past capacity", 9, 5, `<td class="n">≥3</td><td class="n">≥3</td><td class="n">unknown</td><td class="n">unknown</td>`},
		{"previous past capacity", 9, 2, `<td class="n">≥3</td><td class="n">2</td><td class="n">unknown</td><td class="n">unknown</td>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prev, cur := summary(from.AddDate(0, 0, -1), tc.prev), summary(from, tc.cur)
			var out bytes.Buffer
			require.NoError(t, Render(&out, &Data{Title: "t", Source: "dir", Current: cur, Previous: prev, Generated: from,
				Deltas: digest.Compare(cur, prev)}))
			row := regexp.MustCompile(`<tr data-metric="distinct IP addresses"><th scope="row">distinct IP addresses</th>(.*?)</tr>`).FindStringSubmatch(out.String())
			require.NotNil(t, row)
			require.Equal(t, tc.wantCells, row[1])
		})
	}
}

// TestHourLabelsSayUTC: the failed-2FA chart's hours, which its tooltip
// shows, are marked as UTC like the tables' times.
func TestHourLabelsSayUTC(t *testing.T) {
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	b, err := digest.New(digest.Options{From: from, To: from.AddDate(0, 0, 1)})
	require.NoError(t, err)
	b.Add([]reader.Row{{ID: "1", CreatedAt: from.Add(3 * time.Hour).UnixMilli(), EventKey: digest.Fail2FAKey, EventCategory: "auth", ActorID: "1", ActorType: "User"}})
	c := buildCharts(&Data{Current: b.Finish()}, nil, time.UTC)
	require.Len(t, c.Fails.Labels, 24)
	require.Equal(t, "2026-11-01 03:00Z", c.Fails.Labels[3])
}

// TestSmallShares: an actor or address with events never shows a share of
// 0.0% (was: every row of a large period's top lists, 258 of 1,000,000
// events among them, read 0.0%).
func TestSmallShares(t *testing.T) {
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	b, err := digest.New(digest.Options{From: from, To: from.AddDate(0, 0, 1)})
	require.NoError(t, err)
	s := b.Finish()
	s.Events = 1_000_000
	s.TopActors = []digest.Actor{{Type: "User", ID: "1", Count: 258}, {Type: "User", ID: "2", Count: 1_000}, {Type: "User", ID: "3", Count: 500_000}}
	var out bytes.Buffer
	require.NoError(t, Render(&out, &Data{Title: "t", Source: "dir", Current: s, Generated: from}))
	var shares []string
	for _, m := range regexp.MustCompile(`<td class="n">([^<]*%)</td></tr>`).FindAllStringSubmatch(out.String(), -1) {
		shares = append(shares, m[1])
	}
	require.Equal(t, []string{"&lt;0.1%", "0.1%", "50.0%"}, shares)
}

// TestBidiControlsShownEscaped: a bidirectional override in a value the
// workspace's members choose (a bot's name in its changes) shows as its
// escape in the table of sensitive changes, in what changed, the details
// and their tooltip, so that no cell reads reversed (was: the override
// itself, with which a name "e\u202egnp.exe" read "exe.png").
func TestBidiControlsShownEscaped(t *testing.T) {
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	b, err := digest.New(digest.Options{From: from, To: from.AddDate(0, 0, 1)})
	require.NoError(t, err)
	b.Add([]reader.Row{{ID: "ev-1", CreatedAt: from.UnixMilli() + 1000, EventKey: "bot_oauth_client_updated", EventCategory: "bots",
		ActorID: "5", ActorType: "User", DetailsJSON: "{\"bot_id\":7,\"changes\":{\"name\":\"e\u202egnp.exe\u2069\u200f\"}}"}})
	var out bytes.Buffer
	require.NoError(t, Render(&out, &Data{Title: "t", Source: "dir", Current: b.Finish(), Generated: from}))
	row := regexp.MustCompile(`(?s)<tr data-id="ev-1">.*?</tr>`).FindString(out.String())
	require.NotEmpty(t, row)
	require.False(t, strings.ContainsFunc(row, func(r rune) bool { return unicode.Is(unicode.Bidi_Control, r) }), "%q", row)
	require.Equal(t, 3, strings.Count(row, `e\u202egnp.exe\u2069\u200f`), "what changed, the details and their tooltip: %s", row)
}

// TestTopListTies: a top list cut inside a tie says how many more have the
// last listed count (was: 15 addresses of 1 event each, listed in text
// order as #1 to #15, of 6,190 such, with nothing to say that the order
// is not a ranking).
func TestTopListTies(t *testing.T) {
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	b, err := digest.New(digest.Options{From: from, To: from.AddDate(0, 0, 1), TopN: 3})
	require.NoError(t, err)
	var rows []reader.Row
	add := func(actor, ip string) {
		rows = append(rows, reader.Row{ID: fmt.Sprint(len(rows)), CreatedAt: from.UnixMilli() + int64(len(rows)), EventKey: "user_login",
			EventCategory: "auth", ActorID: actor, ActorType: "User", IPAddress: transform.NullString{Valid: true, Str: ip}})
	}
	for i := range 20 { // 20 addresses of one event each; actor 1 has 3 events, actors 2 to 9 one each
		actor := fmt.Sprint(max(1, i-1))
		add(actor, fmt.Sprint("10.0.0.", i))
	}
	b.Add(rows)
	s := b.Finish()
	require.Equal(t, 17, s.TopIPsTied)
	require.Equal(t, 15, s.TopActorsTied, "actors 2 to 18: 17 of one event each, 2 of them listed")
	var out bytes.Buffer
	require.NoError(t, Render(&out, &Data{Title: "t", Source: "dir", Current: s, Generated: from}))
	require.True(t, strings.Contains(out.String(), `<p class="note" id="ips-tied">17 more address(es) with 1 event(s), as many as the last listed, are not listed`), "the note under the addresses")
	require.True(t, strings.Contains(out.String(), `<p class="note" id="actors-tied">15 more actor(s) with 1 event(s), as many as the last listed, are not listed`), "the note under the actors")

	b, err = digest.New(digest.Options{From: from, To: from.AddDate(0, 0, 1), TopN: 30})
	require.NoError(t, err)
	b.Add(rows)
	s = b.Finish()
	require.Zero(t, s.TopIPsTied, "every one listed")
	out.Reset()
	require.NoError(t, Render(&out, &Data{Title: "t", Source: "dir", Current: s, Generated: from}))
	require.False(t, strings.Contains(out.String(), `-tied"`), "no note when every one is listed")
}

// TestFailActorTies: the actors with most failed 2FA, cut inside a tie,
// say how many more failed as often (was: nothing, 15 actors of 15
// failures each listed by id in a 90-day report).
func TestFailActorTies(t *testing.T) {
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	b, err := digest.New(digest.Options{From: from, To: from.AddDate(0, 0, 1), TopN: 3})
	require.NoError(t, err)
	var rows []reader.Row
	for i, actor := range []string{"1", "1", "2", "3", "4", "5"} { // actor 1 twice, 2 to 5 once
		rows = append(rows, reader.Row{ID: fmt.Sprint(i), CreatedAt: from.UnixMilli() + int64(i)*3_600_000, EventKey: digest.Fail2FAKey,
			EventCategory: "auth", ActorID: actor, ActorType: "User"})
	}
	b.Add(rows)
	s := b.Finish()
	require.Equal(t, 2, s.Fail2FA.ActorsTied, "actors 2 to 5, 2 of them listed")
	var out bytes.Buffer
	require.NoError(t, Render(&out, &Data{Title: "t", Source: "dir", Current: s, Generated: from}))
	require.True(t, strings.Contains(out.String(), `<p class="note" id="fail-actors-tied">2 more actor(s) with 1 failure(s), as many as the last listed, are not listed`), "the note under the actors with most failures")
}
