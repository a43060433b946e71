package page

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/report/digest"
)

// TestVendoredECharts: the embedded build is the pinned version, with its
// license notice.
func TestVendoredECharts(t *testing.T) {
	require.Contains(t, echartsJS, `version="`+EChartsVersion+`"`)
	require.Contains(t, echartsNotice, "Apache ECharts")
}

// TestSelfContained: the page refers to nothing outside itself, and
// user-controlled text is escaped.
func TestSelfContained(t *testing.T) {
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	b, err := digest.New(digest.Options{From: from, To: from.AddDate(0, 0, 1)})
	require.NoError(t, err)
	s := b.Finish()
	s.TopIPs = []digest.Top{{Key: `<script>alert(1)</script>`, Count: 1}}
	var out bytes.Buffer
	require.NoError(t, Render(&out, &Data{Title: "t", Source: "dir", Current: s, Generated: from}))
	html := out.String()
	require.NotContains(t, html, "<script>alert(1)")
	require.Contains(t, html, "&lt;script&gt;alert(1)")
	markup := regexp.MustCompile(`(?s)<script[^>]*>.*?</script>`).ReplaceAllString(html, "<script></script>")
	require.Equal(t, 3, strings.Count(markup, "<script></script>"), "data, library, app: all inline")
	for _, m := range regexp.MustCompile(`(?i)\s(src|href)\s*=\s*"([^"]*)"`).FindAllStringSubmatch(markup, -1) {
		require.True(t, strings.HasPrefix(m[2], "#"), "reference outside the page: %s", m[0])
	}
	require.Contains(t, html, "default-src 'none'")
}
