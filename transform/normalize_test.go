package transform_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/sinks/ndjson"
	"github.com/pachca-export/pachca-export/transform"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.golden.json from the current output")

const workspace = "acme"

// goldenCases returns the case names of testdata/golden, sorted.
func goldenCases(t testing.TB) []string {
	t.Helper()
	inputs, err := filepath.Glob(filepath.Join("testdata", "golden", "*.input.json"))
	require.NoError(t, err)
	require.NotEmpty(t, inputs)
	names := make([]string, len(inputs))
	for i, p := range inputs {
		names[i] = strings.TrimSuffix(filepath.Base(p), ".input.json")
	}
	return names
}

// render is the golden form of a record: ndjson.AppendRecord, indented.
func render(t *testing.T, rec *transform.Record) []byte {
	t.Helper()
	line := ndjson.AppendRecord(nil, rec)
	var out bytes.Buffer
	require.NoError(t, json.Indent(&out, line, "", "  "), "AppendRecord wrote invalid JSON: %s", line)
	out.WriteByte('\n')
	return out.Bytes()
}

func TestGolden(t *testing.T) {
	for _, name := range goldenCases(t) {
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", "golden", name+".input.json"))
			require.NoError(t, err)
			rec, err := transform.Normalize(raw, workspace)
			require.NoError(t, err)
			got := render(t, &rec)

			path := filepath.Join("testdata", "golden", name+".golden.json")
			if *update {
				require.NoError(t, os.WriteFile(path, got, 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "no golden file; run go test ./transform -run TestGolden -update")
			require.Equal(t, string(want), string(got))
		})
	}
}

// Every key of the enum has a golden case, so each details variant is covered.
func TestGoldenCoversEveryEventKey(t *testing.T) {
	have := map[string]bool{}
	for _, name := range goldenCases(t) {
		have[name] = true
	}
	for _, key := range transform.EventKeys() {
		require.True(t, have[key], "no golden case %s.input.json", key)
	}
}

// A Normalizer reuses its buffers; records it returned earlier must not change.
func TestNormalizerReuse(t *testing.T) {
	var n transform.Normalizer
	var recs []transform.Record
	var raws [][]byte
	for _, name := range goldenCases(t) {
		raw, err := os.ReadFile(filepath.Join("testdata", "golden", name+".input.json"))
		require.NoError(t, err)
		rec, err := n.Normalize(raw, workspace)
		require.NoError(t, err)
		recs = append(recs, rec)
		raws = append(raws, raw)
		_, err = n.Normalize([]byte(`{"id":"x","created_at":"bad"}`), workspace)
		require.Error(t, err)
	}
	for i, raw := range raws {
		fresh, err := transform.Normalize(raw, workspace)
		require.NoError(t, err)
		require.Equal(t, fresh, recs[i])
	}
}

