package verify

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	"github.com/klauspost/compress/zstd"
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
// end, hashing every byte, and calls fn for each record. A Parquet file
// needs random access: it is copied to a temporary file in tmpDir unless r
// is a local file already.
func read(ctx context.Context, name string, r io.Reader, tmpDir string, fn record) (contents, error) {
	h := sha256.New()
	var c contents
	if strings.HasSuffix(name, ".parquet") {
		f, ok := r.(*os.File)
		if !ok {
			tmp, err := os.CreateTemp(tmpDir, ".pachca-verify-*.parquet")
			if err != nil {
				return c, err
			}
			defer os.Remove(tmp.Name())
			defer tmp.Close()
			if _, err := io.Copy(tmp, r); err != nil {
				return c, err
			}
			f = tmp
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return c, err
		}
		n, err := io.Copy(h, f)
		if err != nil {
			return c, err
		}
		c.SHA256, c.Bytes = hex.EncodeToString(h.Sum(nil)), n
		c.Records, err = parquetRecords(ctx, f, fn)
		return c, err
	}
	counted := &countingReader{r: io.TeeReader(r, h)}
	var err error
	c.Records, err = ndjsonRecords(name, counted, fn)
	if err != nil {
		return c, err
	}
	if _, err := io.Copy(io.Discard, counted); err != nil { // a compressed stream's trailing bytes
		return c, err
	}
	c.SHA256, c.Bytes = hex.EncodeToString(h.Sum(nil)), counted.n
	return c, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// ndjsonRecords decodes the id and schema_version of every line.
func ndjsonRecords(name string, r io.Reader, fn record) (int64, error) {
	switch {
	case strings.HasSuffix(name, ".gz"):
		zr, err := gzip.NewReader(r)
		if err != nil {
			return 0, err
		}
		r = zr
	case strings.HasSuffix(name, ".zst"):
		zr, err := zstd.NewReader(r)
		if err != nil {
			return 0, err
		}
		defer zr.Close()
		r = zr
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
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
// file's metadata.uid and metadata.version.
func parquetRecords(ctx context.Context, f *os.File, fn record) (int64, error) {
	rdr, err := file.NewParquetReader(f)
	if err != nil {
		return 0, err
	}
	defer rdr.Close()
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
	var n int64
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
			fn(text(ids, i), sv)
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
