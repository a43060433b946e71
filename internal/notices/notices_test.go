package notices

import (
	"bytes"
	"debug/buildinfo"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/testkit/buildtest"
)

// TestGenerateCoversBinary: the release binary's notices carry, for every
// module Go recorded in it, a heading and a licence text, and the Go
// standard library's and ECharts' licence and NOTICE; the same binary
// gives the same bytes.
func TestGenerateCoversBinary(t *testing.T) {
	bin := buildtest.StaticBinary(t)
	raw, err := Generate("../..", bin)
	require.NoError(t, err)
	text := string(raw)
	bi, err := buildinfo.ReadFile(bin)
	require.NoError(t, err)
	require.NotEmpty(t, bi.Deps)
	sections := split(text)
	for _, d := range bi.Deps {
		body, ok := sections[d.Path+" "+d.Version]
		require.True(t, ok, "no section for %s %s", d.Path, d.Version)
		require.Regexp(t, `(?i)\n--- (licen[cs]e|copying)`, body, d.Path)
		require.Regexp(t, `(?i)copyright|apache license|permission is hereby granted`, body, d.Path)
	}
	for _, m := range []string{"github.com/apache/arrow-go/v18", "github.com/aws/aws-sdk-go-v2", "github.com/prometheus/client_golang"} {
		require.True(t, strings.Contains(text, "\n"+m+" "), "%s: an Apache-2.0 module the README names", m)
	}
	std := sections["Go standard library "+runtime.Version()]
	require.Contains(t, std, "--- LICENSE\n\nCopyright 2009 The Go Authors.")
	require.Contains(t, std, "--- PATENTS")
	var echarts string
	for h, body := range sections {
		if strings.HasPrefix(h, "Apache ECharts") {
			echarts = body
		}
	}
	require.Contains(t, echarts, "--- report/page/assets/echarts.LICENSE\n\n")
	require.Contains(t, echarts, "Apache License")
	require.Contains(t, echarts, "--- report/page/assets/echarts.NOTICE\n\nApache ECharts\nCopyright")
	require.Len(t, sections, len(bi.Deps)+2, "one section each, nothing else")

	again, err := Generate("../..", bin)
	require.NoError(t, err)
	require.True(t, bytes.Equal(raw, again), "the same binary, the same notices")
}

// TestModuleWithoutLicence: a module whose directory has no licence file
// (a NOTICE alone grants nothing) fails the file, naming it.
func TestModuleWithoutLicence(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "NOTICE"), []byte("Example\nCopyright 2026\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "README.md"), []byte("licensed somehow\n"), 0o644))
	var out bytes.Buffer
	err := section(&out, Module{Path: "example.com/nolicence", Version: "v1.0.0", Dir: dir})
	require.EqualError(t, err, "notices: module example.com/nolicence v1.0.0: no licence file (LICENSE, COPYING) in "+dir)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "LICENSE.md"), []byte("MIT License\n\nCopyright (c) 2026 Example\n"), 0o644))
	out.Reset()
	require.NoError(t, section(&out, Module{Path: "example.com/nolicence", Version: "v1.0.0", Dir: dir}))
	require.Contains(t, out.String(), "\n--- LICENSE.md\n\nMIT License\n")
	require.Contains(t, out.String(), "\n--- NOTICE\n\nExample\n")
	require.NotContains(t, out.String(), "README")
}

// split returns the notices' sections by heading.
func split(text string) map[string]string {
	sections := map[string]string{}
	rule := "\n" + strings.Repeat("=", 78) + "\n"
	for _, s := range strings.Split(text, rule)[1:] {
		h, body, _ := strings.Cut(s, "\n")
		sections[h] = "\n" + body
	}
	return sections
}