// Field rules spelled out, so a wrong golden file cannot hide them.
func TestNormalizeFields(t *testing.T) {
	read := func(t *testing.T, name string) transform.Record {
		t.Helper()
		raw, err := os.ReadFile(filepath.Join("testdata", "golden", name+".input.json"))
		require.NoError(t, err)
		rec, err := transform.Normalize(raw, workspace)
		require.NoError(t, err)
		return rec
	}
	t.Run("ids above 2^53 stay exact", func(t *testing.T) {
		rec := read(t, "x_id_above_2_53")
		require.Equal(t, `{"chat_id":9007199254740993,"message_id":18446744073709551615,"reason":"export"}`, rec.DetailsJSON)
		require.Equal(t, transform.Value{Valid: true, Str: "9007199254740993"}, rec.Details[transform.DChatID])
		require.Equal(t, transform.Value{Valid: true, Str: "18446744073709551615"}, rec.Details[transform.DMessageID])
	})
	t.Run("offset and microseconds", func(t *testing.T) {
		rec := read(t, "x_created_at_offset_micros")
		require.Equal(t, "2025-05-15T14:30:00.123Z", rec.Time().Format("2006-01-02T15:04:05.000Z07:00"))
	})
	t.Run("empty lists stay empty, not null", func(t *testing.T) {
		rec := read(t, "x_empty_lists")
		for _, i := range []int{transform.DAddedScopes, transform.DRemovedScopes} {
			require.True(t, rec.Details[i].Valid)
			require.NotNil(t, rec.Details[i].List)
			require.Empty(t, rec.Details[i].List)
		}
	})
	t.Run("null details", func(t *testing.T) {
		for _, name := range []string{"x_details_null", "x_details_absent", "user_login"} {
			rec := read(t, name)
			require.Equal(t, "{}", rec.DetailsJSON, name)
			require.Equal(t, [transform.NumDetails]transform.Value{}, rec.Details, name)
		}
	})
	t.Run("null ip and user agent", func(t *testing.T) {
		rec := read(t, "x_null_ip_user_agent")
		require.Equal(t, transform.NullString{}, rec.IPAddress)
		require.Equal(t, transform.NullString{}, rec.UserAgent)
	})
	t.Run("unknown key and field are kept", func(t *testing.T) {
		rec := read(t, "x_unknown_event_key")
		require.Equal(t, "meeting_room_booked", rec.EventKey)
		require.Equal(t, transform.CategoryOther, rec.EventCategory)
		require.Equal(t, `{"room_id":42,"room":"Переговорная 3"}`, rec.DetailsJSON)
		rec = read(t, "x_unknown_details_field")
		require.Equal(t, `{"changed_attrs":["nickname"],"source":"scim","changed_by":{"id":12345,"via":"api"}}`, rec.DetailsJSON)
		require.Equal(t, []string{"nickname"}, rec.Details[transform.DChangedAttrs].List)
	})
	t.Run("whitespace removed, escapes kept", func(t *testing.T) {
		rec := read(t, "x_whitespace_and_escapes")
		require.Equal(t, `{"old_name":"Tab\there \u00e9\/x","new_name":"Line\nbreak \"quoted\" \ud83d\ude80","note":1.50e+3}`, rec.DetailsJSON)
		require.Equal(t, "Tab\there é/x", rec.Details[transform.DOldName].Str)
		require.Equal(t, "Line\nbreak \"quoted\" 🚀", rec.Details[transform.DNewName].Str)
	})
	t.Run("wrong types give null", func(t *testing.T) {
		rec := read(t, "x_wrong_detail_types")
		require.Equal(t, transform.Value{Valid: true, Str: "334455"}, rec.Details[transform.DChatID]) // a string id is kept
		require.False(t, rec.Details[transform.DStartedMessageID].Valid)                              // 1.5 is no id
		require.False(t, rec.Details[transform.DDuration].Valid)                                      // "1834" is no int64
		require.False(t, rec.Details[transform.DMaxMembersCount].Valid)                               // overflows int64
	})
	t.Run("objects as compact JSON", func(t *testing.T) {
		rec := read(t, "search_messages_api")
		require.Equal(t, transform.Value{Valid: true,
			Str: `{"chat_ids":[334455,334456],"user_ids":[23456],"created_from":"2025-05-01T00:00:00.000Z","created_to":"2025-05-15T00:00:00.000Z"}`},
			rec.Details[transform.DFilters])
		require.Equal(t, transform.Value{Valid: true, Int: 50}, rec.Details[transform.DLimit])
		require.Equal(t, transform.Value{Valid: true, Bool: true}, rec.Details[transform.DQueryPresent])
		require.Equal(t, transform.Value{Valid: true, Bool: false}, rec.Details[transform.DCursorPresent])
	})
	t.Run("numeric top-level ids", func(t *testing.T) {
		rec := read(t, "x_numeric_top_level_ids")
		require.Equal(t, "98765", rec.EntityID)
		require.Equal(t, "12345", rec.ActorID)
	})
}

