package pipeline

// Dead letters: the events a delivery cannot export (they cannot be
// parsed, or carry the id of another, different event), kept outside every
// sink with the error and the API's bytes, one file per partition.

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/extract"
	"github.com/pachca-export/pachca-export/internal/atomicfile"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/ndjson"
)

// deadLetter is one line of a dead-letter file. Raw is the event's text
// as a JSON string, which reads U+FFFD for each byte that is not UTF-8:
// then RawBase64 holds the bytes as the API sent them (was: lost, though
// a dead letter is their only copy).
type deadLetter struct {
	Error     string `json:"error"`
	Window    string `json:"window"`
	Raw       string `json:"raw"`
	RawBase64 string `json:"raw_base64,omitempty"`
}

func newDeadLetter(why string, raw []byte, w extract.Window) deadLetter {
	d := deadLetter{Error: why, Raw: string(raw), Window: w.String()}
	if !utf8.Valid(raw) {
		d.RawBase64 = base64.StdEncoding.EncodeToString(raw)
	}
	return d
}

// deadLetterDir is where dead letters go, with the modes of what is
// created there: output.dead_letter_dir with the output modes, or else
// dead_letter/ in the state's directory, private like the state. Never
// under a sink's directory, where a reader's glob (DuckDB's **/*.ndjson
// reads names starting with _ too) would take dead letters for data.
func (r *runner) deadLetterDir() (dir string, fileMode, dirMode fs.FileMode) {
	if d := r.cfg.Output.DeadLetterDir; d != "" {
		fileMode, dirMode = r.cfg.Output.Modes()
		return d, fileMode, dirMode
	}
	return DeadLetterRoot(r.cfg.Output, r.store.Dir()), 0o600, 0o700
}

// DeadLetterRoot is the directory of the dead letters of the state in
// stateDir (its identity's directory): output.dead_letter_dir, or else
// dead_letter/ in it. Each day's go to its dt=YYYY-MM-DD/ there.
func DeadLetterRoot(o config.Output, stateDir string) string {
	if o.DeadLetterDir != "" {
		return o.DeadLetterDir
	}
	return filepath.Join(stateDir, "dead_letter")
}

// CheckDeadLetterDir creates output.dead_letter_dir if needed and proves
// it takes a file, as a file sink's directory is proved before a run
// fetches anything: dead letters are rare, and a directory that takes none
// (another user's, read-only) would otherwise fail the first day that has
// one, once it is fetched. The default, in the state, is the state's.
func CheckDeadLetterDir(o config.Output) error {
	d := o.DeadLetterDir
	if d == "" {
		return nil
	}
	_, dirMode := o.Modes()
	if err := atomicfile.MkdirAll(d, dirMode); err != nil {
		return fmt.Errorf("output.dead_letter_dir: %w", err)
	}
	if err := atomicfile.Probe(d); err != nil {
		return fmt.Errorf("output.dead_letter_dir: %w", &fs.PathError{Op: "create a file in", Path: d, Err: err})
	}
	return nil
}

// deadFile is the dead-letter file of a partition being delivered: each
// dead letter goes to its temporary file as it is found, and only a sum
// of its event is kept (was: every one in memory until the day was read,
// 105 MB of RSS for 20,000 of 1 KB: a day whose every event cannot be
// parsed, an API that changed its created_at, would exhaust it).
type deadFile struct {
	dir, path string
	f         *atomicfile.File
	bw        *bufio.Writer
	have      map[string]bool // contentID keys of the events in the file
	n         int             // dead letters added
}

// openDeadLetters starts the dead-letter file of p.
func (r *runner) openDeadLetters(p sinks.Partition) (*deadFile, error) {
	root, fileMode, dirMode := r.deadLetterDir()
	// As a file sink does with its dir (was: a link planted as a day
	// directory of output.dead_letter_dir, which dir_mode may let the group
	// write, took the dead letters anywhere the exporter may write).
	if err := atomicfile.RealDir(root, p.Dir()); err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	d := &deadFile{dir: filepath.Join(root, p.Dir()), have: map[string]bool{}}
	if err := atomicfile.MkdirAll(d.dir, dirMode); err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	d.path = filepath.Join(d.dir, p.BaseName()+".ndjson")
	// What a process killed while writing it left (was: kept for ever).
	if err := atomicfile.RemoveStale(d.dir, filepath.Base(d.path)); err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	f, err := atomicfile.Create(d.dir, filepath.Base(d.path), fileMode)
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", atomicfile.FinalName(err, d.path))
	}
	d.f, d.bw = f, bufio.NewWriterSize(f, 64<<10)
	return d, nil
}

// add writes dl.
func (d *deadFile) add(dl deadLetter) error {
	line, err := json.Marshal(dl)
	if err != nil {
		return errors.Join(errors.New("dead letters"), err)
	}
	if _, err := d.bw.Write(append(ndjson.EscapeLineBreaks(line), '\n')); err != nil {
		return fmt.Errorf("dead letters: %w", atomicfile.FinalName(err, d.path))
	}
	k, _ := contentID([]byte(dl.Raw))
	d.have[k] = true
	d.n++
	return nil
}

