package transform_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

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
		`{"id":"e1","created_at":"2025-05-15T14:30:00Z","details":{"reason":"a","filters":{},"reas\u006fn":"b","filters":[1]}}`,
		`{"id":"e1","id":"e2","created_at":"2025-05-15T14:30:00Z","details":{"x":1},"details":{"reason":"r","x":2,"x":3}}`,
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
		for _, s := range []string{rec.ID, rec.EventKey, rec.ActorID, rec.ActorType, rec.EntityID, rec.EntityType, rec.IPAddress.Str, rec.UserAgent.Str, rec.DetailsJSON} {
			require.True(t, utf8.ValidString(s), "%q", s)
		}
		require.True(t, json.Valid([]byte(rec.DetailsJSON)), "details_json %q", rec.DetailsJSON)
		require.True(t, json.Valid(raw), "accepted invalid JSON")
		line := ndjson.AppendRecord(nil, &rec)
		require.True(t, json.Valid(line), "AppendRecord: %s", line)

		// details_json is encoding/json's compact form of the last details
		// member; when that object repeats a name, it keeps the last member
		// of each name, so it decodes to what encoding/json decodes.
		want := "{}"
		d, ok := lastMember(raw, "details")
		if ok && string(d) != "null" {
			var buf bytes.Buffer
			require.NoError(t, json.Compact(&buf, d))
			want = validUTF8(buf.String())
		}
		if names, isObj := memberNames(d); isObj && len(names) != len(unique(names)) {
			got, _ := memberNames(json.RawMessage(rec.DetailsJSON))
			require.Equal(t, unique(names), got, "details_json keeps the last member of each name")
			var a, b any
			require.NoError(t, json.Unmarshal(d, &a))
			require.NoError(t, json.Unmarshal([]byte(rec.DetailsJSON), &b))
			require.Equal(t, a, b)
		} else if want != rec.DetailsJSON {
			// Only an unpaired surrogate escape may differ: \ufffd in its
			// place, which encoding/json reads alike.
			require.Equal(t, decodeNumbers(t, want), decodeNumbers(t, rec.DetailsJSON))
			require.Equal(t, len(want), len(rec.DetailsJSON), "%s -> %s", want, rec.DetailsJSON)
		}
		require.False(t, unpairedSurrogate(rec.DetailsJSON), "details_json %s", rec.DetailsJSON)

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

// validUTF8 replaces each byte of s that is not part of valid UTF-8 with
// U+FFFD, as encoding/json does: range yields one RuneError per such byte.
func validUTF8(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r)
	}
	return b.String()
}

// decodeNumbers decodes the JSON text s with number literals kept as text.
func decodeNumbers(t *testing.T, s string) any {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	require.NoError(t, dec.Decode(&v))
	return v
}

// unpairedSurrogate reports whether the valid JSON text s has a \u escape of
// a surrogate that is not one half of a high-low pair.
func unpairedSurrogate(s string) bool {
	unit := func(i int) uint64 { // the \u escape at s[i], or 0
		if i+6 > len(s) || s[i] != '\\' || s[i+1] != 'u' {
			return 0
		}
		u, _ := strconv.ParseUint(s[i+2:i+6], 16, 16)
		return u
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			continue
		}
		switch u := unit(i); {
		case u >= 0xd800 && u < 0xdc00:
			if v := unit(i + 6); v < 0xdc00 || v >= 0xe000 {
				return true
			}
			i += 11
		case u >= 0xdc00 && u < 0xe000:
			return true
		default:
			i++
		}
	}
	return false
}

// lastMember returns the raw value of the last top-level member named key
// of the JSON object raw, decoded independently of the package under test.
func lastMember(raw []byte, key string) (json.RawMessage, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	var last json.RawMessage
	found := false
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
			last, found = v, true
		}
	}
	return last, found
}

// memberNames lists the decoded member names of the JSON object raw, in
// order; ok is false when raw is not an object.
func memberNames(raw json.RawMessage) (names []string, ok bool) {
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
		names = append(names, tok.(string))
	}
	return names, true
}

// unique keeps the last occurrence of each name, in its place.
func unique(names []string) []string {
	var out []string
	for i, n := range names {
		later := false
		for _, m := range names[i+1:] {
			later = later || m == n
		}
		if !later {
			out = append(out, n)
		}
	}
	return out
}
