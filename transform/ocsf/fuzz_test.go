package ocsf_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/testkit/ocsfschema"
	"github.com/pachca-export/pachca-export/transform"
	"github.com/pachca-export/pachca-export/transform/ocsf"
)

// FuzzMap: for any event Normalize accepts, Map does not panic, the event
// is valid OCSF 1.3.0 that encoding/json reads, and keeps details_json whole.
func FuzzMap(f *testing.F) {
	for _, raw := range inputs(f) {
		f.Add(raw)
	}
	for _, s := range []string{
		`{"id":"e","created_at":"2025-05-15T14:30:00Z","event_key":"user_login","ip_address":"::ffff:1.2.3.4","user_agent":""}`,
		`{"id":"e","created_at":"2025-05-15T14:30:00Z","event_key":"user_login","ip_address":"fe80::1%eth0"}`,
		`{"id":"e","created_at":"2025-05-15T14:30:00Z","event_key":"search_chats_api","ip_address":" 1.2.3.4"}`,
		`{"id":"e","created_at":"0000-01-01T00:00:00Z","event_key":"video_call_finished","details":{"duration":9223372036854775807}}`,
		`{"id":"e","created_at":"2025-05-15T14:30:00Z","event_key":"dlp_violation_detected","details":{"dlp_rule_name":""}}`,
		`{"id":"e","created_at":"2025-05-15T14:30:00Z","event_key":"","details":[1]}`,
		`{"id":"e","created_at":"2025-05-15T14:30:00Z","event_key":"chat_renamed","details":{"new_name":"\ud800"}}`,
		`{"id":"e","created_at":"2025-05-15T14:30:00Z","event_key":"bot_webhook_settings_updated","details":{"changes":{"a":-1e400}}}`,
	} {
		f.Add([]byte(s))
	}
	s, err := ocsfschema.Load()
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, raw []byte) {
		rec, err := transform.Normalize(raw, "ws")
		if err != nil {
			return
		}
		ev := ocsf.Map(&rec)
		line, err := json.Marshal(&ev)
		require.NoError(t, err)
		doc, err := ocsfschema.Decode(line)
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(line, new(any)), "encoding/json reads the line: %s", line)
		require.NoError(t, s.Validate(doc), "%s", line)
		details, _ := ev.Unmapped.Get("details")
		require.Equal(t, rec.DetailsJSON, details)
		require.Equal(t, int64(ev.ClassUID)*100+int64(ev.ActivityID), ev.TypeUID)
	})
}