// count is the number of dead letters added; 0 for none (d nil).
func (d *deadFile) count() int {
	if d == nil {
		return 0
	}
	return d.n
}

// discard drops the file unless committed; d may be nil.
func (d *deadFile) discard() {
	if d != nil {
		d.f.Discard()
	}
}

// commit puts the file in place and returns its path. What the file of
// the same name held and the new one lacks is kept in it (was: replaced,
// lost: the dead letters of another configuration that shares the
// output.dead_letter_dir, or a rerun's that the API no longer returned),
// each event once; the day's directory is locked meanwhile, against such
// another configuration's run.
func (d *deadFile) commit(log *slog.Logger) (string, error) {
	unlock, err := lockDir(d.dir)
	if err != nil {
		return "", fmt.Errorf("dead letters: %w", err)
	}
	defer unlock()
	if err := d.keep(); err != nil {
		return "", fmt.Errorf("dead letters: %w", err)
	}
	if err := d.bw.Flush(); err != nil {
		return "", fmt.Errorf("dead letters: %w", atomicfile.FinalName(err, d.path))
	}
	if err := d.f.Commit(d.path); err != nil {
		return "", fmt.Errorf("dead letters: %w", atomicfile.FinalName(err, d.path))
	}
	d.prune(log)
	return d.path, nil
}

// lockDir locks directory dir against another process's lockDir until
// the returned func is called; on a file system without flock, not at
// all, as atomicfile's files.
func lockDir(dir string) (unlock func(), err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
	return func() { f.Close() }, nil
}

// keep appends the lines of the file at d.path whose events d lacks:
// every line of a file there is, but a blank one. A link or anything
// else but a file is not read (a group that may write the directory
// would have its target copied in); the commit replaces it.
func (d *deadFile) keep() error {
	f, err := os.OpenFile(d.path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ELOOP) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return err
	}
	return eachLine(f, func(line []byte) error {
		if raw, ok := letterRaw(line); ok {
			k, _ := contentID([]byte(raw))
			if d.have[k] {
				return nil
			}
			d.have[k] = true
		}
		if _, err := d.bw.Write(line); err != nil {
			return atomicfile.FinalName(err, d.path)
		}
		return d.bw.WriteByte('\n')
	})
}

// eachLine calls fn with each line of r that is not blank, without its
// line feed, however long.
func eachLine(r io.Reader, fn func(line []byte) error) error {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadBytes('\n')
		if t := bytes.TrimRight(line, "\n"); len(bytes.TrimSpace(t)) > 0 {
			if ferr := fn(t); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// prune removes the other dead-letter files of the day whose every event
// the file just committed holds: a part of the day written before (a run
// whose range ended within the day, a follow cycle read again after a
// restart), so that each dead letter of a day is in one file (was: a day
// exported in part, then whole, kept the part's file beside the day's,
// each of its dead letters twice). A file that cannot be read, or holds
// one event that the new one does not, stays.
func (d *deadFile) prune(log *slog.Logger) {
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		log.Warn("dead letters: the day's other files were not compared with the new one", "dir", d.dir, "error", err)
		return
	}
	removed := false
	for _, e := range entries {
		other := filepath.Join(d.dir, e.Name())
		if !e.Type().IsRegular() || other == d.path || !strings.HasPrefix(e.Name(), sinks.FilePrefix) || !strings.HasSuffix(e.Name(), ".ndjson") || !d.holds(other) {
			continue
		}
		if err := os.Remove(other); err != nil {
			log.Warn("dead letters: a file whose events the new one holds was not removed", "file", other, "error", err)
			continue
		}
		removed = true
		log.Info("dead letters: file removed, every event of it is in the new one", "file", other, "in", d.path)
	}
	if removed {
		if err := atomicfile.SyncDir(d.dir); err != nil {
			log.Warn("dead letters: the removal of a file the new one holds may not be durable", "dir", d.dir, "error", err)
		}
	}
}

// holds reports whether d holds every dead letter of the file at path,
// by its bytes; false for a file that cannot be read or holds none.
func (d *deadFile) holds(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	n := 0
	errNot := errors.New("not held")
	err = eachLine(f, func(line []byte) error {
		raw, ok := letterRaw(line)
		if !ok {
			return errNot
		}
		if k, _ := contentID([]byte(raw)); !d.have[k] {
			return errNot
		}
		n++
		return nil
	})
	return err == nil && n > 0
}

// letterRaw returns the bytes of the event of a dead-letter line:
// raw_base64 decoded, else raw.
func letterRaw(line []byte) (string, bool) {
	var d deadLetter
	if json.Unmarshal(line, &d) != nil {
		return "", false
	}
	if d.RawBase64 == "" {
		return d.Raw, true
	}
	b, err := base64.StdEncoding.DecodeString(d.RawBase64)
	return string(b), err == nil
}
