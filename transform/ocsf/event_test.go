package ocsf_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/transform"
	"github.com/pachca-export/pachca-export/transform/ocsf"
)

// TestDetailsReadableByEveryReader: details holding a number beyond a
// double's range, or nested deeper than serde_json reads, are embedded in
// the event as a JSON string of the same text, so that Go's encoding/json
// and Rust's serde_json (Vector) read the event (was: embedded as they
// were, and such readers refused the whole line: the event was lost to
// them); other details stay embedded as an object.
func TestDetailsReadableByEveryReader(t *testing.T) {
	deep := `{"a":` + strings.Repeat("[", 150) + strings.Repeat("]", 150) + `}`
	long := `{"size":` + strings.Repeat("9", 400) + `}`
	for details, embedded := range map[string]bool{
		`{"duration":1e400}`:                      false,
		`{"size":-2e308,"chat_id":1}`:             false,
		`{"changes":{"name":"x","limit":1E+999}}`: false,
		deep: false,
		long: false,
		`{"duration":60,"size":1e308,"x":"1e400"}`:   true,
		`{"chat_id":123456789012345678901234567890}`: true,
		`{"a":1e-400}`: true,
	} {
		for _, key := range []string{"video_call_finished", "bot_webhook_settings_updated", "unlisted_key"} {
			rec, err := transform.Normalize([]byte(`{"id":"e","created_at":"2026-11-01T10:00:00.000Z","event_key":"`+key+`","details":`+details+`}`), "ws")
			require.NoError(t, err)
			ev := ocsf.Map(&rec)
			line, err := json.Marshal(&ev)
			require.NoError(t, err)
			var doc struct {
				Unmapped struct {
					Details json.RawMessage `json:"details"`
				} `json:"unmapped"`
			}
			require.NoError(t, json.Unmarshal(line, new(any)), "%s: %.200s", key, line)
			require.NoError(t, json.Unmarshal(line, &doc))
			if embedded {
				require.JSONEq(t, rec.DetailsJSON, string(doc.Unmapped.Details), key)
				continue
			}
			var s string
			require.NoError(t, json.Unmarshal(doc.Unmapped.Details, &s), "%s: %.200s", key, doc.Unmapped.Details)
			require.Equal(t, rec.DetailsJSON, s, key)
		}
	}
}
