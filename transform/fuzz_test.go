package transform_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/sinks/ndjson"
	"github.com/pachca-export/pachca-export/transform"
)

func FuzzNormalize(f *testing.F) {
	for _, name := range goldenCases(f) {
		raw, err := os.ReadFile(filepath.Join("testdata", "golden", name+".input.json"))
		require.NoError(f, err)
		f.Add(raw)
	}
	for _, s := range []string{
		``, `{`, `{}`, `[]`, `null`, `{"id":1}`,
		`{"id":"e1","created_at":"2025-05-15T14:30:00Z","details":{"limit":1e999,"size":-0}}`,
		`{"id":"e1","created_at":"2025-05-15T14:30:00Z","details":{"scopes":["\ud800",""]}}`,
		`{"id":"e1","created_at":"2025-05-15T14:30:00Z","details":{"filters":{"a":"\u0000"}},"details":5}`,
		`{"id":"e1","created_at":"2025-05-15T14:30:00Z","details":NaN}`,
		`{"id":"e1","created_at":"2025-05-15T14:30:00Z","details":{"changes":[{"a":[]},"]}"]}}`,
		"{\"id\":\"e1\",\"created_at\":\"2025-05-15T14:30:00Z\",\"details\":{\"reason\":\"\xff\"}}",
		`{"id":"e1","created_at":"9999-12-31T23:59:59.999999-23:59"}`,
		`{"id":"e1","created_at":"0000-01-01T00:00:00+23:59"}`,
	} {
		f.Add([]byte(s))
	}
	var n transform.Normalizer // reused across inputs, as the run loop does
	f.Fuzz(func(t *testing.T, raw []byte) {
		orig := bytes.Clone(raw)
		rec, err := n.Normalize(raw, "ws")
		require.Equal(t, orig, raw, "Normalize modified its input")
		if err != nil {
			var perr *transform.ParseError
			require.True(t, errors.As(err, &perr), "want a *ParseError, got %T %v", err, err)
			require.NotEmpty(t, perr.Reason)
			return
		}
		require.NotEmpty(t, rec.ID)
		require.True(t, json.Valid([]byte(rec.DetailsJSON)), "details_json %q", rec.DetailsJSON)
		require.True(t, json.Valid(raw), "accepted invalid JSON")
		line := ndjson.AppendRecord(nil, &rec)
		require.True(t, json.Valid(line), "AppendRecord: %s", line)

		// details_json is encoding/json's compact form of the first details member.
		want := "{}"
		if d, ok := firstMember(raw, "details"); ok && string(d) != "null" {
			var buf bytes.Buffer
			require.NoError(t, json.Compact(&buf, d))
			want = buf.String()
		}
		require.Equal(t, want, rec.DetailsJSON)

		for i, f := range transform.DetailFields() {
			v := rec.Details[i]
			switch {
			case !v.Valid:
			case f.Object:
				require.True(t, json.Valid([]byte(v.Str)), "details_%s %q", f.JSON, v.Str)
			case f.Kind == transform.KindStringList:
				require.NotNil(t, v.List, "details_%s", f.JSON)
			}
		}
	})
}

// firstMember returns the raw value of the first top-level member named key
// of the JSON object raw, decoded independently of the package under test.
func firstMember(raw []byte, key string) (json.RawMessage, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		if tok == key {
			return v, true
		}
	}
	return nil, false
}
