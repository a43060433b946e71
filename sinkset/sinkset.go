// Package sinkset is the one place that turns the sinks of a configuration
// into sinks.Sink values, and handles them as a set: check every one, close
// every one and report every error. The run loop, `check` and `verify` all
// build their sinks here.
package sinkset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/filesink"
	"github.com/pachca-export/pachca-export/sinks/kafkasink"
	"github.com/pachca-export/pachca-export/sinks/ndjson"
	"github.com/pachca-export/pachca-export/sinks/parquetfmt"
	"github.com/pachca-export/pachca-export/sinks/s3sink"
	"github.com/pachca-export/pachca-export/sinks/shape"
	"github.com/pachca-export/pachca-export/sinks/stdoutsink"
	"github.com/pachca-export/pachca-export/transform"
	"github.com/pachca-export/pachca-export/transform/ocsf"
)

// Format returns the file format called name ("ndjson" or "parquet") for
// records of schema (pachca.audit.v1, or empty, for schema v1; ocsf for
// OCSF 1.3 events): the one place a sink's encoder is chosen.
func Format(name, compression, schema string) (sinks.Format, error) {
	var (
		f   sinks.Format
		err error
	)
	switch {
	case name == "ndjson" && !isOCSF(schema):
		f, err = ndjson.Format(compression)
	case name == "ndjson":
		f, err = ndjson.OCSFFormat(compression)
	case name == "parquet" && !isOCSF(schema):
		f, err = parquetfmt.Format(compression)
	case name == "parquet":
		f, err = parquetfmt.OCSFFormat(compression)
	default:
		return sinks.Format{}, fmt.Errorf("unknown format %q (ndjson, parquet)", name)
	}
	if err == nil && f.SchemaVersion() != schemaVersion(schema) {
		err = fmt.Errorf("format %s of schema %s writes %s", name, schema, f.SchemaVersion())
	}
	return f, err
}

func isOCSF(schema string) bool { return schema == shape.SchemaOCSF }

// schemaVersion is the schema version records of schema carry.
func schemaVersion(schema string) string {
	if isOCSF(schema) {
		return ocsf.SchemaVersion
	}
	return transform.SchemaVersion
}

// Layout returns the layout k selects for files in compression (Parquet's)
// of a sink whose S3 region is region ("" for a file sink): the daily one,
// or Security Lake's, one object per OCSF class and day under the class's
// custom source, the manifests under its manifest_prefix.
func Layout(k shape.Keys, compression, region string) (sinks.Layout, error) {
	if !k.SecurityLakeLayout() {
		return sinks.Layout{}, nil
	}
	sl := k.SecurityLake
	if sl == nil {
		return sinks.Layout{}, fmt.Errorf("layout %s without security_lake", k.Layout)
	}
	sources := sl.SourceOf()
	split := &sinks.Split{
		Key:     func(r *transform.Record) string { return sources[ocsf.ClassOf(r.EventKey)] },
		Dir:     func(source string, day time.Time) string { return sl.Dir(source, day, region) },
		Formats: map[string]sinks.Format{},
	}
	for _, c := range ocsf.Classes() {
		f, err := parquetfmt.OCSFClassFormat(compression, []int32{c.UID},
			parquetfmt.WithRowGroupRows(parquetfmt.ClassFileRowGroupRows), parquetfmt.WithBatchRows(parquetfmt.ClassFileBatchRows))
		if err != nil {
			return sinks.Layout{}, err
		}
		split.Keys = append(split.Keys, sources[c.UID])
		split.Formats[sources[c.UID]] = f
	}
	return sinks.Layout{Name: shape.LayoutSecurityLake, Meta: sl.Meta(), Split: split}, nil
}

// Set is the configured sinks, in the configuration's order.
type Set struct {
	Sinks []sinks.Sink
}

// Build constructs the sinks of cfg, in order; stdout is where a stdout sink
// writes. Construction does no network I/O: unreachable destinations show in
// Check or at the first write. On error the sinks built so far are closed.
func Build(ctx context.Context, cfg []config.Sink, stdout io.Writer) (*Set, error) {
	set := &Set{}
	for i, sc := range cfg {
		s, err := build(ctx, sc, stdout)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("sinks[%d]: %w", i, err), set.Close(ctx))
		}
		set.Sinks = append(set.Sinks, s)
	}
	return set, nil
}

