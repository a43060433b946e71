package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/testkit/buildtest"
)

// TestRun: the SBOM of a release binary is written beside it; a mistake
// exits 2 with one line, an unreadable binary 1, and leaves no file.
func TestRun(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "pachca-export-linux")
	require.NoError(t, os.Rename(buildtest.StaticBinary(t), bin))
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, run([]string{"-repo", "../..", "-version", "v1.2.0", bin}, &stdout, &stderr), stderr.String())
	doc, err := os.ReadFile(bin + ".cdx.json")
	require.NoError(t, err)
	require.Contains(t, string(doc), `"purl": "pkg:golang/github.com/apache/arrow-go/v18@`)
	require.Equal(t, "wrote "+bin+".cdx.json: "+fmt.Sprint(len(doc))+" bytes\n", stdout.String())

	missing := filepath.Join(t.TempDir(), "none")
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{bin}, 2, "usage: pachca-sbom [-repo DIR] -version VERSION BINARY..."},
		{[]string{"-version", "v1"}, 2, "usage: pachca-sbom [-repo DIR] -version VERSION BINARY..."},
		{[]string{"-version", "v1", missing}, 1, "sbom: open " + missing + ": no such file or directory"},
	} {
		stdout.Reset()
		stderr.Reset()
		require.Equal(t, tc.code, run(tc.args, &stdout, &stderr), tc.args)
		require.Equal(t, "pachca-sbom: "+tc.msg+"\n", stderr.String(), tc.args)
		require.Empty(t, stdout.String())
		require.NoFileExists(t, missing+".cdx.json")
	}
}
