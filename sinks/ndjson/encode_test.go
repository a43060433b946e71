package ndjson

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// referenceString is AppendString as first written, byte by byte: the fast
// path must write exactly what it wrote.
func referenceString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			start = i + size
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			start = i + size
		case r == '\u0085':
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\u0085`...)
			start = i + size
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func TestAppendString(t *testing.T) {
	cases := map[string]string{
		"empty":        "",
		"short":        "abc",
		"eight":        "abcdefgh",
		"long ascii":   "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36",
		"quote late":   "abcdefghijk\"lmnop",
		"backslash":    `C:\Users\me\file.txt`,
		"controls":     "a\x00b\x01c\x1fd\te\nf\rg\x7fh",
		"cyrillic":     "Привет, мир! Проверка кириллицы в строке",
		"mixed":        "abcdefgh Привет abcdefgh \u2028 abcdefgh\u2029",
		"invalid utf8": "abcdefgh\xffabcdefgh\xc3",
		"edge bytes":   "\x20\x21\x22\x23\x5b\x5c\x5d\x7e\x7f\x80",
		"next line":    "abcdefgh\u0085abcdefgh\xc2\u00a0",
	}
	for name, s := range cases {
		t.Run(name, func(t *testing.T) {
			got := AppendString(nil, s)
			require.Equal(t, string(referenceString(nil, s)), string(got))
			var back string
			require.NoError(t, json.Unmarshal(got, &back))
			require.Equal(t, strings.ToValidUTF8(s, "\uFFFD"), back)
		})
	}
}

func TestAppendStringRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("abcXYZ019 \"\\\x00\x1f\x20\x7f\x80\xbf\xc2\x85\xc3\xe2\x80\xa8\xd0\x9f")
	b := make([]byte, 0, 64)
	for range 20000 {
		b = b[:0]
		for range rng.IntN(40) {
			if rng.IntN(4) == 0 {
				b = append(b, alphabet[rng.IntN(len(alphabet))])
			} else {
				b = append(b, 'a'+byte(rng.IntN(26)))
			}
		}
		s := string(b)
		require.Equal(t, string(referenceString(nil, s)), string(AppendString(nil, s)), "%q", s)
	}
}

func TestAppendTime(t *testing.T) {
	const layout = "2006-01-02T15:04:05.000Z"
	ref := func(ms int64) string { return time.UnixMilli(ms).UTC().Format(layout) }
	edges := []int64{0, -1, 1, 86399999, 86400000, -86400000, 951782400000, 4102444800000,
		-62167219200000, -62167219200001, 253402300799999, 253402300800000, 1 << 62, -(1 << 62)}
	for _, ms := range edges {
		require.Equal(t, ref(ms), string(AppendTime(nil, ms)), "%d", ms)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200000 {
		ms := rng.Int64N(253402300800000+62167219200000) - 62167219200000
		require.Equal(t, ref(ms), string(AppendTime(nil, ms)), "%d", ms)
	}
}
