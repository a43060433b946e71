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

// TestRun: the notices of a release binary are written whole; a mistake
// exits 2 with one line, an unreadable binary 1, and leaves no file.
func TestRun(t *testing.T) {
	bin := buildtest.StaticBinary(t)
	out := filepath.Join(t.TempDir(), "THIRD_PARTY_NOTICES")
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, run([]string{"-repo", "../..", "-o", out, bin}, &stdout, &stderr), stderr.String())
	text, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Contains(t, string(text), "\ngithub.com/apache/arrow-go/v18 ")
	require.Equal(t, "wrote "+out+": "+fmt.Sprint(len(text))+" bytes\n", stdout.String())

	missing := filepath.Join(t.TempDir(), "none")
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{bin}, 2, "usage: pachca-notices [-repo DIR] -o FILE BINARY..."},
		{[]string{"-o", missing}, 2, "usage: pachca-notices [-repo DIR] -o FILE BINARY..."},
		{[]string{"-o", missing, "/nonexistent"}, 1, "notices: /nonexistent: could not read Go build info: open /nonexistent: no such file or directory"},
	} {
		stdout.Reset()
		stderr.Reset()
		require.Equal(t, tc.code, run(tc.args, &stdout, &stderr), tc.args)
		require.Equal(t, "pachca-notices: "+tc.msg+"\n", stderr.String(), tc.args)
		require.Empty(t, stdout.String())
		require.NoFileExists(t, missing)
	}
}
