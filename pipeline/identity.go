package pipeline

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pachca-export/pachca-export/config"
)

// Identity is what defines the data of a state: the source, its filters and
// the destinations. It names the state directory and is written into it; it
// holds no secret.
func Identity(cfg *config.Config) any {
	var dests []string
	for _, s := range cfg.Sinks {
		dests = append(dests, sinkIdentity(s))
	}
	return struct {
		BaseURL string         `json:"base_url"`
		Filters config.Filters `json:"filters"`
		Sinks   []string       `json:"sinks"`
	}{strings.TrimRight(cfg.Source.BaseURL, "/"), cfg.Source.Filters, dests}
}

func sinkIdentity(s config.Sink) string {
	switch {
	case s.File != nil:
		dir, err := filepath.Abs(s.File.Dir)
		if err != nil {
			dir = s.File.Dir
		}
		return fmt.Sprintf("%s:%s:%s", s.Type, dir, s.File.Compression)
	case s.S3 != nil:
		return fmt.Sprintf("s3:%s:%s/%s:%s:%s", s.S3.Endpoint, s.S3.Bucket, s.S3.Prefix, s.S3.Format, s.S3.Compression)
	case s.Kafka != nil:
		b := slices.Sorted(slices.Values(s.Kafka.Brokers))
		return fmt.Sprintf("kafka:%s:%s", strings.Join(b, ","), s.Kafka.Topic)
	}
	return s.Type
}
