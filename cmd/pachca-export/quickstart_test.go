package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestREADMEQuickStart follows the README's Quick start as a new user
// would, against the simulator: the line that saves the token (in sh and
// bash, as typed), its pipeline.yaml beside it (with only a base_url
// added), then each of its commands, in order; the files it shows must be
// there, and verify must pass. The demo is TestDemoCommandsRunAsPrinted's.
func TestREADMEQuickStart(t *testing.T) {
	blocks := sectionBlocks(t, "## Quick start")
	var saveToken, config string
	var commands []string
	for _, block := range blocks {
		switch {
		case strings.Contains(block, "> pachca-token"):
			saveToken = block
		case strings.HasPrefix(strings.TrimPrefix(modeline.ReplaceAllString(block, ""), "\n"), "source:"):
			config = block
		case strings.HasPrefix(block, "pachca-export check"):
			for _, line := range strings.Split(block, "\n") {
				cmd, _, _ := strings.Cut(line, "#")
				commands = append(commands, strings.TrimSpace(cmd))
			}
		}
	}
	require.NotEmpty(t, saveToken, "the line that saves the token")
	require.NotEmpty(t, config, "the pipeline.yaml")
	require.GreaterOrEqual(t, len(commands), 4, "check, run, the backfill, verify")

	base := startSim(t)
	for _, shell := range []string{"sh", "bash"} {
		t.Run(shell, func(t *testing.T) {
			dir := t.TempDir()
			sh := exec.Command(shell, "-c", saveToken)
			sh.Dir = dir
			sh.Stdin = strings.NewReader(secretToken + "\n")
			out, err := sh.CombinedOutput() // stty says stdin is no terminal: not here
			require.NoError(t, err, "%s", out)
			fi, err := os.Stat(filepath.Join(dir, "pachca-token"))
			require.NoError(t, err)
			require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
			tok, err := os.ReadFile(filepath.Join(dir, "pachca-token"))
			require.NoError(t, err)
			require.Equal(t, secretToken+"\n", string(tok))

			cfg := strings.Replace(config, "source:\n", "source:\n  base_url: "+base+"\n", 1)
			require.NoError(t, os.WriteFile(filepath.Join(dir, "pipeline.yaml"), []byte(cfg), 0o644))
			yesterday := time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly) // what the first run exports
			var verified string
			for _, c := range commands {
				args := strings.Fields(c)
				require.Equal(t, "pachca-export", args[0], c)
				for i, a := range args {
					if i > 0 && args[i-1] == "-c" {
						args[i] = filepath.Join(dir, a)
					}
				}
				var stdout, stderr bytes.Buffer
				require.Equal(t, 0, Main(t.Context(), args[1:], &stdout, &stderr), "%s\n%s%s", c, stdout.String(), stderr.String())
				if args[1] == "verify" {
					verified = stdout.String()
				}
			}
			require.NotContains(t, verified, "FAIL")
			// The files the Quick start shows, for yesterday.
			require.Contains(t, verified, "OK  dt="+yesterday)
			var shown int
			for _, block := range blocks {
				if !strings.HasPrefix(block, "out/") {
					continue
				}
				for _, p := range strings.Fields(block) {
					p = dateInPath.ReplaceAllString(p, yesterday)
					require.FileExists(t, filepath.Join(dir, p))
					shown++
				}
			}
			require.GreaterOrEqual(t, shown, 3, "the files of a day")
			require.DirExists(t, filepath.Join(dir, ".pachca-export"), "the state beside pipeline.yaml")
		})
	}
}

// sectionBlocks are the code blocks (as readREADME cuts them) of the
// README's section under heading, up to the next heading of its level.
func sectionBlocks(t *testing.T, heading string) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	level, _, _ := strings.Cut(heading, " ")
	first, last := 0, 0
	for i, line := range strings.Split(string(b), "\n") {
		switch {
		case line == heading:
			first = i + 1
		case first > 0 && last == 0 && strings.HasPrefix(line, level+" "):
			last = i + 1
		}
	}
	require.Positive(t, first, "README: no %q", heading)
	var blocks []string
	for _, s := range readREADME(t).blocks {
		if s.line > first && (last == 0 || s.line < last) {
			blocks = append(blocks, s.text)
		}
	}
	return blocks
}

// dateInPath is the date of a day's folder and file names.
var dateInPath = regexp.MustCompile(`\d{4}-\d{2}-\d{2}`)
