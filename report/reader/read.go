// Package reader reads back what the exporter's file and S3 sinks wrote, for
// the report, through their sinks.Store (it never writes to it): it finds
// the data of a period through the per-day manifests
// (dt=YYYY-MM-DD/_manifest.json), says which days are missing, checks every
// file it reads against its manifest entry (size, sha256, record count) and
// streams only the columns the report needs, from Parquet (column by column
// with arrow-go's pqarrow) or NDJSON (line by line, gzip or zstd).
package reader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pachca-export/pachca-export/sinks"
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
	mem    memory.Allocator
	tmpDir string
}

// NewReader returns a Reader that copies Parquet objects of a remote store
// (S3) to temporary files in tmpDir ("" for the system's) to read them, and
// removes each when it is read; local files are read in place.
func NewReader(tmpDir string) *Reader {
	return &Reader{mem: parquetfmt.NewPoolAllocator(memory.DefaultAllocator), tmpDir: tmpDir}
}

// Read streams part p of st: it calls fn with batches of the rows of the
// file whose created_at lies in [p.From, p.To), in file order. It checks the
// file against its manifest entry (bytes, sha256, records); a mismatch or a
// file that does not decode is a *DamagedError naming the file. An error
// from fn is returned as is.
func (rd *Reader) Read(ctx context.Context, st sinks.Store, p Part, fn func([]Row) error) error {
	name := p.Name()
	v := newVerifier(st.Location(name), p)
	var read func(ctx context.Context, obj io.Reader, p Part, v *verifier, fn func([]Row) error) error
	switch {
	case strings.HasSuffix(name, ".parquet"):
		read = rd.readParquet
	case strings.HasSuffix(name, ".ndjson"), strings.HasSuffix(name, ".ndjson.gz"), strings.HasSuffix(name, ".ndjson.zst"):
		read = readNDJSON
	default:
		return inputErrorf("%s: unknown file type (.parquet, .ndjson, .ndjson.gz, .ndjson.zst)", v.file)
	}
	obj, err := st.Open(ctx, name)
	if errors.Is(err, fs.ErrNotExist) {
		return v.damaged(fmt.Errorf("listed in %s but missing", sinks.ManifestName))
	}
	if err != nil {
		return fmt.Errorf("read: %w", err) // the store's error names the object
	}
	defer obj.Close()
	return read(ctx, obj, p, v, fn)
}

// verifier checks a file's bytes and records against its manifest entry;
// every byte of the file is written to it.
type verifier struct {
	*sinks.HashWriter
	file string
	want Part
}

func newVerifier(file string, p Part) *verifier {
	return &verifier{HashWriter: sinks.NewHashWriter(io.Discard), file: file, want: p}
}

// checkBytes compares what passed through the verifier with the manifest.
func (v *verifier) checkBytes() error {
	f := v.want.File
	if v.N != f.Bytes {
		return v.damaged(fmt.Errorf("%d bytes, the manifest says %d", v.N, f.Bytes))
	}
	if got := v.Sum(); f.SHA256 != "" && got != f.SHA256 {
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
