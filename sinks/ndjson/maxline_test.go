package ndjson_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/ndjson"
	"github.com/pachca-export/pachca-export/transform"
)

// maxEvent is the largest event the API client takes: a page, and so an
// event, is at most 64 MiB (extract's maxBody).
const maxEvent = 64 << 20

// TestMaxLineHoldsTheLargestRecord: the line of the largest event the API
// client takes fits in MaxLine, the bound of verify's and report's
// readers, in schema v1 and OCSF, for the details that grow most when
// written: bytes that are not UTF-8 (each becomes U+FFFD, three bytes, in
// each copy of the details), escaped quotes, line breaks; in one string
// of the details, or in every kind of member and the user agent. A line
// grows linearly with the event beyond OCSF's cut values, so two sizes
// give its length at 64 MiB (was: a bound of 256 MiB, which the line of
// an event of 43 MiB of bytes that are not UTF-8 passed: verify failed
// the day the run had written, and report stopped, on a line too long).
func TestMaxLineHoldsTheLargestRecord(t *testing.T) {
	ocsf, err := ndjson.OCSFFormat("")
	require.NoError(t, err)
	day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	shapes := map[string]func(rec *transform.Record) int{
		"schema v1": func(rec *transform.Record) int { return len(ndjson.AppendRecord(nil, rec)) + 1 },
		"ocsf": func(rec *transform.Record) int {
			var buf bytes.Buffer
			enc, err := ocsf.New(&buf, sinks.NewPartition(day, day, day.Add(24*time.Hour), "run-1"))
			require.NoError(t, err)
			require.NoError(t, enc.Write([]transform.Record{*rec}))
			require.NoError(t, enc.Close())
			return buf.Len()
		},
	}
	units := map[string]string{"not UTF-8": "\xff", "escaped quote": `\"`, "line break": "\u2028"}
	event := func(key, unit string, spread bool, size int) []byte {
		p := strings.Repeat(unit, size/len(unit))
		details, ua := `{"name":"`+p+`"}`, "Mozilla/5.0"
		if spread {
			details = `{"name":"` + p + `","old_name":"` + p + `","changes":{"a":"` + p + `"},"scopes":["` + p + `"]}`
			ua = p
		}
		return []byte(`{"id":"1","created_at":"2026-11-01T10:00:00.000Z","event_key":"` + key +
			`","entity_id":"1","entity_type":"Chat","actor_id":"1","actor_type":"User","details":` + details +
			`,"ip_address":"10.0.0.1","user_agent":"` + ua + `"}`)
	}
	// Chats (a name, an old name), a bot (the details again in
	// entity_result.data), a key no list has (OCSF's Base Event).
	for _, key := range []string{"chat_renamed", "bot_webhook_settings_updated", "unlisted_key"} {
		for unitName, unit := range units {
			for _, spread := range []bool{false, true} {
				var size [2]int
				line := map[string]*[2]int{}
				for i, s := range [2]int{192 << 10, 384 << 10} {
					raw := event(key, unit, spread, s)
					rec, err := transform.Normalize(raw, "acme")
					require.NoError(t, err)
					size[i] = len(raw)
					for shape, lineOf := range shapes {
						if line[shape] == nil {
							line[shape] = new([2]int)
						}
						line[shape][i] = lineOf(&rec)
					}
				}
				for shape, l := range line {
					slope := float64(l[1]-l[0]) / float64(size[1]-size[0])
					largest := float64(l[0]) + slope*float64(maxEvent-size[0])
					require.LessOrEqual(t, largest, float64(ndjson.MaxLine),
						"%s, %s (spread %v), %s: a 64 MiB event makes a line of %.0f MiB", key, unitName, spread, shape, largest/(1<<20))
				}
			}
		}
	}
}
