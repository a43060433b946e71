package digest

// Delta is one line of the comparison with the previous period.
type Delta struct {
	Metric   string
	Previous int64
	Current  int64
	// PreviousAtLeast and CurrentAtLeast mark a lower bound (a distinct
	// count past the top-list capacity), each of its own period.
	PreviousAtLeast, CurrentAtLeast bool
}

// Diff is Current - Previous. It is a lower bound when Current is, and
// tells nothing when Previous is one (see Known).
func (d Delta) Diff() int64 { return d.Current - d.Previous }

// Known reports whether the change can be told: not when Previous is a
// lower bound, since the true previous count may be above the current one.
func (d Delta) Known() bool { return !d.PreviousAtLeast }

// Percent is the change relative to Previous; ok is false when Previous is
// 0 or the change is not Known.
func (d Delta) Percent() (pct float64, ok bool) {
	if d.Previous == 0 || !d.Known() {
		return 0, false
	}
	return 100 * float64(d.Current-d.Previous) / float64(d.Previous), true
}

// The names of the comparison's failed-2FA lines.
const (
	MetricFail2FA       = "failed 2FA"
	MetricFail2FAActors = "actors with failed 2FA"
)

// Compare lists what changed from prev to cur, two periods of the same
// length: events, each category, failed 2FA, bursts, each sensitive group,
// distinct actors and addresses.
func Compare(cur, prev *Summary) []Delta {
	out := []Delta{{Metric: "events", Previous: prev.Events, Current: cur.Events}}
	for i, c := range cur.Categories {
		d := Delta{Metric: "category " + c, Current: cur.CategoryTotals[i]}
		for j, pc := range prev.Categories {
			if pc == c {
				d.Previous = prev.CategoryTotals[j]
			}
		}
		out = append(out, d)
	}
	for j, pc := range prev.Categories {
		if !contains(cur.Categories, pc) {
			out = append(out, Delta{Metric: "category " + pc, Previous: prev.CategoryTotals[j]})
		}
	}
	out = append(out,
		Delta{Metric: MetricFail2FA, Previous: prev.Fail2FA.Total, Current: cur.Fail2FA.Total},
		Delta{Metric: MetricFail2FAActors, Previous: int64(prev.Fail2FA.ActorCount), Current: int64(cur.Fail2FA.ActorCount)},
		Delta{Metric: "bursts flagged", Previous: int64(len(prev.Bursts)), Current: int64(len(cur.Bursts))},
	)
	for i, g := range cur.Sensitive {
		d := Delta{Metric: g.Title, Current: g.Count}
		if i < len(prev.Sensitive) && prev.Sensitive[i].Title == g.Title {
			d.Previous = prev.Sensitive[i].Count
		}
		out = append(out, d)
	}
	return append(out,
		distinctDelta("distinct actors", prev.Actors, cur.Actors),
		distinctDelta("distinct IP addresses", prev.IPs, cur.IPs),
	)
}

func distinctDelta(metric string, prev, cur Distinct) Delta {
	return Delta{Metric: metric, Previous: int64(prev.N), Current: int64(cur.N), PreviousAtLeast: prev.AtLeast, CurrentAtLeast: cur.AtLeast}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
