// Package page renders a digest as one self-contained HTML file: the
// template, styles, chart code and the charting library (Apache ECharts,
// vendored under assets/ with its license) are embedded, so the page opens
// offline and requests nothing from any host.
package page

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/pachca-export/pachca-export/report/digest"
	"github.com/pachca-export/pachca-export/transform"
)

// EChartsVersion is the vendored ECharts build (assets/echarts.common.min.js,
// from the npm package echarts; `make echarts` fetches it again).
const EChartsVersion = "6.1.0"

var (
	//go:embed assets/report.html.tmpl
	pageTemplate string
	//go:embed assets/style.css
	styleCSS string
	//go:embed assets/app.js
	appJS string
	//go:embed assets/echarts.common.min.js
	echartsJS string
	//go:embed assets/echarts.NOTICE
	echartsNotice string
)

// Data is everything the page shows.
type Data struct {
	Title  string
	Source string // the directory or s3://bucket/prefix read
	// Workspace is the source.workspace label of the configuration that
	// wrote the output (its marker), "" when unknown or unset: the pages
	// of several workspaces' outputs are told apart by it, not by a path.
	Workspace string
	Files     int // files read
	Generated time.Time
	Version   string
	// RulesNote says which threshold rules found the bursts.
	RulesNote string
	// WatchNote names the keys of watch rules listed among sensitive changes.
	WatchNote string
	Current   *digest.Summary
	// Previous is the previous period of the same length, nil when the output
	// does not hold all of it; then PreviousMissing names the missing days.
	Previous                 *digest.Summary
	PreviousFrom, PreviousTo time.Time
	PreviousMissing          string
	Deltas                   []digest.Delta
	// LeftOut says what the output's configuration keeps out of it (its
	// filters and dropped keys), one line each; empty when it keeps all.
	LeftOut []string
	// Unsealed lists the days of the period (YYYY-MM-DD) read from follow's
	// cycle files, not sealed yet: late events may still be added to them.
	Unsealed []string
	// NotExported names the sensitive groups (by title) none of whose
	// keys the output holds: shown as not exported, not as 0.
	NotExported map[string]bool
}

// view adds what the template computes from Data.
type view struct {
	*Data
	DayColumns     []int // indexes of the categories shown in the day table
	OtherEvents    int64
	Charts         charts
	CSS            template.CSS
	App            template.JS
	ECharts        template.JS
	EChartsVersion string
	EChartsNotice  string
	// ScriptSources is the Content-Security-Policy's script-src: the
	// hashes of the page's two scripts, so that no other runs, an inline
	// script or event handler that got into the page past the escaping
	// (an edited report) included.
	ScriptSources string
	// Zone names the zone of the page's days, hours and times ("UTC",
	// "Europe/Moscow"); ZoneUTC is true for UTC, whose times end in Z.
	Zone    string
	ZoneUTC bool
}

// scriptSources is the script-src of the page: the hashes of the library
// and of the page's own script, the only scripts it holds (the data is
// JSON, which no browser runs). Hashed when a page is written, not at the
// start of every command (the library is about a megabyte).
func scriptSources() string { return scriptHash(echartsJS) + " " + scriptHash(appJS) }

