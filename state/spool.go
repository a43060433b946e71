package state

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pachca-export/pachca-export/extract"
	"github.com/pachca-export/pachca-export/internal/atomicfile"
)

// Spool holds the raw events of fetched windows, one file per window and day:
// spool/<day>/<stream>~<start>~<end>.ndjson. A window file appears under its
// final name only once complete, so the set of names is the checkpoint: a
// resumed run fetches only what they do not cover.
//
// A window file proves itself: one raw event per line, then a trailer line
//
//	#pachca-spool records=<lines> bytes=<bytes before the trailer> sha256=<hex of those bytes>
//
// checked by every read, so a file cut short or edited is never delivered
// as if whole (ErrDamaged); Sound removes such files so that their windows
// are fetched again.
type Spool struct{ dir string }

// ErrDamaged means a window file does not match its trailer (cut short,
// edited, or written without one).
var ErrDamaged = errors.New("damaged")

const trailerPrefix = "#pachca-spool "

// Spool returns the store's spool.
func (s *Store) Spool() *Spool { return &Spool{dir: filepath.Join(s.dir, spoolDir)} }

const allStreams = "_all"

func windowName(w extract.Window) string {
	stream := allStreams
	if w.Stream != "" {
		stream = url.PathEscape(w.Stream)
	}
	return fmt.Sprintf("%s~%d~%d.ndjson", stream, w.Start, w.End)
}

func parseWindowName(name string) (extract.Window, bool) {
	base, ok := strings.CutSuffix(name, ".ndjson")
	if !ok {
		return extract.Window{}, false
	}
	parts := strings.Split(base, "~")
	if len(parts) != 3 {
		return extract.Window{}, false
	}
	start, err1 := strconv.ParseInt(parts[1], 10, 64)
	end, err2 := strconv.ParseInt(parts[2], 10, 64)
	stream, err3 := url.PathUnescape(parts[0])
	if err1 != nil || err2 != nil || err3 != nil || start >= end {
		return extract.Window{}, false
	}
	if stream == allStreams {
		stream = ""
	}
	return extract.Window{Stream: stream, Start: start, End: end}, true
}

// Dir is the directory of day's window files.
func (sp *Spool) Dir(day string) string { return filepath.Join(sp.dir, day) }

// Windows returns the complete windows spooled for day, ordered by start.
func (sp *Spool) Windows(day string) ([]extract.Window, error) {
	dir := filepath.Join(sp.dir, day)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	var ws []extract.Window
	for _, e := range entries {
		if w, ok := parseWindowName(e.Name()); ok {
			ws = append(ws, w)
		}
	}
	slices.SortFunc(ws, func(a, b extract.Window) int {
		return cmp.Or(cmp.Compare(a.Start, b.Start), strings.Compare(a.Stream, b.Stream))
	})
	return ws, nil
}

// CleanTemp removes the partial window files a killed run left. Call it
// before fetching, never while windows are open.
func (sp *Spool) CleanTemp() error {
	tmps, err := filepath.Glob(filepath.Join(atomicfile.GlobEscape(sp.dir), "*", ".*"))
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	for _, p := range tmps {
		if !atomicfile.IsTemp(filepath.Base(p)) {
			continue
		}
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
	}
	return nil
}

// Days returns the days that have a spool directory.
func (sp *Spool) Days() ([]string, error) {
	entries, err := os.ReadDir(sp.dir)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	var days []string
	for _, e := range entries {
		if e.IsDir() {
			days = append(days, e.Name())
		}
	}
	return days, nil
}

// Open starts spooling window w of day.
func (sp *Spool) Open(day string, w extract.Window) (extract.WindowWriter, error) {
	dir := filepath.Join(sp.dir, day)
	// Not MkdirAll: a state directory removed under the process (by hand,
	// by a cleaner of temporary files) is not made again, without its
	// lock, for another process to take.
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("spool: %s is gone (the state directory removed while this process used it?): stopping before writing there", sp.dir)
		}
		return nil, fmt.Errorf("spool: %w", err)
	}
	name := windowName(w)
	path := filepath.Join(dir, name)
	f, err := atomicfile.Create(dir, name, fileMode)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", atomicfile.FinalName(err, path))
	}
	return &windowFile{dir: dir, path: path, f: f, bw: bufio.NewWriterSize(f, 64<<10), sum: sha256.New()}, nil
}

// windowFile spools one window. Its errors name the file by the window's
// name (path), not the temporary one, which differs at each try.
type windowFile struct {
	dir     string
	path    string
	f       *atomicfile.File
	bw      *bufio.Writer
	line    bytes.Buffer
	sum     hash.Hash // of every byte before the trailer
	records int64
	bytes   int64
}

func (w *windowFile) write(b []byte) error {
	if _, err := w.bw.Write(b); err != nil {
		return fmt.Errorf("spool: %w", atomicfile.FinalName(err, w.path))
	}
	w.sum.Write(b)
	w.bytes += int64(len(b))
	return nil
}

func (w *windowFile) Add(ev extract.Event) error {
	raw := ev.Raw
	if bytes.ContainsAny(raw, "\r\n") {
		w.line.Reset()
		if err := json.Compact(&w.line, raw); err != nil {
			// Not JSON at all: keep it on one line anyway; the transform dead-letters it.
			raw = bytes.ReplaceAll(bytes.ReplaceAll(raw, []byte("\r"), nil), []byte("\n"), []byte(" "))
		} else {
			raw = w.line.Bytes()
		}
	}
	if err := w.write(raw); err != nil {
		return err
	}
	w.records++
	return w.write([]byte{'\n'})
}