// BuildOne constructs the sink sc alone, as Build does each of a list: for
// a command that reads the output of one sink (report), which must not
// depend on the others (a Kafka sink's certificates, say).
func BuildOne(ctx context.Context, sc config.Sink, stdout io.Writer) (sinks.Sink, error) {
	return build(ctx, sc, stdout)
}

func build(ctx context.Context, sc config.Sink, stdout io.Writer) (sinks.Sink, error) {
	switch {
	case sc.File != nil:
		f, err := Format(sc.Type, sc.File.Compression, sc.File.Schema)
		if err != nil {
			return nil, err
		}
		l, err := Layout(sc.File.Keys, sc.File.Compression, "")
		if err != nil {
			return nil, err
		}
		return filesink.New(sc.File.Dir, f, filesink.WithModes(sc.File.FileMode, sc.File.DirMode), filesink.WithLayout(l)), nil
	case sc.S3 != nil:
		f, err := Format(sc.S3.Format, sc.S3.Compression, sc.S3.Schema)
		if err != nil {
			return nil, err
		}
		l, err := Layout(sc.S3.Keys, sc.S3.Compression, sc.S3.Region)
		if err != nil {
			return nil, err
		}
		return s3sink.New(ctx, *sc.S3, f, s3sink.WithLayout(l))
	case sc.Kafka != nil:
		return kafkasink.New(*sc.Kafka)
	case sc.Stdout != nil:
		return stdoutsink.New(stdout), nil
	}
	return nil, fmt.Errorf("unknown sink type %q", sc.Type)
}

// CheckTimeout bounds the probe of one sink.
const CheckTimeout = 30 * time.Second

// Check probes every sink that can be probed (sinks.Checker), each within
// CheckTimeout, and returns one result per sink, in order: nil when the sink
// is reachable and writable (or has nothing to probe).
func (s *Set) Check(ctx context.Context) []error {
	out := make([]error, len(s.Sinks))
	for i, sk := range s.Sinks {
		out[i] = CheckOne(ctx, sk)
	}
	return out
}

// CheckOne probes sk within CheckTimeout, if it can be probed
// (sinks.Checker): nil when it is reachable and writable, or has nothing
// to probe.
func CheckOne(ctx context.Context, sk sinks.Sink) error {
	c, ok := sk.(sinks.Checker)
	if !ok {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, CheckTimeout)
	defer cancel()
	return c.Check(cctx)
}

// Claim claims every file-like sink (sinks.Claimer) for c, in order, each
// within CheckTimeout, and returns one result and one error per sink (zero
// for the others). With c.Create false nothing is written, so a run claims
// read-only first and refuses before it writes anything anywhere.
func (s *Set) Claim(ctx context.Context, c sinks.Claim) ([]sinks.ClaimResult, []error) {
	res := make([]sinks.ClaimResult, len(s.Sinks))
	errs := make([]error, len(s.Sinks))
	for i, sk := range s.Sinks {
		res[i], errs[i] = ClaimOne(ctx, sk, c)
	}
	return res, errs
}

// ClaimOne claims sk for c within CheckTimeout, if it is file-like
// (sinks.Claimer); zero for another sink.
func ClaimOne(ctx context.Context, sk sinks.Sink, c sinks.Claim) (sinks.ClaimResult, error) {
	cl, ok := sk.(sinks.Claimer)
	if !ok {
		return sinks.ClaimResult{}, nil
	}
	cctx, cancel := context.WithTimeout(ctx, CheckTimeout)
	defer cancel()
	return cl.Claim(cctx, c)
}

// Close closes every sink, within ctx, and returns every error it met,
// joined; safe to call twice.
func (s *Set) Close(ctx context.Context) error {
	var errs []error
	for _, sk := range s.Sinks {
		if err := sk.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("close %s: %w", sk.Name(), err))
		}
	}
	return errors.Join(errs...)
}
