package secret

import (
	"encoding/base64"
	"encoding/json"
	"html"
	"net/url"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestScrubberRemovesEveryForm(t *testing.T) {
	tokens := []string{
		"S3CR3Tabcdef",
		`S3C"R3T\abc`,
		"S3C<R&3T>/a b+c=d?e%f",
		"тайна-S3CR3T",
	}
	for _, tok := range tokens {
		sc := NewScrubber(tok)
		quoted := strconv.Quote(tok)
		j, _ := json.Marshal(tok)
		forms := map[string]string{
			"raw":     tok,
			"%q":      quoted,
			"json":    string(j),
			"query":   url.QueryEscape(tok),
			"path":    url.PathEscape(tok),
			"html":    html.EscapeString(tok),
			"base64":  base64.StdEncoding.EncodeToString([]byte(tok)),
			"rawurl":  base64.RawURLEncoding.EncodeToString([]byte(tok)),
			"header":  "Authorization: Bearer " + tok + "\r\n",
			"doubled": tok + tok,
		}
		for name, form := range forms {
			t.Run(tok+"/"+name, func(t *testing.T) {
				out := sc.String("before " + form + " after")
				require.Contains(t, out, Mask)
				require.NotContains(t, out, "S3C", "a part of the token is left")
				require.Contains(t, out, "before ")
				require.Contains(t, out, " after")
			})
		}
	}
}

func TestScrubberLeavesShortAndEmpty(t *testing.T) {
	require.Equal(t, "abc abc", NewScrubber("abc", "").String("abc abc"))
	require.Equal(t, "text", Scrubber{}.String("text"))
	require.Equal(t, []byte("x"), NewScrubber().Bytes([]byte("x")))
}

func TestURL(t *testing.T) {
	require.Equal(t, "https://u:xxxxx@h/p", URL("https://u:pw@h/p"))
	require.Equal(t, "https://api.pachca.com/api/shared/v1", URL("https://api.pachca.com/api/shared/v1"))
	require.Equal(t, "not a url\x7f", URL("not a url\x7f"))
}

func TestCredentials(t *testing.T) {
	for _, tc := range []struct {
		name, u string
		want    []string
	}{
		{"http", "http://corp:pw%40x@proxy:3128", []string{"pw@x", "corp:pw@x"}},
		{"no scheme", "corp:pw@proxy:3128", []string{"pw", "corp:pw"}},
		{"no password", "http://corp@proxy:3128", nil},
		{"no user info", "http://proxy:3128", nil},
		{"not a URL", "http://corp:p w@proxy", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, Credentials(tc.u))
		})
	}
}
