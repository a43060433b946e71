// Package tokenfile reads the API token from source.token_file: once when
// the configuration loads (Read), and, for a long-running process, again
// whenever the file changes (File), so that a token rotated by writing the
// file (a Kubernetes Secret's symbolic link swapped, an editor's rename, an
// `install -m600`) is used without a restart.
package tokenfile

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"unicode"

	"github.com/pachca-export/pachca-export/internal/secret"
	"github.com/pachca-export/pachca-export/internal/smallfile"
)

// MaxSize is the most of a token file read: a token is one short line, and
// a path to another file (a log, /dev/zero) must not be read until the
// memory is gone.
const MaxSize = 64 << 10

// ErrEmpty is a token file that holds no token (nothing but blanks and a
// byte order mark).
var ErrEmpty = errors.New("empty")

// InvalidError is a token file whose content no request can carry as the
// token (Check's error).
type InvalidError struct{ Err error }

func (e *InvalidError) Error() string { return e.Err.Error() }
func (e *InvalidError) Unwrap() error { return e.Err }

// Check reports a token that no HTTP request can carry: one with a control
// character, such as the line break of a copied line, or one the API cannot
// take for the token meant: an invisible format character (a byte order
// mark, a zero-width space). The error does not show the token; callers
// name where it came from.
func Check(tok string) error {
	if strings.ContainsFunc(tok, unicode.IsControl) {
		return errors.New("holds a control character (a line break or a tab?): a token is one line of printable characters, remove the rest")
	}
	// Sent as they are, the API would refuse the token as wrong (401).
	if strings.ContainsFunc(tok, func(r rune) bool { return unicode.Is(unicode.Cf, r) }) {
		return errors.New("holds an invisible character (a byte order mark or a zero-width space, copied with it?): a token is one line of printable characters, remove the rest")
	}
	return nil
}

// Read returns the token in the file at path: its content without a
// Windows editor's byte order mark and surrounding blanks (a final CRLF).
// Errors: one wrapping smallfile.ErrTooLarge past MaxSize, an
// *InvalidError for a content Check refuses, ErrEmpty, or the file's own
// (*fs.PathError: missing, unreadable). None shows the content.
func Read(path string) (string, error) {
	b, err := smallfile.Read(path, MaxSize, nil)
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(strings.TrimPrefix(string(b), "\uFEFF"))
	if err := Check(tok); err != nil {
		return "", &InvalidError{err}
	}
	if tok == "" {
		return "", ErrEmpty
	}
	return tok, nil
}

// errNotRegular is a token file replaced by something else than a file
// while a process follows it.
var errNotRegular = errors.New("is no regular file any more")

// Problem is what the error of Read says of path, for a log line or an
// error after "source.token_file: ".
func Problem(path string, err error) string {
	var inv *InvalidError
	switch {
	case errors.Is(err, smallfile.ErrTooLarge):
		return fmt.Sprintf("%s is larger than %d KiB: not a token file (the token, one line)", path, MaxSize>>10)
	case errors.As(err, &inv):
		return fmt.Sprintf("the token in %s %v", path, inv.Err)
	case errors.Is(err, ErrEmpty):
		return fmt.Sprintf("%s is empty: write the token into it, one line", path)
	case errors.Is(err, errNotRegular):
		return path + " " + err.Error()
	}
	return err.Error()
}

// File is the token of a token file as the file is now: Token stats the
// file (through symbolic links) and reads it again when its identity
// (device and inode), size or modification time differ from the
// last read's. A content that Read refuses, or a file missing or
// unreadable for a moment (a rewrite in place), leaves the last good token
// in use, with one warning per content. Safe for concurrent use: a token
// unchanged costs one stat and no lock.
type File struct {
	path string
	seen func(string)
	log  *slog.Logger

	mu     sync.Mutex // held while the file is read, and guards what follows
	tokens []string   // every token the file held, for the scrubber
	// warned and warnedAt are the last warning logged and the stamp of the
	// file it was of: said once for a content, or for a file missing.
	warned   string
	warnedAt stamp
	cur      atomic.Pointer[current]
	reads    atomic.Int64
}

