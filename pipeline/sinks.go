package pipeline

import (
	"context"
	"fmt"
	"os"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/filesink"
	"github.com/pachca-export/pachca-export/sinks/kafkasink"
	"github.com/pachca-export/pachca-export/sinks/ndjson"
	"github.com/pachca-export/pachca-export/sinks/parquetfmt"
	"github.com/pachca-export/pachca-export/sinks/s3sink"
	"github.com/pachca-export/pachca-export/sinks/stdoutsink"
)

// Format returns the file format called name ("ndjson" or "parquet").
func Format(name, compression string) (sinks.Format, error) {
	switch name {
	case "ndjson":
		return ndjson.Format(compression)
	case "parquet":
		return parquetfmt.Format(compression)
	}
	return sinks.Format{}, fmt.Errorf("unknown format %q (ndjson, parquet)", name)
}

// BuildSinks constructs the configured sinks, in order. Construction does no
// network I/O; unreachable destinations show at the first write or in Check.
func BuildSinks(ctx context.Context, cfg *config.Config) ([]sinks.Sink, error) {
	var out []sinks.Sink
	fail := func(i int, err error) ([]sinks.Sink, error) {
		for _, s := range out {
			s.Close()
		}
		return nil, fmt.Errorf("sinks[%d]: %w", i, err)
	}
	for i, sc := range cfg.Sinks {
		switch {
		case sc.File != nil:
			f, err := Format(sc.Type, sc.File.Compression)
			if err != nil {
				return fail(i, err)
			}
			out = append(out, filesink.New(sc.File.Dir, f))
		case sc.S3 != nil:
			f, err := Format(sc.S3.Format, sc.S3.Compression)
			if err != nil {
				return fail(i, err)
			}
			s, err := s3sink.New(ctx, *sc.S3, f)
			if err != nil {
				return fail(i, err)
			}
			out = append(out, s)
		case sc.Kafka != nil:
			s, err := kafkasink.New(*sc.Kafka)
			if err != nil {
				return fail(i, err)
			}
			out = append(out, s)
		case sc.Stdout != nil:
			out = append(out, stdoutsink.New(os.Stdout))
		default:
			return fail(i, fmt.Errorf("unknown sink type %q", sc.Type))
		}
	}
	return out, nil
}