// scriptHash is the CSP source of an inline script of text.
func scriptHash(text string) string {
	sum := sha256.Sum256([]byte(text))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// UnknownGroup is the title of the sensitive group of unknown keys.
func (view) UnknownGroup() string { return digest.UnknownGroup }

// DeltaOf returns the comparison line named metric, nil without one.
func (v view) DeltaOf(metric string) *digest.Delta {
	for i := range v.Deltas {
		if v.Deltas[i].Metric == metric {
			return &v.Deltas[i]
		}
	}
	return nil
}

// Render writes the page for d to w.
func Render(w io.Writer, d *Data) error {
	loc := d.Current.Location
	if loc == nil {
		loc = time.UTC
	}
	t, err := template.New("report").Funcs(funcs(loc)).Parse(pageTemplate)
	if err != nil {
		return fmt.Errorf("page: template: %w", err)
	}
	v := view{Data: d, CSS: template.CSS(styleCSS), App: template.JS(appJS), ECharts: template.JS(echartsJS),
		EChartsVersion: EChartsVersion, EChartsNotice: strings.Join(strings.Fields(echartsNotice), " "), ScriptSources: scriptSources(),
		Zone: loc.String(), ZoneUTC: loc == time.UTC}
	s := d.Current
	for i, c := range s.Categories {
		if s.CategoryTotals[i] > 0 || c == transform.CategoryOther {
			v.DayColumns = append(v.DayColumns, i)
		}
		if c == transform.CategoryOther {
			v.OtherEvents = s.CategoryTotals[i]
		}
	}
	v.Charts = buildCharts(d, v.DayColumns, loc)
	if err := t.Execute(w, v); err != nil {
		return fmt.Errorf("page: %w", err)
	}
	return nil
}

// funcs are the template's functions; dates and times are loc's.
func funcs(loc *time.Location) template.FuncMap {
	return template.FuncMap{
		"num":      func(n any) string { return group(toInt(n)) },
		"signed":   func(n int64) string { return signed(n) },
		"date":     func(t time.Time) string { return t.In(loc).Format(time.DateOnly) },
		"datetime": func(t time.Time) string { return datetime(t, loc) },
		"inc":      func(i int) int { return i + 1 },
		"dec":      func(i int) int { return i - 1 },
		"share": func(n, total int64) string {
			if total == 0 {
				return "0%"
			}
			p := 100 * float64(n) / float64(total)
			if n > 0 && p < 0.05 { // not 0.0%: it has events
				return "<0.1%"
			}
			return strconv.FormatFloat(p, 'f', 1, 64) + "%"
		},
		"change": func(d digest.Delta) string {
			if !d.Known() {
				return unknownChange
			}
			return atLeast(d.CurrentAtLeast) + signed(d.Diff())
		},
		"percent": func(d digest.Delta) string {
			p, ok := d.Percent()
			switch {
			case !d.Known():
				return unknownChange
			case ok:
				return atLeast(d.CurrentAtLeast) + signedFloat(p) + "%"
			case d.Current == 0:
				return "0%"
			}
			return "new"
		},
		"updown": func(n int64) string {
			switch {
			case n > 0:
				return "up"
			case n < 0:
				return "down"
			}
			return ""
		},
		"deltaText": func(d *digest.Delta) string {
			s := signed(d.Diff()) + " against the previous period"
			if p, ok := d.Percent(); ok {
				s += " (" + signedFloat(p) + "%)"
			}
			return s
		},
		"distinct": func(d digest.Distinct) string {
			return atLeast(d.AtLeast) + group(int64(d.N))
		},
		"short": func(s string) string {
			const max = 160
			if len([]rune(s)) <= max {
				return s
			}
			return string([]rune(s)[:max]) + "…"
		},
		"visible": visible,
		// A category name may break after its underscores
		// (reactions_<wbr>threads): with every category the days table
		// has 17 columns, wider than a laptop window and A4 paper when
		// each header stays on one line.
		"breakable": func(s string) template.HTML {
			return template.HTML(strings.ReplaceAll(template.HTMLEscapeString(s), "_", "_<wbr>"))
		},
	}
}

// visible writes each bidirectional control character of s (Unicode's
// Bidi_Control: U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069) as
// its escape, \u202e: the details and the values read from them are text
// the workspace's members choose (a chat's or a bot's name), and an
// override in one would show the rest of its cell reversed, as a name
// "e\u202egnp.exe" shows as "e" then "exe.png". In details_json the
// escape is the same JSON value.
func visible(s string) string {
	if !strings.ContainsFunc(s, isBidiControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if isBidiControl(r) {
			fmt.Fprintf(&b, `\u%04x`, r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isBidiControl(r rune) bool { return unicode.Is(unicode.Bidi_Control, r) }

// unknownChange is the change between two counts the earlier of which is
// only a lower bound: it may be up or down.
const unknownChange = "unknown"

// atLeast marks a lower bound.
func atLeast(lower bool) string {
	if lower {
		return "≥"
	}
	return ""
}

// datetime is t in loc to the second, with its offset, as a reader
// elsewhere must not take it for their local time: "2026-11-01 10:04:12Z"
// in UTC, "2026-11-01 13:04:12+03:00" in Europe/Moscow.
func datetime(t time.Time, loc *time.Location) string {
	return t.In(loc).Format("2006-01-02 15:04:05Z07:00")
}

func toInt(n any) int64 {
	switch v := n.(type) {
	case int:
		return int64(v)
	case int64:
		return v
	case int32:
		return int64(v)
	}
	panic(fmt.Sprintf("num: %T", n))
}

// group writes n with thousands separators: 1,234,567.
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func signed(n int64) string {
	if n > 0 {
		return "+" + group(n)
	}
	return group(n)
}

func signedFloat(p float64) string {
	p = math.Round(p*10) / 10
	s := strconv.FormatFloat(p, 'f', 1, 64)
	if p > 0 {
		return "+" + s
	}
	return s
}
