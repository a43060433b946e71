package page

import (
	"slices"
	"strings"
	"time"

	"github.com/pachca-export/pachca-export/report/digest"
)

// charts is the JSON app.js draws from; every number in it is also in a
// table of the page.
type charts struct {
	Days      stack      `json:"days"`
	Fails     failChart  `json:"fails"`
	Actors    []bar      `json:"actors"`
	IPs       []bar      `json:"ips"`
	Sensitive []bar      `json:"sensitive"`
	Compare   *pairChart `json:"compare"`
}

type stack struct {
	Labels []string `json:"labels"`
	Series []series `json:"series"`
}

type series struct {
	Name string  `json:"name"`
	Data []int64 `json:"data"`
}

type failChart struct {
	stack
	Bursts []burstArea `json:"bursts"`
}

// burstArea shades the hours of a burst, by hour label.
type burstArea struct {
	Name string `json:"name"`
	From string `json:"from"`
	To   string `json:"to"`
}

// bar is one bar of a top list; Err is the possible overcount of a
// Space-Saving counter (Value is then an upper bound), drawn apart from
// the events certain.
type bar struct {
	Name  string `json:"name"`
	Value int64  `json:"value"`
	Err   int64  `json:"err,omitempty"`
}

type pairChart struct {
	Labels   []string `json:"labels"`
	Previous []int64  `json:"previous"`
	Current  []int64  `json:"current"`
}

// hourLabel names an hour of the failed-2FA chart (axis, tooltip, burst
// spans) in the page's zone, with its offset like every time of the page
// (Z in UTC): a reader elsewhere must not take it for local time, and the
// hour repeated when daylight saving time ends has two labels, not one.
const hourLabel = "2006-01-02 15:00Z07:00"

func buildCharts(d *Data, dayColumns []int, loc *time.Location) charts {
	s := d.Current
	// Lists are [] even when empty, never null: app.js reads their length
	// (a period without a failed 2FA has no series).
	c := charts{Days: stack{Labels: []string{}, Series: []series{}}, Fails: failChart{stack: stack{Labels: []string{}, Series: []series{}}}}
	for _, day := range s.Days {
		c.Days.Labels = append(c.Days.Labels, day.Day.In(loc).Format("2006-01-02"))
	}
	for _, i := range dayColumns {
		sr := series{Name: s.Categories[i]}
		for _, day := range s.Days {
			sr.Data = append(sr.Data, day.Counts[i])
		}
		c.Days.Series = append(c.Days.Series, sr)
	}
	for _, h := range s.Fail2FA.Hours {
		c.Fails.Labels = append(c.Fails.Labels, h.In(loc).Format(hourLabel))
	}
	for _, fs := range s.Fail2FA.Series {
		c.Fails.Series = append(c.Fails.Series, series{Name: fs.Name, Data: fs.Counts})
	}
	c.Fails.Bursts = []burstArea{}
	for _, f := range s.Bursts {
		if !slices.Contains(strings.Split(f.EventKey, ", "), digest.Fail2FAKey) {
			continue
		}
		c.Fails.Bursts = append(c.Fails.Bursts, burstArea{Name: f.ActorID, From: hourOf(f.First, loc), To: hourOf(f.Last, loc)})
	}
	c.Actors = []bar{}
	for _, a := range s.TopActors {
		c.Actors = append(c.Actors, bar{Name: a.Type + " " + a.ID, Value: a.Count, Err: a.Err})
	}
	c.IPs = []bar{}
	for _, t := range s.TopIPs {
		c.IPs = append(c.IPs, bar{Name: t.Key, Value: t.Count, Err: t.Err})
	}
	c.Sensitive = []bar{}
	for _, g := range s.Sensitive {
		if d.NotExported[g.Title] { // its count is unknown, not 0
			continue
		}
		c.Sensitive = append(c.Sensitive, bar{Name: g.Title, Value: g.Count})
	}
	if d.Previous != nil {
		p := &pairChart{Labels: []string{}, Previous: []int64{}, Current: []int64{}}
		for _, dl := range d.Deltas {
			if name, ok := strings.CutPrefix(dl.Metric, "category "); ok && (dl.Previous > 0 || dl.Current > 0) {
				p.Labels = append(p.Labels, name)
				p.Previous = append(p.Previous, dl.Previous)
				p.Current = append(p.Current, dl.Current)
			}
		}
		c.Compare = p
	}
	return c
}

// hourOf is the label of the chart's hour t lies in: the hours of loc
// start at a whole hour of its clock (30 minutes past a UTC hour in
// Asia/Kolkata), which the label's format alone keeps.
func hourOf(t time.Time, loc *time.Location) string { return t.In(loc).Format(hourLabel) }
