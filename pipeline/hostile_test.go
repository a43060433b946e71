package pipeline_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/internal/timestamp"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
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
