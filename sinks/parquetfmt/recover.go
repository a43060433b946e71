package parquetfmt

import (
	"fmt"
	"strings"

	pqfile "github.com/apache/arrow-go/v18/parquet/file"
)

// RecoverRead, deferred by a reader of a Parquet file, turns a panic of
// arrow-go into *err: v18.8.0 panics on some damaged files rather than
// return an error (an invalid logical type in the footer, a page shorter
// than its header says). The error, on one line, goes through wrap (nil:
// as it is), which says whose file is damaged. A panic raised while
// *inCallback, in the reader's own callback, goes on.
func RecoverRead(err *error, inCallback *bool, wrap func(error) error) {
	r := recover()
	if r == nil {
		return
	}
	if *inCallback {
		panic(r)
	}
	msg, _, _ := strings.Cut(fmt.Sprint(r), "\n")
	*err = fmt.Errorf("not a readable Parquet file (arrow-go: %s)", msg)
	if wrap != nil {
		*err = wrap(*err)
	}
}

// IgnoreStoredSchema makes pqarrow.NewFileReader on r take the Arrow types
// from the Parquet schema alone, not from the Arrow schema a writer stored
// in the footer (ARROW:schema, pqarrow.WithStoreSchema): arrow-go decodes
// that flatbuffer unchecked, and a damaged one asks for memory without
// bound, a fatal out of memory no recover catches. The readers of the
// files (report, verify) need nothing it restores: the Parquet schema
// gives the same string, timestamp and struct columns. r's footer is
// changed in memory only.
func IgnoreStoredSchema(r *pqfile.Reader) {
	for _, kv := range r.MetaData().KeyValueMetadata() {
		if kv.Key == storedSchemaKey {
			kv.Key = storedSchemaKey + " (ignored)"
		}
	}
}

// storedSchemaKey is the footer key of the Arrow schema (pqarrow's
// arrowSchemaKey).
const storedSchemaKey = "ARROW:schema"
