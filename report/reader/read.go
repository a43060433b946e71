package reader

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pachca-export/pachca-export/sinks/parquetfmt"
	"github.com/pachca-export/pachca-export/transform"
)

// Row is the part of a record the report reads (the columns of
// transform.Columns() of the same names). Its strings may share memory with
// the reader's buffers: they are valid during the callback only, and what is
// kept must be copied (strings.Clone).
type Row struct {
	ID            string
	CreatedAt     int64 // Unix milliseconds, UTC
	EventKey      string
	EventCategory string
	ActorID       string
	ActorType     string
	EntityID      string
	EntityType    string
	IPAddress     transform.NullString
	DetailsJSON   string
}

// Reader reads parts, reusing its buffers from one file to the next. It is
// not safe for concurrent use.
type Reader struct {
	mem memory.Allocator
}

// NewReader returns a Reader.
func NewReader() *Reader {
	return &Reader{mem: parquetfmt.NewPoolAllocator(memory.DefaultAllocator)}
}

// Read streams part p of st: it calls fn with batches of the rows of the
// file whose created_at lies in [p.From, p.To), in file order. It checks the
// file against its manifest entry (bytes, sha256, records); a mismatch or a
// file that does not decode is a *DamagedError naming the file. An error
// from fn is returned as is.
func (rd *Reader) Read(ctx context.Context, st Store, p Part, fn func([]Row) error) error {
	name := p.Name()
	v := newVerifier(where(st, name), p)
	var err error
	switch {
	case strings.HasSuffix(name, ".parquet"):
		err = readParquet(ctx, st, p, v, rd.mem, fn)
	case strings.HasSuffix(name, ".ndjson"), strings.HasSuffix(name, ".ndjson.gz"), strings.HasSuffix(name, ".ndjson.zst"):
		err = readNDJSON(ctx, st, p, v, fn)
	default:
		return inputErrorf("%s: unknown file type (.parquet, .ndjson, .ndjson.gz, .ndjson.zst)", where(st, name))
	}
	if isNotExist(err) {
		return &DamagedError{File: v.file, Err: fmt.Errorf("listed in %s but missing", "_manifest.json")}
	}
	return err
}

// verifier checks a file's bytes and records against its manifest entry.
type verifier struct {
	file string
	want Part
	h    hash.Hash
	n    int64
}

func newVerifier(file string, p Part) *verifier {
	return &verifier{file: file, want: p, h: sha256.New()}
}

func (v *verifier) Write(b []byte) (int, error) {
	v.h.Write(b)
	v.n += int64(len(b))
	return len(b), nil
}

// checkBytes compares what passed through the verifier with the manifest.
func (v *verifier) checkBytes() error {
	f := v.want.File
	if v.n != f.Bytes {
		return v.damaged(fmt.Errorf("%d bytes, the manifest says %d", v.n, f.Bytes))
	}
	if got := hex.EncodeToString(v.h.Sum(nil)); f.SHA256 != "" && got != f.SHA256 {
		return v.damaged(fmt.Errorf("sha256 %s, the manifest says %s", got, f.SHA256))
	}
	return nil
}

// checkRecords compares the rows the file holds with the manifest.
func (v *verifier) checkRecords(n int64) error {
	if n != v.want.File.Records {
		return v.damaged(fmt.Errorf("%d records, the manifest says %d", n, v.want.File.Records))
	}
	return nil
}

func (v *verifier) damaged(err error) error { return &DamagedError{File: v.file, Err: err} }

// in reports whether ms lies in the part's span.
func (p Part) in(ms int64) bool { return ms >= p.From && ms < p.To }

// drain reads r to its end, so that the verifier sees every byte.
func drain(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}
