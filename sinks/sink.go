// Package sinks defines the one contract every destination implements, and the
// pieces the file-like destinations share: partitions, file names, encoders
// and the per-day manifest.
//
// The lifecycle, for every sink: New validates its settings without I/O
// (Check probes the destination); Open starts one partition (one UTC day of
// the run's range); Write appends batches; Commit makes the partition durable
// and reports the error; Abort discards an uncommitted partition. Records count as delivered only after every sink has
// committed the partition; only then does the run record the day as exported.
package sinks

import (
	"context"
	"io"
	"strings"
	"time"

	"github.com/pachca-export/pachca-export/transform"
)

// Sink is one configured destination. Open is called for one partition at a
// time; Close flushes what the sink buffers, releases its connections and
// reports whatever failed doing so, within ctx's deadline; it is safe to call
// twice (the second call returns nil). A sink lives as long as the session
// that built it: many partitions, of many plans.
type Sink interface {
	// Name identifies the sink in logs and the summary, e.g. "ndjson out/ndjson".
	Name() string
	// Open starts delivering one partition. Nothing becomes visible to readers
	// before Commit.
	Open(ctx context.Context, p Partition) (Writer, error)
	Close(ctx context.Context) error
}

// Writer delivers the records of one partition. It is used by one goroutine.
type Writer interface {
	// Write appends a batch. The batch may be reused by the caller after return.
	Write(ctx context.Context, recs []transform.Record) error
	// Commit makes everything written durable and visible (a file renamed into
	// place, an object uploaded, messages acknowledged). After an error nothing
	// of the partition may be relied on; the run retries the day later.
	Commit(ctx context.Context) (Result, error)
	// Abort discards an uncommitted partition: file-like sinks leave no
	// visible output; streams (Kafka, stdout) cannot take back what was sent,
	// which is why they are at-least-once. A no-op after Commit; safe twice.
	// Abort may send requests (aborting a multipart upload) bounded by ctx;
	// its error says what could not be cleaned up.
	Abort(ctx context.Context) error
}

// Result reports what Commit delivered, for the run summary and metrics.
type Result struct {
	Records int64
	Bytes   int64
	Files   []string // names or keys of the files or objects written
	// Overlaps names the day's files of another partial range that the
	// partition's range overlaps without containing: kept, they hold some
	// of its events again, so the day holds them twice (and verify fails
	// it) until the whole day, or a range containing both, is written.
	Overlaps []string
}

// Partition is one UTC day of a run's range: [From, To) lies within
// [Day, Day+24h). RunID is copied into file metadata and manifests.
type Partition struct {
	Day   time.Time
	From  time.Time
	To    time.Time
	RunID string
	// Part marks what a follow cycle delivers of a day: its file is named by
	// its range even when that spans the whole day, and it never counts as
	// the day's export.
	Part bool
	// Compact marks a whole day that replaces every other file of its day
	// (a followed day, sealed): file-like sinks leave only its file, and its
	// manifest entry, in the day's directory.
	Compact bool
}

// NewPartition returns the partition of day (any time within it) clipped to
// [from, to).
func NewPartition(day, from, to time.Time, runID string) Partition {
	d := day.UTC().Truncate(24 * time.Hour)
	p := Partition{Day: d, From: d, To: d.Add(24 * time.Hour), RunID: runID}
	if from.After(p.From) {
		p.From = from.UTC()
	}
	if to.Before(p.To) {
		p.To = to.UTC()
	}
	return p
}

// FullDay reports whether the partition is its whole day's export.
func (p Partition) FullDay() bool {
	return !p.Part && p.From.Equal(p.Day) && p.To.Equal(p.Day.Add(24*time.Hour))
}

// Date is the day as YYYY-MM-DD.
func (p Partition) Date() string { return p.Day.Format(time.DateOnly) }

// Dir is the Hive-style partition directory, "dt=YYYY-MM-DD".
func (p Partition) Dir() string { return "dt=" + p.Date() }

// FilePrefix starts the name of every data file (BaseName).
const FilePrefix = "pachca-audit-"

// BaseName is the deterministic file name without extension: the same day and
// range always give the same name, so a rerun replaces its files.
func (p Partition) BaseName() string {
	if p.FullDay() {
		return FilePrefix + p.Date()
	}
	return FilePrefix + p.From.Format(rangeStamp) + "-" + p.To.Format(rangeStamp)
}

// rangeStamp writes each bound of a partial range in its files' names.
const rangeStamp = "20060102T150405.000Z"

// nameRange reads the range of a partial range's file from its name (a
// BaseName and an extension); ok is false for any other name.
func nameRange(base string) (from, to time.Time, ok bool) {
	s, found := strings.CutPrefix(base, FilePrefix)
	n := len(rangeStamp)
	if !found || len(s) < 2*n+1 || s[n] != '-' {
		return from, to, false
	}
	from, err := time.Parse(rangeStamp, s[:n])
	if err != nil {
		return from, to, false
	}
	to, err = time.Parse(rangeStamp, s[n+1:2*n+1])
	return from, to, err == nil
}

// Encoder writes records in one file format to an io.Writer. Close writes
// the format's trailer (gzip footer, Parquet footer) but does not close the
// underlying writer. Neither method is safe for concurrent use.
type Encoder interface {
	Write(recs []transform.Record) error
	Close() error
}

// Format is a file format: its name in the configuration, the file extension
// (with the compression suffix), the record shape its encoder writes and the
// constructor of that encoder.
type Format struct {
	Name string
	Ext  string // ".ndjson.gz", ".parquet", ...
	// Schema is the schema version of the records it writes
	// (transform.SchemaVersion, ocsf.SchemaVersion): what manifests, object
	// metadata and the location's identity record. Empty means
	// transform.SchemaVersion.
	Schema string
	New    func(w io.Writer, p Partition) (Encoder, error)
}

// SchemaVersion is f.Schema, or transform.SchemaVersion when it is empty.
func (f Format) SchemaVersion() string {
	if f.Schema == "" {
		return transform.SchemaVersion
	}
	return f.Schema
}

// Streamer is implemented by sinks that publish each record as it is
// written and cannot take it back (Kafka, stdout): at least once, where
// file-like sinks replace a partition whole.
type Streamer interface {
	Streams()
}

// Unexported counts the events of a partition's range that went to no file:
// dead letters (they could not be parsed, or carried another event's id)
// and the events the filters dropped (drop_event_keys, drop_own_reads).
// A follow cycle's part counts those it found first, as its files hold the
// events no earlier cycle delivered.
type Unexported struct {
	DeadLetters int64
	Dropped     int64
}

// UnexportedRecorder is implemented by the writers of sinks that keep
// manifests: told before Commit what of the partition's range went to no
// file, the manifest says so beside the files' records, so that a day's
// manifest accounts for every event the API gave (ManifestFile.DeadLetters).
type UnexportedRecorder interface {
	SetUnexported(Unexported)
}

// Checker is implemented by sinks that can tell, without delivering records,
// whether they are reachable and writable (`pachca-export check`).
type Checker interface {
	Check(ctx context.Context) error
}