func TestNormalizeDetailKinds(t *testing.T) {
	const head = `{"id":"e1","created_at":"2025-05-15T14:30:00.000Z","event_key":"k","details":`
	tests := []struct {
		name    string
		details string
		field   int
		want    transform.Value
	}{
		{"id number", `{"user_id":42}`, transform.DUserID, transform.Value{Valid: true, Str: "42"}},
		{"id negative", `{"user_id":-7}`, transform.DUserID, transform.Value{Valid: true, Str: "-7"}},
		{"id string", `{"user_id":"u-42"}`, transform.DUserID, transform.Value{Valid: true, Str: "u-42"}},
		{"id exponent", `{"user_id":4e2}`, transform.DUserID, transform.Value{}},
		{"id null", `{"user_id":null}`, transform.DUserID, transform.Value{}},
		{"id bool", `{"user_id":true}`, transform.DUserID, transform.Value{}},
		{"int max", `{"size":9223372036854775807}`, transform.DSize, transform.Value{Valid: true, Int: 9223372036854775807}},
		{"int min", `{"size":-9223372036854775808}`, transform.DSize, transform.Value{Valid: true, Int: -9223372036854775808}},
		{"int overflow", `{"size":9223372036854775808}`, transform.DSize, transform.Value{}},
		{"int fraction", `{"size":1.0}`, transform.DSize, transform.Value{}},
		{"int string", `{"size":"1"}`, transform.DSize, transform.Value{}},
		{"bool true", `{"public_access":true}`, transform.DPublicAccess, transform.Value{Valid: true, Bool: true}},
		{"bool false", `{"public_access":false}`, transform.DPublicAccess, transform.Value{Valid: true}},
		{"bool string", `{"public_access":"true"}`, transform.DPublicAccess, transform.Value{}},
		{"list", `{"scopes":["a","b"]}`, transform.DScopes, transform.Value{Valid: true, List: []string{"a", "b"}}},
		{"list empty", `{"scopes":[]}`, transform.DScopes, transform.Value{Valid: true, List: []string{}}},
		{"list mixed", `{"scopes":["a",1]}`, transform.DScopes, transform.Value{}},
		{"list string", `{"scopes":"a"}`, transform.DScopes, transform.Value{}},
		{"object", `{"filters":{ "a" : [1, 2] }}`, transform.DFilters, transform.Value{Valid: true, Str: `{"a":[1,2]}`}},
		{"object scalar", `{"filters":"x\u0001"}`, transform.DFilters, transform.Value{Valid: true, Str: `"x\u0001"`}},
		{"object null", `{"filters":null}`, transform.DFilters, transform.Value{}},
		{"object escaped name", `{"filt\u0065rs":[1]}`, transform.DFilters, transform.Value{Valid: true, Str: `[1]`}},
		{"string", `{"reason":"x"}`, transform.DReason, transform.Value{Valid: true, Str: "x"}},
		{"string null", `{"action_message":null}`, transform.DActionMessage, transform.Value{}},
		{"string number", `{"reason":5}`, transform.DReason, transform.Value{}},
		{"duplicate: the last wins", `{"reason":"a","reason":"b"}`, transform.DReason, transform.Value{Valid: true, Str: "b"}},
		{"duplicate escaped: the last wins", `{"reason":"a","reas\u006fn":"b"}`, transform.DReason, transform.Value{Valid: true, Str: "b"}},
		{"duplicate object: the last wins", `{"filters":{"a":1},"x":0,"filters":{"b":2}}`, transform.DFilters, transform.Value{Valid: true, Str: `{"b":2}`}},
		{"details array", `["reason"]`, transform.DReason, transform.Value{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, err := transform.Normalize([]byte(head+tt.details+`}`), workspace)
			require.NoError(t, err)
			require.Equal(t, tt.want, rec.Details[tt.field])
			require.True(t, json.Valid([]byte(rec.DetailsJSON)))
		})
	}
}

