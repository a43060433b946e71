// Package exporttest checks exported output against the events a simulator
// served, independently of the transform: it decodes both sides with
// encoding/json and compares field by field per SPEC §5.
package exporttest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/sinks/ndjson"
)

// Line is one decoded NDJSON record and the day directory it was found in.
type Line struct {
	Dir    string
	File   string
	Fields map[string]any
}

// ReadNDJSON reads every data file under dir (dt=*/*.ndjson[.gz|.zst]) and
// fails on a duplicate id.
func ReadNDJSON(t testing.TB, dir string) map[string]Line {
	t.Helper()
	out := map[string]Line{}
	files, err := filepath.Glob(filepath.Join(dir, "dt=*", "[^.]*.ndjson*")) // not a hidden temporary file
	require.NoError(t, err)
	for _, path := range files {
		f, err := os.Open(path)
		require.NoError(t, err)
		r, err := ndjson.Decompress(path, f)
		require.NoError(t, err, path)
		defer r.Close()
		sc := bufio.NewScanner(r)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			d := json.NewDecoder(bytes.NewReader(sc.Bytes()))
			d.UseNumber()
			var m map[string]any
			require.NoError(t, d.Decode(&m), "%s: %s", path, sc.Text())
			id, _ := m["id"].(string)
			require.NotEmpty(t, id, path)
			_, dup := out[id]
			require.False(t, dup, "event %s appears twice (second time in %s)", id, path)
			out[id] = Line{Dir: filepath.Base(filepath.Dir(path)), File: path, Fields: m}
		}
		require.NoError(t, sc.Err(), path)
		f.Close()
	}
	return out
}

// Expected returns the simulator's events in [from, to) minus dropped keys.
func Expected(sim *simulator.Server, from, to time.Time, drop ...string) []simulator.Event {
	var out []simulator.Event
	for _, ev := range sim.Events() {
		if ev.CreatedAt.Before(from) || !ev.CreatedAt.Before(to) {
			continue
		}
		skip := false
		for _, k := range drop {
			skip = skip || ev.Key == k
		}
		if !skip {
			out = append(out, ev)
		}
	}
	return out
}

// idFields are the details fields written as strings (SPEC §5).
var idFields = map[string]bool{
	"chat_id": true, "message_id": true, "initiator_id": true, "inviter_id": true, "user_id": true,
	"bot_id": true, "dlp_rule_id": true, "recording_id": true, "file_id": true, "started_message_id": true, "actor_id": true,
}

// objectFields are nested objects written as compact JSON strings.
var objectFields = map[string]bool{"filters": true, "changes": true}

// knownDetails are the details fields of the OpenAPI document; others stay
// only in details_json.
var knownDetails = map[string]bool{
	"changed_attrs": true, "context": true, "new_company_role": true, "previous_company_role": true,
	"initiator_id": true, "name": true, "inviter_id": true, "old_name": true, "new_name": true,
	"public_access": true, "chat_id": true, "tag_name": true, "scopes": true, "message_id": true,
	"reason": true, "dlp_rule_id": true, "dlp_rule_name": true, "user_id": true, "action_message": true,
	"conditions_matched": true, "search_type": true, "query_present": true, "cursor_present": true,
	"limit": true, "filters": true, "bot_id": true, "actor_id": true, "added_scopes": true,
	"removed_scopes": true, "changes": true, "client_id": true, "revoked_tokens_count": true,
	"started_message_id": true, "duration": true, "max_members_count": true, "recording_id": true,
	"file_id": true, "size": true,
}

// Decode decodes one JSON object with numbers kept as json.Number, as the
// comparisons expect.
func Decode(t testing.TB, b []byte) map[string]any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	require.NoError(t, d.Decode(&m))
	return m
}

// Compare asserts that got holds exactly the events of want, each in the
// partition of its UTC date, every field equal to the source.
func Compare(t testing.TB, want []simulator.Event, got map[string]Line, workspace string) {
	t.Helper()
	require.Equal(t, len(want), len(got), "number of exported events")
	for _, ev := range want {
		line, ok := got[ev.ID]
		require.True(t, ok, "event %s (%s %s) missing", ev.ID, ev.Key, ev.CreatedAt.Format(time.RFC3339Nano))
		CompareOne(t, ev.Raw, line, workspace)
	}
}

// CompareOne compares one source event with its exported record.
func CompareOne(t testing.TB, raw []byte, line Line, workspace string) {
	t.Helper()
	src := Decode(t, raw)
	rec := line.Fields
	created, err := time.Parse(time.RFC3339Nano, src["created_at"].(string))
	require.NoError(t, err)
	require.Equal(t, "dt="+created.UTC().Format(time.DateOnly), line.Dir, "partition of %v", src["id"])
	require.Equal(t, created.UTC().Format("2006-01-02T15:04:05.000Z"), rec["created_at"])
	for _, k := range []string{"id", "event_key", "actor_id", "actor_type", "entity_id", "entity_type", "ip_address", "user_agent"} {
		require.Equal(t, src[k], rec[k], "field %s of %v", k, src["id"])
	}
	require.Equal(t, workspace, rec["workspace"])
	require.Equal(t, "pachca.audit.v1", rec["schema_version"])
	require.NotEmpty(t, rec["event_category"])

	details, _ := src["details"].(map[string]any)
	dj, ok := rec["details_json"].(string)
	require.True(t, ok, "details_json is a string")
	if len(details) == 0 {
		require.Equal(t, "{}", dj)
	} else {
		require.Equal(t, details, Decode(t, []byte(dj)), "details_json of %v", src["id"])
	}
	for k, v := range details {
		col := "details_" + k
		if !knownDetails[k] {
			require.NotContains(t, rec, col)
			continue
		}
		got, present := rec[col]
		switch {
		case v == nil:
			require.Nil(t, got, "%s of %v", col, src["id"])
		case idFields[k]:
			want, isNum := v.(json.Number)
			if isNum {
				v = want.String()
			}
			require.Equal(t, v, got, "%s of %v", col, src["id"])
		case objectFields[k]:
			require.True(t, present, col)
			require.Equal(t, v, Decode(t, []byte(got.(string))), col)
		default:
			require.Equal(t, v, got, "%s of %v", col, src["id"])
		}
	}
}