// Commit writes the trailer and makes the window durable under the name of
// done: fsynced, renamed, and the rename itself fsynced, so that a
// checkpoint survives a power loss.
func (w *windowFile) Commit(done extract.Window) error {
	_, err := fmt.Fprintf(w.bw, "%srecords=%d bytes=%d sha256=%s\n", trailerPrefix, w.records, w.bytes, hex.EncodeToString(w.sum.Sum(nil)))
	if err == nil {
		err = w.bw.Flush()
	}
	final := filepath.Join(w.dir, windowName(done))
	if err == nil {
		err = w.f.Commit(final)
	}
	if err != nil {
		w.f.Discard()
		return fmt.Errorf("spool: commit %s: %w", done, atomicfile.FinalName(err, final))
	}
	return nil
}

func (w *windowFile) Abort() { w.f.Discard() }

// Line is where one event line of a window file is, for ReadLines.
type Line struct {
	Off int64 // of its first byte
	Len int   // without the newline
}

// Read calls fn with each raw event line of window w of day, and where it
// is. The line is only valid during the call. The file is checked against
// its trailer as it is read: an error wrapping ErrDamaged, naming the file,
// comes after fn saw the lines, so a caller must not use what it got from a
// read that failed.
func (sp *Spool) Read(day string, w extract.Window, fn func(raw []byte, at Line) error) error {
	path := filepath.Join(sp.dir, day, windowName(w))
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	defer f.Close()
	damaged := func(format string, args ...any) error {
		return fmt.Errorf("spool: window file %s is %w: %s", path, ErrDamaged, fmt.Sprintf(format, args...))
	}
	sum := sha256.New()
	var records, n int64
	var trailer string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if trailer != "" {
			return damaged("data after the trailer")
		}
		if bytes.HasPrefix(line, []byte(trailerPrefix)) {
			trailer = string(line)
			continue
		}
		sum.Write(line)
		sum.Write([]byte{'\n'})
		records++
		at := Line{Off: n, Len: len(line)}
		n += int64(len(line)) + 1
		if err := fn(line, at); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("spool: read %s: %w", path, err)
	}
	if trailer == "" {
		return damaged("no trailer: cut short, or written by an older version")
	}
	want := fmt.Sprintf("%srecords=%d bytes=%d sha256=%s", trailerPrefix, records, n, hex.EncodeToString(sum.Sum(nil)))
	if trailer != want {
		return damaged("%d events, %d bytes and their sha256 do not match its trailer %q", records, n, trailer)
	}
	return nil
}

// ReadLines calls fn with the lines of window w of day at lines, in that
// order: for a caller that read the file with Read, which checked it, and
// needs some of its lines again in another order without holding them (a
// window of many events in one millisecond, which no checkpoint cuts). A
// place that is not a whole line is ErrDamaged.
func (sp *Spool) ReadLines(day string, w extract.Window, lines []Line, fn func(i int, raw []byte) error) error {
	path := filepath.Join(sp.dir, day, windowName(w))
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	defer f.Close()
	var buf []byte
	for i, l := range lines {
		buf = slices.Grow(buf[:0], l.Len+1)[:l.Len+1]
		if _, err := f.ReadAt(buf, l.Off); err != nil {
			return fmt.Errorf("spool: read %s: %w", path, err)
		}
		if buf[l.Len] != '\n' {
			return fmt.Errorf("spool: window file %s is %w: no line at byte %d (changed since it was read?)", path, ErrDamaged, l.Off)
		}
		if err := fn(i, buf[:l.Len]); err != nil {
			return err
		}
	}
	return nil
}

// Sound returns the complete windows spooled for day whose files match
// their trailers, ordered by start, after removing the damaged ones, whose
// errors (ErrDamaged, naming the file and why) it returns in removed:
// their windows are gaps to fetch again.
func (sp *Spool) Sound(day string) (ws []extract.Window, removed []error, err error) {
	all, err := sp.Windows(day)
	if err != nil {
		return nil, nil, err
	}
	for _, w := range all {
		err := sp.Read(day, w, func([]byte, Line) error { return nil })
		switch {
		case err == nil:
			ws = append(ws, w)
		case errors.Is(err, ErrDamaged):
			if err := os.Remove(filepath.Join(sp.dir, day, windowName(w))); err != nil {
				return nil, nil, fmt.Errorf("spool: %w", err)
			}
			removed = append(removed, err)
		default:
			return nil, nil, err
		}
	}
	return ws, removed, nil
}

// Remove deletes the given windows of day, and the day's directory once empty.
func (sp *Spool) Remove(day string, ws []extract.Window) error {
	dir := filepath.Join(sp.dir, day)
	for _, w := range ws {
		if err := os.Remove(filepath.Join(dir, windowName(w))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("spool: %w", err)
		}
	}
	os.Remove(dir) // fails while other windows remain, as it should
	return nil
}

// RemoveUnless deletes the complete windows of day but those whose files
// keep accepts by the time they were written (their modification time),
// and the day's directory once empty; it returns how many it kept.
func (sp *Spool) RemoveUnless(day string, keep func(written time.Time) bool) (int, error) {
	dir := filepath.Join(sp.dir, day)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("spool: %w", err)
	}
	kept := 0
	for _, e := range entries {
		if _, ok := parseWindowName(e.Name()); !ok {
			continue
		}
		if info, err := e.Info(); err == nil && keep(info.ModTime()) {
			kept++
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return kept, fmt.Errorf("spool: %w", err)
		}
	}
	os.Remove(dir) // fails while other files remain, as it should
	return kept, nil
}

// RemoveDay deletes everything spooled for day.
func (sp *Spool) RemoveDay(day string) error {
	return os.RemoveAll(filepath.Join(sp.dir, day))
}