func TestNormalizeCreatedAt(t *testing.T) {
	tests := []struct{ in, want string }{
		{"2025-05-15T14:30:00.000Z", "2025-05-15T14:30:00.000Z"},
		{"2025-05-15T14:30:00Z", "2025-05-15T14:30:00.000Z"},
		{"2025-05-15T14:30:00.1Z", "2025-05-15T14:30:00.100Z"},
		{"2025-05-15T14:30:00.123456789123Z", "2025-05-15T14:30:00.123Z"},
		{"2025-05-15T17:30:00.999999+03:00", "2025-05-15T14:30:00.999Z"},
		{"2025-05-15T09:00:00-05:30", "2025-05-15T14:30:00.000Z"},
		{"2025-05-15T17:30:00+0300", "2025-05-15T14:30:00.000Z"},
		{"2025-05-15T17:30:00+03", "2025-05-15T14:30:00.000Z"},
		{"2025-05-15 14:30:00,5z", "2025-05-15T14:30:00.500Z"},
		{"2025-05-15T14:30:00", "2025-05-15T14:30:00.000Z"}, // no zone: UTC, as the API documents
		{"2024-02-29T23:59:59.999Z", "2024-02-29T23:59:59.999Z"},
		{"2025-01-01T00:30:00+01:00", "2024-12-31T23:30:00.000Z"},
		{"1969-12-31T23:59:59.9995Z", "1969-12-31T23:59:59.999Z"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			raw := `{"id":"e1","created_at":"` + tt.in + `"}`
			rec, err := transform.Normalize([]byte(raw), workspace)
			require.NoError(t, err)
			require.Equal(t, tt.want, rec.Time().Format("2006-01-02T15:04:05.000Z07:00"))
		})
	}
}

func TestNormalizeParseError(t *testing.T) {
	tests := []struct {
		name, raw, reason string
	}{
		{"empty", ``, "invalid JSON: empty input at offset 0"},
		{"not JSON", `hello`, "not a JSON object"},
		{"array", `[{"id":"e1"}]`, "not a JSON object"},
		{"string", `"e1"`, "not a JSON object"},
		{"null", `null`, "not a JSON object"},
		{"truncated", `{"id":"e1","created_at":"2025-05-15T14:30:00.000Z"`, "invalid JSON: unexpected end of input at offset 50"},
		{"trailing data", `{"id":"e1","created_at":"2025-05-15T14:30:00Z"} {}`, "invalid JSON: data after the object at offset 48"},
		{"NaN", `{"id":"e1","created_at":"2025-05-15T14:30:00Z","details":{"limit":NaN}}`, "invalid JSON: invalid character 'N' at offset 66"},
		{"bad number", `{"id":"e1","created_at":"2025-05-15T14:30:00Z","details":{"limit":01}}`, "invalid JSON: expected ',' or '}' at offset 67"},
		{"control char", "{\"id\":\"e\x01\",\"created_at\":\"2025-05-15T14:30:00Z\"}", "invalid JSON: control character in string at offset 8"},
		{"bad escape", `{"id":"e\q","created_at":"2025-05-15T14:30:00Z"}`, "invalid JSON: invalid escape at offset 9"},
		{"too deep", `{"id":"e1","created_at":"2025-05-15T14:30:00Z","details":` + strings.Repeat("[", 400) + strings.Repeat("]", 400) + `}`, "invalid JSON: nesting too deep at offset 356"},
		{"id missing", `{"created_at":"2025-05-15T14:30:00Z"}`, "id: missing"},
		{"id null", `{"id":null,"created_at":"2025-05-15T14:30:00Z"}`, "id: a null, want a string"},
		{"id object", `{"id":{},"created_at":"2025-05-15T14:30:00Z"}`, "id: a object, want a string"},
		{"id empty", `{"id":"","created_at":"2025-05-15T14:30:00Z"}`, "id: empty"},
		{"created_at missing", `{"id":"e1"}`, "created_at: missing"},
		{"created_at number", `{"id":"e1","created_at":1747319400000}`, "created_at: a number, want an ISO-8601 string"},
		{"created_at date only", `{"id":"e1","created_at":"2025-05-15"}`, `created_at "2025-05-15": not an ISO-8601 date-time`},
		{"created_at bad month", `{"id":"e1","created_at":"2025-13-15T14:30:00Z"}`, `created_at "2025-13-15T14:30:00Z": not an ISO-8601 date-time`},
		{"created_at Feb 30", `{"id":"e1","created_at":"2025-02-30T14:30:00Z"}`, `created_at "2025-02-30T14:30:00Z": not an ISO-8601 date-time`},
		{"created_at empty fraction", `{"id":"e1","created_at":"2025-05-15T14:30:00.Z"}`, `created_at "2025-05-15T14:30:00.Z": not an ISO-8601 date-time`},
		{"created_at bad zone", `{"id":"e1","created_at":"2025-05-15T14:30:00+3:00"}`, `created_at "2025-05-15T14:30:00+3:00": not an ISO-8601 date-time`},
		{"created_at words", `{"id":"e1","created_at":"yesterday"}`, `created_at "yesterday": not an ISO-8601 date-time`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := transform.Normalize([]byte(tt.raw), workspace)
			var perr *transform.ParseError
			require.True(t, errors.As(err, &perr), "want a *ParseError, got %v", err)
			require.Equal(t, tt.reason, perr.Reason)
			require.Equal(t, "transform: unparseable event: "+tt.reason, err.Error())
		})
	}
}

