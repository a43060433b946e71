package state

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"iter"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pachca-export/pachca-export/internal/atomicfile"
	"github.com/pachca-export/pachca-export/internal/failure"
	"github.com/pachca-export/pachca-export/internal/sumfile"
)

// Follow is the durable position of a follow loop. A cycle is first
// recorded as Pending (the range it will deliver), then delivered, then the
// ids it delivered are appended to the day logs under its Seq, and only then
// does Seq move to it and Watermark to its end: a loop that dies in between
// redoes exactly the pending range, and ignores the ids logged under a Seq
// above the last committed one.
type Follow struct {
	// Start is the first instant the loop is responsible for: streams get
	// nothing created before it.
	Start time.Time `json:"start"`
	// Watermark: every event created before it and published by the time
	// of its cycle was delivered.
	Watermark time.Time `json:"watermark"`
	Seq       int64     `json:"seq"` // the last committed cycle
	Pending   *Cycle    `json:"pending,omitempty"`
	// Read is where the cycles' reads up to Watermark began: the first
	// cycle's start, or that of a cycle after a range the cycles skipped
	// (days due for the seal). The seal counts an event it finds missing
	// as late only from here on. Zero in a position of an older version.
	Read time.Time `json:"read,omitzero"`
}

// Cycle is one range a follow loop delivers: [From, To).
type Cycle struct {
	Seq  int64     `json:"seq"`
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

const followFile = "follow.json"

// Follow reads the loop's position; ok is false when no loop ran on this
// state yet. A file that does not decode is a permanent error naming it.
func (v *View) Follow() (f Follow, ok bool, err error) {
	const recovery = "restore it from a backup, or remove it to follow from the last exported day"
	path := filepath.Join(v.dir, followFile)
	ok, err = sumfile.Read(path, &f, recovery)
	if err != nil {
		return Follow{}, false, fmt.Errorf("state: %w", err)
	}
	if !ok {
		return Follow{}, false, nil
	}
	if why := f.damage(); why != "" {
		return Follow{}, false, failure.Permanentf("state: %s is damaged (%s): %s", path, why, recovery)
	}
	return f, true, nil
}

// damage says what makes f a position no loop recorded, "" when nothing
// does: a loop goes on from it as it is, and one that did not hold (a
// watermark before the start, a pending cycle under a committed seq, whose
// ids would count as delivered if it died) silently skipped or redid
// events (was: read as it was).
func (f *Follow) damage() string {
	switch c := f.Pending; {
	case f.Start.IsZero():
		return "no start"
	case f.Watermark.Before(f.Start):
		return "watermark before the start"
	case f.Seq < 0:
		return "negative seq"
	case c != nil && c.Seq <= f.Seq:
		return "pending cycle not after the last committed one"
	case c != nil && !c.From.Before(c.To):
		return "pending cycle over an empty range"
	}
	return ""
}

// SetFollow records f durably; it fails, permanently, when the state's
// directory was removed or replaced (Held).
func (s *Store) SetFollow(f Follow) error {
	if err := s.Held(); err != nil {
		return err
	}
	f.Start, f.Watermark = f.Start.UTC(), f.Watermark.UTC()
	if c := f.Pending; c != nil {
		f.Pending = &Cycle{Seq: c.Seq, From: c.From.UTC(), To: c.To.UTC()}
	}
	if err := sumfile.Write(filepath.Join(s.dir, followFile), f, fileMode); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// crcTable checks each line of the id logs: a line is "seq at id crc",
// crc the CRC-32C of "seq at id" in hex, so that a damaged line is found
// rather than read as another id.
var crcTable = crc32.MakeTable(crc32.Castagnoli)

// DeliveredID is one event a follow loop delivered: its id, created_at and
// a hash of its content.
type DeliveredID struct {
	ID  string
	At  int64  // Unix ms
	Sum uint64 // of the event's bytes as the API sent them; 0 when unknown (logged before sums were)
}

func (v *View) idsDir() string { return filepath.Join(v.dir, "follow-ids") }

// AppendDelivered logs the ids a cycle delivered under its seq, one file a
// UTC day, fsynced before it returns. The lines go to the files as they
// are made, through a buffer a day: a cycle that read a flood of events
// holds no second copy of its ids as text (was: the lines of every id in
// memory, some 80 bytes an id, before the first was written).
func (s *Store) AppendDelivered(seq int64, ids iter.Seq[DeliveredID]) error {
	logs := map[string]*idLog{}
	opened := 0
	err := func() error {
		var line []byte
		for d := range ids {
			day := time.UnixMilli(d.At).UTC().Format(time.DateOnly)
			l := logs[day]
			if l == nil {
				if len(logs) == 0 {
					if err := os.MkdirAll(s.idsDir(), 0o700); err != nil {
						return err
					}
				}
				var err error
				if l, err = openIDLog(filepath.Join(s.idsDir(), day)); err != nil {
					return err
				}
				logs[day] = l
				opened++
			}
			line = strconv.AppendInt(line[:0], seq, 10)
			line = append(line, ' ')
			line = strconv.AppendInt(line, d.At, 10)
			line = append(line, ' ')
			line = strconv.AppendUint(line, d.Sum, 16)
			line = append(line, ' ')
			line = appendID(line, d.ID)
			line = append(line, ' ')
			line = strconv.AppendUint(line, uint64(crc32.Checksum(line[:len(line)-1], crcTable)), 16)
			line = append(line, '\n')
			if _, err := l.w.Write(line); err != nil {
				return err
			}
		}
		for _, day := range slices.Sorted(maps.Keys(logs)) {
			if err := logs[day].close(); err != nil {
				return err
			}
			delete(logs, day)
		}
		return nil
	}()
	for _, l := range logs { // after an error
		l.f.Close()
	}
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if opened == 0 {
		return nil
	}
	return atomicfile.SyncDir(s.idsDir())
}

// idLog is a day's id log open for appending whole lines.
type idLog struct {
	f *os.File
	w *bufio.Writer
}

// openIDLog opens the log at path for appending. A torn last line (a
// crash while appending) is cut off first: Delivered skips it, but a line
// appended to it would read as damage.
func openIDLog(path string) (*idLog, error) {
	f, err := openInPlace(path, os.O_CREATE|os.O_RDWR)
	if err != nil {
		return nil, err
	}
	size, err := f.Seek(0, io.SeekEnd)
	var keep int64
	if err == nil {
		keep, err = lastLineEnd(f, size)
	}
	if err == nil && keep < size {
		err = f.Truncate(keep)
	}
	if err == nil {
		_, err = f.Seek(keep, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return &idLog{f: f, w: bufio.NewWriterSize(f, 64<<10)}, nil
}

// close writes what the buffer holds, fsyncs and closes the log.
func (l *idLog) close() error {
	err := l.w.Flush()
	if err == nil {
		err = l.f.Sync()
	}
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// lastLineEnd is the offset just after the last newline of f's first size
// bytes, 0 when there is none; it reads from the end.
func lastLineEnd(f *os.File, size int64) (int64, error) {
	buf := make([]byte, 4096)
	for end := size; end > 0; {
		start := max(0, end-int64(len(buf)))
		n, err := f.ReadAt(buf[:end-start], start)
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return 0, nil
}

// DeliveredDays lists the days that have an id log, oldest first.
func (v *View) DeliveredDays() ([]string, error) {
	entries, err := os.ReadDir(v.idsDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	var days []string
	for _, e := range entries {
		if _, err := time.Parse(time.DateOnly, e.Name()); err == nil {
			days = append(days, e.Name())
		}
	}
	return days, nil
}

// Delivered calls fn with each id of day logged under a seq up to upTo (the
// last committed cycle); later ones belong to a cycle that did not commit.
// A torn last line (a crash while appending) is skipped; any other line that
// does not read is a permanent error naming the file.
func (v *View) Delivered(day string, upTo int64, fn func(DeliveredID)) error {
	path := filepath.Join(v.idsDir(), day)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	defer f.Close()
	// Line by line: the log of a day of a million events is some 80 MB
	// (was: read whole into memory at the seal).
	r := bufio.NewReaderSize(f, 64<<10)
	for n := 1; ; n++ {
		line, err := r.ReadString('\n')
		if errors.Is(err, io.EOF) {
			return nil // a torn last line, or none
		}
		if err != nil {
			return fmt.Errorf("state: %w", err)
		}
		seq, id, err := parseDelivered(line[:len(line)-1])
		if err != nil {
			return failure.Permanentf("state: %s:%d is damaged: restore it from a backup, or remove it (the day's events may then go to streams again when it is sealed)", path, n)
		}
		if seq <= upTo {
			fn(id)
		}
	}
}

// parseDelivered reads a line of the id log: "seq at sum id crc", the crc
// (hex CRC-32C) of what comes before its space, the id everything between
// the third space and the last (quoted if appendID quoted it). A line
// logged before sums were is "seq at id crc", its id without a space; one
// logged before CRCs were is "seq at id" (see parseBeforeCRC).
func parseDelivered(line string) (int64, DeliveredID, error) {
	last := strings.LastIndexByte(line, ' ')
	f := strings.SplitN(line[:max(last, 0)], " ", 4)
	if last < 0 || len(f) < 3 {
		if seq, d, ok := parseBeforeCRC(line); ok {
			return seq, d, nil
		}
		return 0, DeliveredID{}, errors.New("fields")
	}
	crc, err := strconv.ParseUint(line[last+1:], 16, 32)
	if err != nil || uint32(crc) != crc32.Checksum([]byte(line[:last]), crcTable) {
		return 0, DeliveredID{}, errors.New("checksum")
	}
	seq, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return 0, DeliveredID{}, err
	}
	d := DeliveredID{ID: f[2]}
	if d.At, err = strconv.ParseInt(f[1], 10, 64); err != nil {
		return 0, DeliveredID{}, err
	}
	if len(f) == 4 {
		if d.Sum, err = strconv.ParseUint(f[2], 16, 64); err != nil {
			return 0, DeliveredID{}, err
		}
		d.ID = f[3]
		if strings.HasPrefix(d.ID, `"`) {
			if d.ID, err = strconv.Unquote(d.ID); err != nil {
				return 0, DeliveredID{}, err
			}
		}
	}
	return seq, d, nil
}

// parseBeforeCRC reads a line of a log written before lines carried a
// CRC: "seq at id", three fields, the id as it came. Any other line,
// among them every line of the later formats, is not one (ok false).
func parseBeforeCRC(line string) (seq int64, d DeliveredID, ok bool) {
	f := strings.Split(line, " ")
	if len(f) != 3 || f[2] == "" {
		return 0, DeliveredID{}, false
	}
	seq, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return 0, DeliveredID{}, false
	}
	at, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0, DeliveredID{}, false
	}
	return seq, DeliveredID{ID: f[2], At: at}, true
}

// appendID appends id to a line of the id log: as it is, or quoted (Go
// syntax) if it holds a byte that would break the line (a newline, a
// control byte, invalid UTF-8), is empty or starts with a quote.
func appendID(b []byte, id string) []byte {
	plain := id != "" && id[0] != '"' && utf8.ValidString(id)
	for i := 0; plain && i < len(id); i++ {
		plain = id[i] >= ' ' && id[i] != 0x7f
	}
	if plain {
		return append(b, id...)
	}
	return strconv.AppendQuote(b, id)
}

// RemoveDelivered forgets the id log of day, once the day is sealed.
func (s *Store) RemoveDelivered(day string) error {
	if err := os.Remove(filepath.Join(s.idsDir(), day)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// FollowSibling is a state beside a view's whose follow loop recorded a
// position.
type FollowSibling struct {
	Dir      string
	Identity json.RawMessage
	Follow   Follow
}

// FollowSiblings lists the states beside v's under their common root whose
// follow loop recorded a position (a state that cannot be read is left
// out), for a new state's first start to tell which events those loops
// delivered already.
func (v *View) FollowSiblings() []FollowSibling {
	var out []FollowSibling
	v.eachSibling(func(sib *View, id json.RawMessage) {
		if f, ok, err := sib.Follow(); ok && err == nil {
			out = append(out, FollowSibling{Dir: sib.dir, Identity: id, Follow: f})
		}
	})
	return out
}
