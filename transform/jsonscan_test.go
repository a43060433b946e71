package transform

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzScanEvent holds the strict scanner to encoding/json: it accepts exactly
// the valid JSON objects (nested less deeply than fastjson's limit), and
// appendCompact matches json.Compact, and appendUnescaped reads strings as
// encoding/json does.
func FuzzScanEvent(f *testing.F) {
	for _, s := range []string{
		`{}`, ` {"a" : [1, -0.5e+7, "x\"\\\/\b\f\n\r\t\u00e9"], "details": {"b": null}} `,
		`{"details":tru}`, `{"a":01}`, `{"a":1.}`, `{"a":"` + "\x1f" + `"}`, `{"a":"\x"}`, `[1]`,
		`{"a":"0123456789abcdef\"0123456789"}`, "{\"\xff\xfe\":\"\xc3\"}",
		`{"a":"\ud800\u0041BC","b":"\udc00\ud83d\ude00!","c":"lone \ud800 high"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		details, found, spaced, err := scanEvent(raw)
		trimmed := bytes.TrimLeft(raw, " \t\r\n")
		isObject := len(trimmed) > 0 && trimmed[0] == '{'
		if bytes.Count(raw, []byte("["))+bytes.Count(raw, []byte("{")) < 250 {
			require.Equal(t, json.Valid(raw) && isObject, err == nil, "scanEvent(%q) = %v", raw, err)
		}
		if err != nil {
			return
		}
		var want bytes.Buffer
		require.NoError(t, json.Compact(&want, raw))
		require.Equal(t, want.String(), string(appendCompact(nil, raw)))
		var members map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(raw, &members))
		for _, v := range members {
			if v[0] == '"' {
				var want string
				require.NoError(t, json.Unmarshal(v, &want))
				require.Equal(t, want, string(appendUnescaped(nil, v[1:len(v)-1])), "%s", v)
			}
		}
		if found {
			d := raw[details.off:details.end]
			require.True(t, json.Valid(d))
			require.Equal(t, spaced, !bytes.Equal(d, appendCompact(nil, d)), "spaced for %q", d)
		}
	})
}

func TestPlainRun(t *testing.T) {
	naive := func(b []byte, i int) int {
		for ; i < len(b); i++ {
			if c := b[i]; c < 0x20 || c == '"' || c == '\\' {
				return i
			}
		}
		return i
	}
	base := []byte("abcdefghijklmnopqrstuvwxyz\u00e9\u00ff0123456789")
	for pos := range len(base) {
		for _, c := range []byte{'"', '\\', 0x00, 0x1f, 0x20, 0x7f, 0x80, 0xff} {
			b := bytes.Clone(base)
			b[pos] = c
			for start := range 10 {
				require.Equal(t, naive(b, start), plainRun(b, start), "%q from %d", b, start)
			}
		}
	}
}

func TestMember(t *testing.T) {
	obj := []byte(`{"a":{"filters":1},"b":"}\"filters","filters":[{"x":"]"}],"filters":2}`)
	sp, ok := member(obj, "filters")
	require.True(t, ok)
	require.Equal(t, `[{"x":"]"}]`, string(obj[sp.off:sp.end]))
	_, ok = member(obj, "changes")
	require.False(t, ok)
	_, ok = member([]byte(`{}`), "changes")
	require.False(t, ok)
}

func TestDetailIndex(t *testing.T) {
	for i, f := range DetailFields() {
		require.Equal(t, i, detailIndex([]byte(f.JSON)), f.JSON)
	}
	require.Equal(t, -1, detailIndex([]byte("room_id")))
}

// TestAppendUnescapedLikeEncodingJSON: escapes, surrogate pairs and unpaired
// surrogates read as encoding/json reads them: each unpaired surrogate is
// U+FFFD, and the escape after one is read on its own unless it completes
// a pair.
func TestAppendUnescapedLikeEncodingJSON(t *testing.T) {
	for _, q := range []string{
		`plain`, `\"\\\/\b\f\n\r\t`, `\u00e9\u4e2d`, `\ud83d\ude00`, `\uD83D\uDE00!`,
		`\ud800\u0041BC`, `\udc00\ud83d\ude00!`, `lone \ud800 high`, `lone \udc00 low`,
		`\ud800`, `\udc00`, `\ud800\ud800`, `\ud800\ud800\udc00`, `\ud800\n`, `\ud800\\u0041`,
		`\udbff\udfff`, `\ud800\u00e9`, `x\ud800`, "bad \xff\xc3 bytes", "\xed\xa0\x80",
	} {
		t.Run(q, func(t *testing.T) {
			var want string
			require.NoError(t, json.Unmarshal([]byte(`"`+q+`"`), &want))
			require.Equal(t, want, string(appendUnescaped(nil, []byte(q))))
		})
	}
}