func TestNormalizeMinimal(t *testing.T) {
	rec, err := transform.Normalize([]byte(` {"id":12345678901234567890,"created_at":"2025-05-15T14:30:00.000Z"} `), "ws")
	require.NoError(t, err)
	require.Equal(t, transform.Record{
		ID:            "12345678901234567890",
		CreatedAt:     1747319400000,
		EventCategory: transform.CategoryOther,
		DetailsJSON:   "{}",
		Workspace:     "ws",
	}, rec)
}

func TestNormalizeInvalidUTF8(t *testing.T) {
	raw := []byte("{\"id\":\"e\xff1\",\"created_at\":\"2025-05-15T14:30:00Z\",\"user_agent\":\"a\xc3\",\"details\":{\"reason\":\"\xfe\"}}")
	rec, err := transform.Normalize(raw, workspace)
	require.NoError(t, err)
	// One U+FFFD per invalid byte, as encoding/json reads it.
	require.Equal(t, "e\uFFFD1", rec.ID)
	require.Equal(t, "a\uFFFD", rec.UserAgent.Str)
	require.Equal(t, "\uFFFD", rec.Details[transform.DReason].Str)
	require.Equal(t, "{\"reason\":\"\uFFFD\"}", rec.DetailsJSON)
	require.True(t, json.Valid(ndjson.AppendRecord(nil, &rec)))
}

func TestCategory(t *testing.T) {
	want := map[string]string{
		"user_login": "auth", "user_logout": "auth", "user_2fa_fail": "auth", "user_2fa_success": "auth",
		"user_created": "employees", "user_deleted": "employees", "user_role_changed": "employees", "user_updated": "employees",
		"tag_created": "tags", "tag_deleted": "tags", "user_added_to_tag": "tags", "user_removed_from_tag": "tags",
		"chat_created": "chats", "chat_renamed": "chats", "chat_permission_changed": "chats",
		"user_chat_join": "chat_members", "user_chat_leave": "chat_members", "tag_added_to_chat": "chat_members", "tag_removed_from_chat": "chat_members",
		"message_created": "messages", "message_updated": "messages", "message_deleted": "messages",
		"reaction_created": "reactions_threads", "reaction_deleted": "reactions_threads", "thread_created": "reactions_threads",
		"access_token_created": "tokens", "access_token_updated": "tokens", "access_token_destroy": "tokens",
		"kms_encrypt": "encryption", "kms_decrypt": "encryption",
		"audit_events_accessed": "security", "dlp_violation_detected": "security",
		"search_users_api": "search", "search_chats_api": "search", "search_messages_api": "search",
		"bot_scopes_updated": "bots", "bot_webhook_settings_updated": "bots", "bot_token_recreated": "bots", "bot_deleted": "bots", "bot_oauth_client_updated": "bots",
		"oauth_authorization_granted": "oauth", "oauth_authorization_revoked": "oauth",
		"video_call_started": "video_calls", "video_call_finished": "video_calls", "video_call_recording_ready": "video_calls",
	}
	keys := transform.EventKeys()
	require.Len(t, keys, 45)
	require.Len(t, want, 45)
	for _, key := range keys {
		t.Run(key, func(t *testing.T) {
			require.NotEqual(t, transform.CategoryOther, transform.Category(key))
			require.Equal(t, want[key], transform.Category(key))
		})
	}
	for _, key := range []string{"", "meeting_room_booked", "USER_LOGIN", "user_login "} {
		require.Equal(t, transform.CategoryOther, transform.Category(key), key)
	}
}

