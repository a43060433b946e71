package split

import (
	"fmt"
	"io"

	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/transform"
)

// Output is one file a partition is written to.
type Output struct {
	// Path is the file's path from the sink's root, e.g.
	// "dt=2026-11-01/pachca-audit-2026-11-01.parquet".
	Path string
	// Records counts the records written to it.
	Records int64
	// Hash counts and hashes its bytes.
	Hash *sinks.HashWriter
}

// Create starts the file at path (from the sink's root) under a temporary
// name and returns where its bytes go; the sink keeps what it needs to
// publish the file at Commit or discard it at Abort.
type Create func(path string) (io.Writer, error)

// Files is the encoder of one partition of a file-like sink, over the
// files the sink's layout gives it: one file, p.BaseName() and the format's
// extension, in the day directory, created at once (a day without events
// has its empty file); or with the layout's Split one file of that name
// per key, in the key's directory and format, created on the key's first
// record (a key without records has no file). It is a sinks.Encoder, used
// by one goroutine.
type Files struct {
	enc    sinks.Encoder
	outs   []*Output
	closed bool
	err    error // of the first Close
}

// NewFiles starts the files of partition p in layout l and format f (the
// format of the day file; a split layout has its own per key). create
// fails the call, or the Write that needed the file.
func NewFiles(l sinks.Layout, f sinks.Format, p sinks.Partition, create Create) (*Files, error) {
	fs := &Files{}
	if l.Split == nil {
		enc, err := fs.open(p.Dir()+"/"+p.BaseName()+f.Ext, f, p, create)
		if err != nil {
			return fs, err
		}
		fs.enc = enc
		return fs, nil
	}
	sp := l.Split
	fs.enc = New(sp.Key, func(key string) (sinks.Encoder, error) {
		kf, ok := sp.Formats[key]
		if !ok {
			return nil, fmt.Errorf("no format for %q", key)
		}
		return fs.open(sp.Dir(key, p.Day)+"/"+p.BaseName()+kf.Ext, kf, p, create)
	})
	return fs, nil
}

// open creates one file and its encoder, counting the records it takes.
func (fs *Files) open(path string, f sinks.Format, p sinks.Partition, create Create) (sinks.Encoder, error) {
	w, err := create(path)
	if err != nil {
		return nil, err
	}
	o := &Output{Path: path, Hash: sinks.NewHashWriter(w)}
	fs.outs = append(fs.outs, o)
	enc, err := f.New(o.Hash, p)
	if err != nil {
		return nil, err
	}
	return counted{enc: enc, n: &o.Records}, nil
}

// Write encodes recs into their files. After an error the partition is
// unusable: the caller aborts it.
func (fs *Files) Write(recs []transform.Record) error { return fs.enc.Write(recs) }

// Close finishes every file's encoding (trailers, footers); the files are
// complete only if it returns nil. It does not close what Create returned.
// Safe to call twice.
func (fs *Files) Close() error {
	if fs.closed || fs.enc == nil {
		return fs.err
	}
	fs.closed = true
	fs.err = fs.enc.Close()
	return fs.err
}

// Outputs returns the files created so far, in the order they were created.
func (fs *Files) Outputs() []*Output { return fs.outs }

var _ sinks.Encoder = (*Files)(nil)

// counted counts the records its encoder accepted.
type counted struct {
	enc sinks.Encoder
	n   *int64
}

func (c counted) Write(recs []transform.Record) error {
	if err := c.enc.Write(recs); err != nil {
		return err
	}
	*c.n += int64(len(recs))
	return nil
}

func (c counted) Close() error { return c.enc.Close() }
