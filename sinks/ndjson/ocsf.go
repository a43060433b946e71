package ndjson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/transform"
	"github.com/pachca-export/pachca-export/transform/ocsf"
)

// OCSFFormat returns the NDJSON format of OCSF 1.3 events (ocsf.Map), one
// event per line, with the compressions and extensions of Format.
func OCSFFormat(compression string) (sinks.Format, error) {
	f, err := Format(compression)
	if err != nil {
		return f, err
	}
	f.Schema = ocsf.SchemaVersion
	f.New = func(w io.Writer, _ sinks.Partition) (sinks.Encoder, error) {
		return NewOCSFEncoder(w, compression)
	}
	return f, nil
}

// OCSFEncoder writes each record as its OCSF event, one JSON object per
// line in the order given, through the compressor of Encoder. Lines are
// encoding/json's output without HTML escaping: invalid UTF-8 becomes
// U+FFFD; unmapped.details and json_t attributes are embedded as JSON;
// U+0085, U+2028 and U+2029 are escaped everywhere, as in schema v1 lines
// (encoding/json lets them stand in embedded JSON, U+0085 anywhere).
type OCSFEncoder struct {
	enc  *Encoder
	line bytes.Buffer
	js   *json.Encoder
	m    ocsf.Mapper // the event of the record being written
}

// NewOCSFEncoder returns an encoder writing to w (compression none, gzip,
// zstd; empty means none). It never closes w.
func NewOCSFEncoder(w io.Writer, compression string) (*OCSFEncoder, error) {
	enc, err := NewEncoder(w, compression)
	if err != nil {
		return nil, err
	}
	e := &OCSFEncoder{enc: enc}
	e.js = json.NewEncoder(&e.line)
	e.js.SetEscapeHTML(false)
	return e, nil
}

// Write appends one line per record.
func (e *OCSFEncoder) Write(recs []transform.Record) error {
	for i := range recs {
		ev := e.m.Map(&recs[i])
		e.line.Reset()
		if err := e.js.Encode(ev); err != nil { // ends the line with '\n'
			return fmt.Errorf("ndjson: ocsf event %s: %w", recs[i].ID, err)
		}
		if _, err := e.enc.bw.Write(EscapeLineBreaks(e.line.Bytes())); err != nil {
			return fmt.Errorf("ndjson: write: %w", err)
		}
	}
	return nil
}

// Close flushes buffered lines and the compressor's trailer; it does not
// close w.
func (e *OCSFEncoder) Close() error { return e.enc.Close() }

var _ sinks.Encoder = (*OCSFEncoder)(nil)