// current is a File's token and what it knows of the file.
type current struct {
	token string
	// at is the file's stamp when it was last read (whatever it held);
	// zero to read it at the next Token.
	at    stamp
	gen   uint64
	scrub secret.Scrubber
}

// stamp tells one state of a file from another without reading it.
type stamp struct {
	ok       bool // the file was there
	regular  bool
	dev, ino uint64
	size     int64
	mtime    int64 // Unix nanoseconds
}

func stampOf(path string) stamp {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}
	}
	s := stamp{ok: true, regular: fi.Mode().IsRegular(), size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.dev, s.ino = uint64(st.Dev), st.Ino // Dev is an int32 on macOS
	}
	return s
}

// Options are a File's listeners.
type Options struct {
	// Seen is told every token the file holds, the first included, before
	// any request carries it: the scrubbers of logs and errors add it. It
	// is called with the File's lock held and must not call the File.
	Seen func(token string)
	// Log receives the warnings of a content refused; none when nil.
	Log *slog.Logger
}

// Watch returns the File of path, whose token was read as first (Read),
// or nil when path is no regular file after its symbolic links (a pipe, a
// terminal: read once, it holds nothing the next time).
func Watch(path, first string, o Options) *File {
	if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Seen == nil {
		o.Seen = func(string) {}
	}
	f := &File{path: path, seen: o.Seen, log: o.Log, tokens: []string{first}}
	o.Seen(first)
	// The stamp is left zero: the file may have changed since it was read.
	f.cur.Store(&current{token: first, scrub: secret.NewScrubber(first)})
	return f
}

// Path is the token file's path.
func (f *File) Path() string { return f.path }

// Token returns the token the file holds now, or the last good one.
func (f *File) Token() string {
	c := f.cur.Load()
	at := stampOf(f.path)
	if at == c.at && at.ok {
		return c.token
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.cur.Load(); c.at == at && at.ok {
		return c.token // another caller read it meanwhile
	}
	return f.read(at)
}

// Reread reads the file whatever its stamp says (a file rewritten in place
// within one tick of the file system's clock keeps its stamp) and returns
// the token it holds now, or the last good one: after the API refused the
// token, a caller that sent another than this one tries again with it.
func (f *File) Reread() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.read(stampOf(f.path))
}

// read reads the file, whose stamp before the read was at, and makes a
// new good token current. Called with f.mu held.
func (f *File) read(at stamp) string {
	c := f.cur.Load()
	f.reads.Add(1)
	var tok string
	err := errNotRegular
	if !at.ok || at.regular { // a pipe put there would hold every request for smallfile.PipeWait
		tok, err = Read(f.path)
	}
	if err != nil {
		var inv *InvalidError
		bad := errors.Is(err, ErrEmpty) || errors.As(err, &inv) || errors.Is(err, smallfile.ErrTooLarge) || err == errNotRegular
		next := *c
		if bad {
			// Read again only when the file changes; a file missing or
			// unreadable is tried again at every request until it is back.
			next.at = at
		} else {
			next.at = stamp{}
		}
		f.cur.Store(&next)
		if msg := "source.token_file: " + Problem(f.path, err) + ": the token read from it before is used until it changes"; msg != f.warned || next.at != f.warnedAt {
			f.warned, f.warnedAt = msg, next.at
			f.log.Warn(msg)
		}
		return c.token
	}
	f.warned, f.warnedAt = "", stamp{}
	next := &current{token: tok, at: at, gen: c.gen, scrub: c.scrub}
	if tok != c.token {
		if !slices.Contains(f.tokens, tok) {
			f.tokens = append(f.tokens, tok)
			f.seen(tok) // before any request carries it
			next.scrub = secret.NewScrubber(f.tokens...)
		}
		next.gen++
		f.log.Info("source.token_file: a new token read from " + f.path + ": the requests that follow carry it")
	}
	f.cur.Store(next)
	return tok
}

// Generation counts the changes of the token: 0 for the first, one more at
// each new token. A caller that checked something of the token (its
// owner) checks again when it moved.
func (f *File) Generation() uint64 {
	f.Token()
	return f.cur.Load().gen
}

// Scrubber removes from text every token the file has held.
func (f *File) Scrubber() secret.Scrubber { return f.cur.Load().scrub }
