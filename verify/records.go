package verify

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/ndjson"
	"github.com/pachca-export/pachca-export/sinks/parquetfmt"
)

// contents is what reading a data file back found.
type contents struct {
	SHA256  string
	Bytes   int64
	Records int64
}

// record is called with each record's id and schema version: id and
// schema_version of a schema v1 record; metadata.uid and, from
// metadata.version, the ocsf.SchemaVersion of its version, of an OCSF event.
type record func(id, schema string)

// ocsfSchema is the schema version of OCSF events of version v: "ocsf." and
// the version, as ocsf.SchemaVersion is formed.
func ocsfSchema(v string) string { return "ocsf." + v }

// read reads the data file r (named name, which says its format) to its
// end, hashing every byte, and calls fn for each record. A file that
// cannot be decoded is still hashed (c.SHA256) unless it cannot be read. A Parquet file
// needs random access: it is copied to a temporary file in tmpDir unless r
// is a local file already (sinks.LocalFile).
func read(ctx context.Context, name string, r io.Reader, tmpDir string, fn record) (contents, error) {
	h := sinks.NewHashWriter(io.Discard)
	var c contents
	if strings.HasSuffix(name, ".parquet") {
		f, done, err := sinks.LocalFile(r, tmpDir, h)
		if err != nil {
			return c, err
		}
		defer done()
		c.SHA256, c.Bytes = h.Sum(), h.N
		c.Records, err = parquetRecords(ctx, f, fn)
		return c, err
	}
	tee := io.TeeReader(r, h)
	var err error
	c.Records, err = ndjsonRecords(name, tee, fn)
	// The rest (a compressed stream's trailing bytes, or what follows a
	// line that cannot be decoded): a damaged file's sha256 says more
	// than the decoder's error.
	if _, cerr := io.Copy(io.Discard, tee); cerr != nil {
		return c, errors.Join(err, cerr)
	}
	c.SHA256, c.Bytes = h.Sum(), h.N
	return c, err
}

// ndjsonRecords decodes the id and schema_version of every line.
func ndjsonRecords(name string, r io.Reader, fn record) (int64, error) {
	lines, err := ndjson.Decompress(name, r)
	if err != nil {
		return 0, err
	}
	defer lines.Close()
	sc := bufio.NewScanner(lines)
	sc.Buffer(make([]byte, 0, 64<<10), ndjson.MaxLine)
	var n int64
	for sc.Scan() {
		var rec struct {
			ID            string `json:"id"`
			SchemaVersion string `json:"schema_version"`
			Metadata      *struct {
				UID     string `json:"uid"`
				Version string `json:"version"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return n, fmt.Errorf("line %d: %w", n+1, err)
		}
		n++
		if md := rec.Metadata; md != nil && rec.SchemaVersion == "" {
			fn(md.UID, ocsfSchema(md.Version))
			continue
		}
		fn(rec.ID, rec.SchemaVersion)
	}
	return n, sc.Err()
}

// parquetRecords reads the id and schema_version columns, or an OCSF
// file's metadata.uid and metadata.version. A panic of arrow-go on a
// damaged file is an error (was: verify's panic); one of fn goes on.
func parquetRecords(ctx context.Context, f *os.File, fn record) (n int64, err error) {
	inFn := false
	defer parquetfmt.RecoverRead(&err, &inFn, nil)
	rdr, err := file.NewParquetReader(f)
	if err != nil {
		return 0, err
	}
	defer rdr.Close()
	parquetfmt.IgnoreStoredSchema(rdr)
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{BatchSize: 8192}, memory.DefaultAllocator)
	if err != nil {
		return 0, err
	}
	cols := rdr.MetaData().Schema
	idCol, svCol := cols.ColumnIndexByName("id"), cols.ColumnIndexByName("schema_version")
	ocsfFile := idCol < 0 && svCol < 0
	if ocsfFile {
		idCol, svCol = cols.ColumnIndexByName("metadata.uid"), cols.ColumnIndexByName("metadata.version")
	}
	if idCol < 0 || svCol < 0 {
		return 0, errors.New("no id and schema_version columns, nor metadata.uid and metadata.version")
	}
	rr, err := fr.GetRecordReader(ctx, []int{idCol, svCol}, nil)
	if err != nil {
		return 0, err
	}
	defer rr.Release()
	for rr.Next() {
		rec := rr.RecordBatch()
		var ids, svs arrow.Array
		if ocsfFile {
			md, ok := rec.Column(0).(*array.Struct)
			st, isStruct := rec.Schema().Field(0).Type.(*arrow.StructType)
			if !ok || !isStruct {
				return n, errors.New("metadata is not a struct column")
			}
			uid, _ := st.FieldIdx("uid")
			version, _ := st.FieldIdx("version")
			ids, svs = md.Field(uid), md.Field(version)
		} else {
			ids, svs = rec.Column(0), rec.Column(1)
		}
		for i := range int(rec.NumRows()) {
			sv := text(svs, i)
			if ocsfFile {
				sv = ocsfSchema(sv)
			}
			id := text(ids, i)
			inFn = true
			fn(id, sv)
			inFn = false
			n++
		}
	}
	if err := rr.Err(); err != nil && !errors.Is(err, io.EOF) {
		return n, err
	}
	return n, nil
}

// text is the string at row i of a string column, dictionary-encoded or
// not, as a copy that outlives the batch.
func text(a arrow.Array, i int) string {
	switch a := a.(type) {
	case *array.String:
		return strings.Clone(a.Value(i)) // Value points into the batch's buffer
	case *array.Dictionary:
		return text(a.Dictionary(), a.GetValueIndex(i))
	}
	return ""
}