func TestEventKeysIsACopy(t *testing.T) {
	keys := transform.EventKeys()
	keys[0] = "changed"
	require.Equal(t, "user_login", transform.EventKeys()[0])
}

// TestDuplicateNames: a name repeated in the event or its details object
// follows one rule everywhere, the last member wins, and details_json keeps
// only that member, so readers that take the first see the same value.
func TestDuplicateNames(t *testing.T) {
	raw := `{"id":"first","id":"e2","created_at":"2025-05-15T14:30:00.000Z","event_key":"user_updated",` +
		`"details":{"reason":"ignored"},` +
		`"details":{"reason":"a","changes":{"x":1},"reas\u006fn":"b","other":[1],"changes":{"y":2}}}`
	rec, err := transform.Normalize([]byte(raw), "ws")
	require.NoError(t, err)
	require.Equal(t, "e2", rec.ID)
	require.Equal(t, `{"reas\u006fn":"b","other":[1],"changes":{"y":2}}`, rec.DetailsJSON)
	require.Equal(t, transform.Value{Valid: true, Str: "b"}, rec.Details[transform.DReason])
	require.Equal(t, transform.Value{Valid: true, Str: `{"y":2}`}, rec.Details[transform.DChanges])

	// Names that differ only in bytes that are not UTF-8 are written alike,
	// each such byte U+FFFD: the same name (was: both kept, a name twice in
	// details_json).
	rec, err = transform.Normalize([]byte("{\"id\":\"e3\",\"created_at\":\"2025-05-15T14:30:00.000Z\",\"details\":{\"a\xff\":1,\"a\xfe\":2}}"), "ws")
	require.NoError(t, err)
	require.Equal(t, "{\"a\uFFFD\":2}", rec.DetailsJSON)
}

