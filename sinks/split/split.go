// Package split fans one partition's records out into one encoder per key,
// for layouts that want one file per key.
//
// Files is what the file and S3 sinks write a partition through: one file
// in the day directory, or, in a layout with a sinks.Split (the Amazon
// Security Lake layout, sinkset), one file per key opened on the
// key's first record. With `schema: ocsf` and `layout: security_lake` the
// key is the custom source of the record's OCSF class (ocsf.ClassOf), and
// each file is a one-class Parquet file (parquetfmt.OCSFClassFormat) at
//
//	<prefix or dir>ext/<source>[/<version>]/region=<region>/accountId=<account>/eventDay=YYYYMMDD/<Partition.BaseName()>.parquet
//
// The sink publishes every file of the partition (rename, upload), then
// writes the day's manifest, which lists them all, once, outside ext/
// (under security_lake.manifest_prefix, default pachca-export/): the day
// counts as delivered only after every class file is published and the
// manifest written; Abort discards every file; a rerun of the range
// replaces them (deterministic names), and removes the file of a class the
// rerun no longer has. Up to one encoder per class is open at once, with
// smaller row groups than a single file's (parquetfmt.ClassFileRowGroupRows):
// measured with 300,000 simulated events, the eight class encoders peak at
// 36 MiB of Arrow and Parquet buffers with 16Ki-row groups and 1Ki-row
// batches (56 MiB with the defaults), against 20 MiB for one file of every
// class.
package split

import (
	"errors"
	"fmt"

	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/transform"
)

// Encoder routes each record to the encoder of its key, opened on the key's
// first record. Within a key, records keep the order they were written in.
// It is a sinks.Encoder; like every encoder it is not safe for concurrent
// use. After an error every later Write returns it; Close still closes
// every inner encoder.
type Encoder[K comparable] struct {
	key    func(*transform.Record) K
	open   func(K) (sinks.Encoder, error)
	encs   map[K]sinks.Encoder
	keys   []K
	err    error
	closed bool
}

// New returns an Encoder that keys records with key and opens the encoder
// of a new key with open. open's error fails the Write that needed it.
func New[K comparable](key func(*transform.Record) K, open func(K) (sinks.Encoder, error)) *Encoder[K] {
	return &Encoder[K]{key: key, open: open, encs: map[K]sinks.Encoder{}}
}

// Write hands each run of consecutive records with the same key to that
// key's encoder in one call. recs may be reused after return.
func (e *Encoder[K]) Write(recs []transform.Record) error {
	if e.err != nil {
		return e.err
	}
	if e.closed {
		return errors.New("split: write after close")
	}
	for len(recs) > 0 {
		k := e.key(&recs[0])
		n := 1
		for n < len(recs) && e.key(&recs[n]) == k {
			n++
		}
		enc, ok := e.encs[k]
		if !ok {
			var err error
			if enc, err = e.open(k); err != nil {
				e.err = fmt.Errorf("split: open %v: %w", k, err)
				return e.err
			}
			e.encs[k] = enc
			e.keys = append(e.keys, k)
		}
		if err := enc.Write(recs[:n]); err != nil {
			e.err = fmt.Errorf("split: %v: %w", k, err)
			return e.err
		}
		recs = recs[n:]
	}
	return nil
}

// Keys returns the keys seen so far, in the order of their first record.
func (e *Encoder[K]) Keys() []K { return append([]K(nil), e.keys...) }

// Close closes every inner encoder in the order Keys lists them, all of
// them even when one fails, and returns the first Write error or the
// Close errors joined. Every inner output is complete only if Close
// returns nil. Safe to call twice.
func (e *Encoder[K]) Close() error {
	if e.closed {
		return e.err
	}
	e.closed = true
	errs := []error{e.err}
	for _, k := range e.keys {
		if err := e.encs[k].Close(); err != nil {
			errs = append(errs, fmt.Errorf("split: close %v: %w", k, err))
		}
	}
	e.err = errors.Join(errs...)
	return e.err
}

var _ sinks.Encoder = (*Encoder[int32])(nil)
