package verify

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/pachca-export/pachca-export/sinks"
)

// checkUnexported checks what m says went to no file of day: the sums of
// its files' counts, and that the dead-letter files of the day hold at
// least the dead letters it counts (they may hold more: configurations
// that share output.dead_letter_dir share its files). A dead letter is the
// only copy of its event; one removed would leave the day short of an
// event that the manifest still accounts for.
func (r *root) checkUnexported(day string, m sinks.Manifest, res *dayResult) {
	var dead, dropped int64
	for _, f := range m.Files {
		dead += f.DeadLetters
		dropped += f.Dropped
	}
	if dead != m.DeadLetters || dropped != m.Dropped {
		res.fail("dead_letters %d and dropped %d, but its files list %d and %d", m.DeadLetters, m.Dropped, dead, dropped)
	}
	if m.DeadLetters == 0 || r.deadLetters == "" {
		return
	}
	dir := filepath.Join(r.deadLetters, "dt="+day)
	if _, err := os.Stat(r.deadLetters); errors.Is(err, fs.ErrNotExist) {
		res.note("the manifest counts %d dead letter(s), kept in %s, which does not exist here (verified on another host?)", m.DeadLetters, dir)
		return
	}
	n, err := countLines(dir)
	switch {
	case err != nil:
		res.fail("the manifest counts %d dead letter(s): %v", m.DeadLetters, err)
	case n < m.DeadLetters:
		res.fail("the manifest counts %d dead letter(s), but %s holds %d: removed? (a dead letter is its event's only copy)", m.DeadLetters, dir, n)
	}
}

// countLines counts the lines of the dead-letter files in dir (not the
// temporary ones); none when dir does not exist.
func countLines(dir string) (int64, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var n int64
	buf := make([]byte, 64<<10)
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") || !strings.HasSuffix(e.Name(), ".ndjson") {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			return 0, err
		}
		for {
			k, err := f.Read(buf)
			n += int64(bytes.Count(buf[:k], []byte{'\n'}))
			if err == io.EOF {
				break
			}
			if err != nil {
				f.Close()
				return 0, err
			}
		}
		f.Close()
	}
	return n, nil
}