// TestManyDetailsMembers: a details object of many members, names repeated
// among them in every spelling, keeps the last member of each name, as a
// small one does; and one of a million members takes a moment (was: every
// name compared with every one before it, some 25 minutes for this one).
func TestManyDetailsMembers(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"id":"e1","created_at":"2025-05-15T14:30:00.000Z","details":{"reason":"a",`)
	for i := range 100 {
		fmt.Fprintf(&b, `"k%d":%d,`, i, i)
	}
	b.WriteString(`"k7":"again","k\u0038":"escaped","reas\u006fn":"b","x` + "\xff" + `":1,"x` + "\xfe" + `":2,"k99":"last"}}`)
	rec, err := transform.Normalize([]byte(b.String()), "ws")
	require.NoError(t, err)
	var want strings.Builder
	want.WriteString("{")
	for i := range 99 {
		if i != 7 && i != 8 {
			fmt.Fprintf(&want, `"k%d":%d,`, i, i)
		}
	}
	want.WriteString(`"k7":"again","k\u0038":"escaped","reas\u006fn":"b","x` + "\uFFFD" + `":2,"k99":"last"}`)
	require.Equal(t, want.String(), rec.DetailsJSON)
	require.Equal(t, transform.Value{Valid: true, Str: "b"}, rec.Details[transform.DReason])

	b.Reset()
	b.WriteString(`{"id":"e1","created_at":"2025-05-15T14:30:00.000Z","details":{`)
	const n = 1_000_000
	for i := range n {
		fmt.Fprintf(&b, `"k%d":1,`, i)
	}
	b.WriteString(`"k0":2}}`)
	rec, err = transform.Normalize([]byte(b.String()), "ws")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(rec.DetailsJSON, `{"k1":1,"k2":1,`))
	require.True(t, strings.HasSuffix(rec.DetailsJSON, fmt.Sprintf(`"k%d":1,"k0":2}`, n-1)))
}

// TestNormalizeUnpairedSurrogates: an unpaired surrogate escape reads as
// U+FFFD in every column, and details_json holds \ufffd in its place, since
// JSON readers (DuckDB's json_extract, Athena, Spark) reject the row, or the
// whole query, over it. Pairs and every other escape stay as sent.
func TestNormalizeUnpairedSurrogates(t *testing.T) {
	cases := []struct{ name, sent, column, detailsJSON string }{
		{"high then another escape", `\ud800\u0041BC`, "\uFFFDABC", `\ufffd\u0041BC`},
		{"low then a pair", `\udc00\ud83d\ude00!`, "\uFFFD\U0001F600!", `\ufffd\ud83d\ude00!`},
		{"lone high", `lone \ud800 high`, "lone \uFFFD high", `lone \ufffd high`},
		{"two highs", `\uD800\uDBFF`, "\uFFFD\uFFFD", `\ufffd\ufffd`},
		{"high at the end", `x\ud800`, "x\uFFFD", `x\ufffd`},
		{"escaped backslash", `\\ud800`, `\ud800`, `\\ud800`},
		{"pair", `\ud83d\ude00`, "\U0001F600", `\ud83d\ude00`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := []byte(`{"id":"e1","created_at":"2025-05-15T14:30:00Z","user_agent":"` + tc.sent +
				`","details":{"reason":"` + tc.sent + `","filters":{"q":"` + tc.sent + `"}}}`)
			rec, err := transform.Normalize(raw, workspace)
			require.NoError(t, err)
			require.Equal(t, tc.column, rec.UserAgent.Str)
			require.Equal(t, tc.column, rec.Details[transform.DReason].Str)
			require.Equal(t, `{"reason":"`+tc.detailsJSON+`","filters":{"q":"`+tc.detailsJSON+`"}}`, rec.DetailsJSON)
			require.Equal(t, `{"q":"`+tc.detailsJSON+`"}`, rec.Details[transform.DFilters].Str)
			var d struct{ Reason string }
			require.NoError(t, json.Unmarshal([]byte(rec.DetailsJSON), &d))
			require.Equal(t, tc.column, d.Reason)
		})
	}
}

// TestNormalizeTopLevelTypes: a top-level member of another JSON type than
// the schema's string is kept as its JSON text, compact, not blanked: the
// value the API sent stays in the record. null is "" (text columns) or
// null (ip_address, user_agent).
func TestNormalizeTopLevelTypes(t *testing.T) {
	raw := []byte(`{"id":"e1","created_at":"2025-05-15T14:30:00Z","event_key":true,` +
		`"actor_id":{ "a" : [1, "x\ud800"] },"actor_type":null,"entity_id":[1,2],"entity_type":12.5,` +
		`"ip_address":3232235777,"user_agent":{"b":false}}`)
	rec, err := transform.Normalize(raw, workspace)
	require.NoError(t, err)
	require.Equal(t, "true", rec.EventKey)
	require.Equal(t, `{"a":[1,"x\ufffd"]}`, rec.ActorID)
	require.Equal(t, "", rec.ActorType)
	require.Equal(t, "[1,2]", rec.EntityID)
	require.Equal(t, "12.5", rec.EntityType)
	require.True(t, rec.IPAddress.Valid)
	require.Equal(t, "3232235777", rec.IPAddress.Str)
	require.Equal(t, `{"b":false}`, rec.UserAgent.Str)

	rec, err = transform.Normalize([]byte(`{"id":"e1","created_at":"2025-05-15T14:30:00Z","ip_address":null}`), workspace)
	require.NoError(t, err)
	require.False(t, rec.IPAddress.Valid)
	require.False(t, rec.UserAgent.Valid)
}
