package parquetfmt

import (
	"fmt"
	"strings"

	pqfile "github.com/apache/arrow-go/v18/parquet/file"
)

// PanicError is the error of a panic recovered from arrow-go while it read
// a Parquet file (r, the value recover returned): v18.8.0 panics on some
// damaged files rather than return an error (an invalid logical type in
// the footer, a page shorter than its header says). A reader recovers
// around its calls into arrow-go, never around its own callbacks, and
// reports the file damaged with this error, on one line.
func PanicError(r any) error {
	msg, _, _ := strings.Cut(fmt.Sprint(r), "\n")
	return fmt.Errorf("not a readable Parquet file (arrow-go: %s)", msg)
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
